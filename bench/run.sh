#!/bin/bash
# run.sh -- how fast nsrouter builds and removes large labs, next to the
# baselines of ../shared/bench: a shell script of one `ip` process per step
# ("ip"), `ip -batch` ("batch") and the direct-netlink reference program with
# four workers ("go4"). Shapes as in that harness: "star" (router r, hosts
# h1..hN, a /31 cable each) and "bridge" (br0 in r, every host on it,
# masquerade). Also times `check` of every pair among 100 hosts, `validate`
# of 100,000 nodes and plan.Build of 100,000 nodes, with --big runs
# bench/forwarding.sh too, and prints PASS or FAIL for each target of
# issue 7.
#
#   sudo bench/run.sh [options]
#
#   --big            also the 10,000-host star (nsrouter and go4 only) and
#                    the forwarding benchmark: every target in one run
#   --forwarding     run bench/forwarding.sh (default with --big)
#   --no-forwarding  do not
#   --quick          N = 10 100, one run: a smoke test of the script
#   --ns "10 100"    sizes (default "10 100 1000")
#   --runs R         runs per cell, medians reported (default 3)
#   --ip-runs R      runs of the ip method at N >= 1000 (default 1: ~20 s each)
#   --big-runs R     runs at N = 10,000 (default 3)
#   --methods "..."  of nsrouter go4 go batch ip (default "nsrouter go4 batch ip")
#   --shapes "..."   star bridge (default both)
#   --out DIR        CSVs, results.md and the plot (default /tmp/nsr-bench-DATE)
#   --no-docs        do not copy the plot and table to docs/bench-up.png and
#                    docs/bench-results.md (only a --big run with the default
#                    sizes, methods and shapes, all of whose parts ran,
#                    copies them)
#
# Exit status 0 when every part ran, every lab passed its check and every
# target measured was met; 1 otherwise (the report says which); 2 for bad
# options; 130 when interrupted, with no report.
#
# Everything that touches the kernel runs in lib/sandbox.sh: new network,
# mount and PID namespaces that vanish with everything in them when the run
# ends. The machine's own network is never changed. Needs root, Go, python3,
# iproute2, nftables and /usr/bin/time; gnuplot-nox is installed if missing.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${NSR_SHARED_BENCH:-$REPO/../shared/bench}
BIG=0 NS="10 100 1000" RUNS=3 IP_RUNS=1 BIG_RUNS=3 OUT= DOCS=1 FWD=
METHODS="nsrouter go4 batch ip" SHAPES="star bridge"

usage() { sed -n '2,35p' "$0"; }
value() { # OPTION ARGS...: the option's value must follow it
	(($# >= 2)) || { echo "run.sh: $1 needs a value" >&2; exit 2; }
}
PARTIAL=0 # sizes, methods or shapes other than the defaults: no docs
while (($#)); do
	case $1 in
	--big) BIG=1 ;;
	--forwarding) FWD=1 ;;
	--no-forwarding) FWD=0 ;;
	--quick) NS="10 100" RUNS=1 PARTIAL=1 ;;
	--ns) value "$@"; NS=$2 PARTIAL=1; shift ;;
	--runs) value "$@"; RUNS=$2; shift ;;
	--ip-runs) value "$@"; IP_RUNS=$2; shift ;;
	--big-runs) value "$@"; BIG_RUNS=$2; shift ;;
	--methods) value "$@"; METHODS=$2 PARTIAL=1; shift ;;
	--shapes) value "$@"; SHAPES=$2 PARTIAL=1; shift ;;
	--out) value "$@"; OUT=$2; shift ;;
	--no-docs) DOCS=0 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
for v in "$RUNS" "$IP_RUNS" "$BIG_RUNS"; do
	[[ $v =~ ^[1-9][0-9]?$ ]] || { echo "run.sh: runs must be 1 to 99, not $v" >&2; exit 2; }
done
for n in $NS; do
	[[ $n =~ ^[1-9][0-9]*$ ]] && ((n <= 10000)) || { echo "run.sh: bad size $n" >&2; exit 2; }
done
for s in $SHAPES; do
	[[ $s == star || $s == bridge ]] || { echo "run.sh: unknown shape $s (star bridge)" >&2; exit 2; }
done
[[ -n ${NS// /} && -n ${METHODS// /} && -n ${SHAPES// /} ]] ||
	{ echo "run.sh: --ns, --methods and --shapes need at least one value each" >&2; exit 2; }
((BIG && !PARTIAL)) || DOCS=0
FWD=${FWD:-$BIG}
[[ $(id -u) == 0 ]] || { echo "run.sh: needs root (network namespaces); run it with sudo" >&2; exit 3; }
[[ -x $SHARED/lib/bench_setup.sh ]] || { echo "run.sh: no harness at $SHARED (set NSR_SHARED_BENCH)" >&2; exit 3; }

OUT=${OUT:-/tmp/nsr-bench-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/nsr-bench-work.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# Ctrl-C reaches the sandbox too, which ends with everything in it; then
# stop here, before a report of half the runs (or docs made from one).
trap 'echo "run.sh: interrupted; no report written" >&2; exit 130' INT TERM
FAILED=0
export PATH=$PATH:/usr/local/go/bin

source "$HERE/lib/prereq.sh"
need_debs iproute2 nftables time gnuplot-nox patch
build_binaries "$WORK/bin"

# Harness method names: nsrouter is its "tool".
HM=
for m in $METHODS; do
	case $m in
	nsrouter) HM+=" tool" ;;
	go | go4 | batch | ip) HM+=" $m" ;;
	*) echo "run.sh: unknown method $m (nsrouter go4 go batch ip)" >&2; exit 2 ;;
	esac
done

mkdir -p "$WORK/topo"
for n in $NS $( ((BIG)) && echo 10000); do
	"$HERE/lib/topo.sh" star "$n" >"$WORK/topo/star-$n.yaml"
	"$HERE/lib/topo.sh" bridge "$n" >"$WORK/topo/bridge-$n.yaml"
done
"$HERE/lib/topo.sh" pairs 100 >"$WORK/topo/pairs-100.yaml"
"$HERE/lib/topo.sh" group 100000 >"$WORK/topo/group-100000.yaml"

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: nproc=$(nproc) kernel=$(uname -r) mem=$(free -g | awk '/Mem:/{print $2}')GiB"
	echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "versions: nsrouter $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?');" \
		"$(go version | awk '{print $3}'); $(ip -V 2>&1 | head -1)"
	echo "sizes: $NS$( ((BIG)) && echo ' 10000 (star)'); runs: $RUNS (ip at N>=1000: $IP_RUNS," \
		"N=10000: $BIG_RUNS); methods: $METHODS; open files: nsrouter ${NSR_NOFILE:-1024}, others $(ulimit -n)"
	echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/info.txt"

# Forwarding first: the kernel goes on freeing 10,000 namespaces for
# minutes after the big star, and that work would share the CPUs.
if ((FWD)); then
	echo "== forwarding, about 6 minutes ($OUT/forwarding)"
	"$HERE/forwarding.sh" --out "$OUT/forwarding" >"$OUT/forwarding.log" 2>&1 ||
		{ echo "run.sh: forwarding.sh failed; see $OUT/forwarding.log" >&2; FAILED=1; }
fi

echo "== plan.Build of 100,000 nodes (go test -bench, no kernel)"
plan_bench "$OUT/extra.csv"

echo "== setup/teardown in a sandbox ($OUT/setup.csv)"
NSR=$WORK/bin/nsrouter TOPO=$WORK/topo OUT=$OUT SHARED=$SHARED METHODS="$HM" SHAPES="$SHAPES" \
	NS="$NS" RUNS=$RUNS IP_RUNS=$IP_RUNS BIG=$BIG BIG_RUNS=$BIG_RUNS BN_NETLINKREF=$WORK/bin/netlinkref \
	"$HERE/lib/sandbox.sh" "$HERE/lib/setup.sh" || { echo "run.sh: the sandboxed part failed" >&2; FAILED=1; }

echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info.txt"
echo
MISSED=0
python3 "$HERE/lib/report.py" "$OUT" || MISSED=1
plot_up "$OUT" "$OUT/bench-up.png"
if ((DOCS && !FAILED)); then
	cp "$OUT/bench-up.png" "$REPO/docs/bench-up.png"
	cp "$OUT/results.md" "$REPO/docs/bench-results.md"
fi
echo
echo "results: $OUT/results.md, plot: $OUT/bench-up.png"
exit $((FAILED || MISSED))
