#!/bin/bash
# forward.sh -- the part of bench/forwarding.sh that runs inside the
# sandbox. It builds every variant of every path at once, each in its own
# namespaces PREFIXa (iperf3 client), PREFIXr (router) and PREFIXb (server,
# 10.9.2.2), then measures them in cycles: each cycle runs iperf3 once over
# every variant, in a new random order. Runs seconds apart share the
# machine's momentary speed, so per-cycle ratios cancel most of the drift
# that makes runs minutes apart differ by 30% on a shared 2-core machine.
#
#   variant      prefix  built by
#   direct       d-      hand: the shared harness's ip commands (lib/paths.sh)
#   direct-fast  df-     nsrouter, profile fast
#   PATH-hand    hP-     hand: the harness's ip and nft commands
#   PATH         nP-     nsrouter, profile default
#   PATH-fast    fP-     nsrouter, profile fast
#
# for PATH in routed (P=r) and masq (P=m). forwarding.sh sets:
#
#   NSR TOPO OUT           binary, topology folder (topo.sh output), results
#   PATHS CYCLES SECS PIN  paths, cycles, seconds per run; PIN=1 puts
#                          iperf3's client on CPU 0 and its server on CPU 1
#
# All traffic runs between namespaces made here.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/guard.sh"
CSV=$OUT/cycles.csv
echo "cycle,variant,gbps,retransmits" >"$CSV"
echo "variant,ping_avg_ms" >"$OUT/ping.csv"

source "$HERE/paths.sh"

VARIANTS=() PREFIX=()
variant() { # name prefix build-command...
	local name=$1 p=$2
	shift 2
	if ! "$@" >/dev/null; then
		echo "  $name: build failed" >&2
		return
	fi
	if ! ip netns exec "${p}a" ping -c1 -W2 -q 10.9.2.2 >/dev/null 2>&1; then
		echo "  $name: no connectivity; left out" >&2
		return
	fi
	local cpu=
	[[ $PIN == 1 ]] && cpu="taskset -c 1"
	ip netns exec "${p}b" $cpu iperf3 -s -B 10.9.2.2 -D --pidfile "$OUT/.srv-$name.pid" || return
	local avg
	avg=$(ip netns exec "${p}a" ping -q -c "${BN_PINGS:-20}" -i 0.01 -W 1 10.9.2.2 2>/dev/null |
		sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
	echo "$name,$avg" >>"$OUT/ping.csv"
	VARIANTS+=("$name") PREFIX+=("$p")
}
trap 'for f in "$OUT"/.srv-*.pid; do [[ -s $f ]] && kill "$(cat "$f")" 2>/dev/null; rm -f "$f"; done' EXIT

variant direct d- build_path direct d-
variant direct-fast df- "$NSR" up --quiet "$TOPO/fwd-direct-df-fast.yaml"
for path in $PATHS; do
	p=${path:0:1}
	variant "$path-hand" "h$p-" build_path "$path" "h$p-"
	variant "$path" "n$p-" "$NSR" up --quiet "$TOPO/fwd-$path-n$p-default.yaml"
	variant "$path-fast" "f$p-" "$NSR" up --quiet "$TOPO/fwd-$path-f$p-fast.yaml"
done
sleep 1 # let the servers settle

run() { # index -> "gbps retransmits"
	local cpu=
	[[ $PIN == 1 ]] && cpu="taskset -c 0"
	ip netns exec "${PREFIX[$1]}a" $cpu timeout $((SECS + 15)) iperf3 -c 10.9.2.2 -t "$SECS" -J 2>/dev/null |
		python3 -c 'import json, sys
try:
    e = json.load(sys.stdin)["end"]
    print("%.3f %d" % (e["sum_received"]["bits_per_second"] / 1e9, e["sum_sent"].get("retransmits", -1)))
except Exception:
    print("nan -1")'
}

for ((c = 1; c <= CYCLES; c++)); do
	line=
	for i in $(seq 0 $((${#VARIANTS[@]} - 1)) | shuf); do
		read -r g rt < <(run "$i")
		echo "$c,${VARIANTS[$i]},$g,$rt" >>"$CSV"
		line+=" ${VARIANTS[$i]}=$g"
	done
	echo "  cycle $c/$CYCLES:$line" >&2
done
