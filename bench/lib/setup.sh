#!/bin/bash
# setup.sh -- the part of bench/run.sh that runs inside the sandbox: the
# shared harness's setup/teardown timing loop with nsrouter as its "tool"
# method, then check and validate timings. run.sh sets the environment:
#
#   NSR            the nsrouter binary        TOPO   generated topology files
#   OUT            results folder             SHARED the shared harness
#   METHODS        harness method names ("tool" is nsrouter)
#   SHAPES NS RUNS what the harness loops over
#   IP_RUNS        runs of the ip method at N >= 1000 (it takes ~20 s each)
#   BIG BIG_RUNS   1: also the 10,000-host star, nsrouter and go4 only
#
# nsrouter runs with at most 1,024 open files (NSR_NOFILE), the usual soft
# limit, so a lab that needed a descriptor per namespace would fail here.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/guard.sh"

NOFILE=${NSR_NOFILE:-1024}
TOOL_VERIFY="$HERE/verify.sh $NSR $TOPO/{SHAPE}-{N}.yaml {N}"

# The harness's timing loop with bench_setup.patch applied: its quiesce can
# end part-way through the kernel's teardown (see the patch), so every run
# also waits for a second witness, in a column of its own.
HARNESS=$(mktemp -d /tmp/nsr-harness.XXXXXX)
trap 'rm -rf "$HARNESS"' EXIT
patch -s -o "$HARNESS/bench_setup.sh" "$SHARED/lib/bench_setup.sh" "$HERE/bench_setup.patch" ||
	{ echo "setup.sh: bench_setup.patch does not apply to $SHARED/lib/bench_setup.sh" >&2; exit 3; }
chmod +x "$HARNESS/bench_setup.sh"

harness() { # methods shapes sizes runs [largest N of the ip method]
	[[ -n $1 && -n $3 ]] || return 0
	BN_MAXN_ip=${5:-999999} BN_OUT="$OUT/setup.csv" BN_METHODS="$1" BN_SHAPES="$2" BN_NS="$3" BN_RUNS="$4" \
		BN_TOOL_UP="ulimit -n $NOFILE && $NSR up --quiet $TOPO/{SHAPE}-{N}.yaml" \
		BN_TOOL_DOWN="ulimit -n $NOFILE && $NSR down $TOPO/{SHAPE}-{N}.yaml" \
		BN_TOOL_VERIFY="$TOOL_VERIFY" BN_TIMEOUT=${BN_TIMEOUT:-600} \
		BN_HARNESS_DIR="$SHARED" "$HARNESS/bench_setup.sh" 2>&1 | grep -v '^Warning: Linux bridge'
}

# The ip method (one process per step) at N >= 1000 takes 20 s a run, so it
# gets its own number of runs there.
large=
for n in $NS; do ((n < 1000)) || large+=" $n"; done
if [[ " $METHODS " == *" ip "* && $IP_RUNS != "$RUNS" ]]; then
	harness "$METHODS" "$SHAPES" "$NS" "$RUNS" 999
	harness "ip" "$SHAPES" "$large" "$IP_RUNS"
else
	harness "$METHODS" "$SHAPES" "$NS" "$RUNS"
fi
if ((BIG)); then
	big=
	for m in $METHODS; do [[ $m == tool || $m == go4 ]] && big+=" $m"; done
	harness "$big" star 10000 "$BIG_RUNS"
fi

# timed CMD...: wall seconds of one command under timeout; result ok or fail.
timed() {
	local t0 t1 res=ok
	t0=$EPOCHREALTIME
	timeout 120 "$@" >"$OUT/last.out" 2>&1 || res=fail
	t1=$EPOCHREALTIME
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", b-a}') $res"
}

extra() { # what n run seconds result
	[[ -s $OUT/extra.csv ]] || echo "what,n,run,seconds,result" >"$OUT/extra.csv"
	echo "$1,$2,$3,$4,$5" >>"$OUT/extra.csv"
	echo "  $1 N=$2 run$3: $4 s $5" >&2
}

echo "== check of every pair among 100 hosts, validate of 100,000 nodes" >&2
if timeout 120 "$NSR" up --quiet "$TOPO/pairs-100.yaml"; then
	for ((r = 1; r <= RUNS; r++)); do
		read -r s res < <(timed "$NSR" check "$TOPO/pairs-100.yaml")
		[[ $res == ok ]] && grep -q '^9900 passed, 0 failed' "$OUT/last.out" || res=fail
		extra check-pairs 9900 "$r" "$s" "$res"
	done
	timeout 120 "$NSR" down "$TOPO/pairs-100.yaml" >/dev/null
else
	extra check-pairs 9900 1 "" fail
fi
for ((r = 1; r <= RUNS; r++)); do
	read -r s res < <(timed "$NSR" validate "$TOPO/group-100000.yaml")
	extra validate-100000 100001 "$r" "$s" "$res"
done
