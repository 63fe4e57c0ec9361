#!/bin/bash
# profile.sh (lib) -- the part of bench/profile.sh that runs inside the
# sandbox. Builds every variant at once by hand -- a path of the shared
# harness (direct, routed or masq) with one candidate setting on all its
# veth ends -- in namespaces vN-a, vN-r, vN-b, then measures them in
# cycles: each cycle runs iperf3 (client CPU 0, server CPU 1) once over
# every variant, in a new random order. bench/profile.sh sets:
#
#   OUT VARIANTS CYCLES SECS   results folder, "path:setting" list, cycles,
#                              iperf3 seconds
#   LINKSET                    the bench/linkset binary
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/guard.sh"
source "$HERE/paths.sh"
CSV=$OUT/profile.csv
echo "cycle,variant,gbps,retransmits" >"$CSV"
trap 'for f in "$OUT"/.srv-*.pid; do [[ -s $f ]] && kill "$(cat "$f")" 2>/dev/null; rm -f "$f"; done' EXIT

apply() { # setting path prefix: the setting on every veth end (and node)
	local e ns dev
	if [[ $1 == nobrnf ]]; then
		[[ $2 == masq ]] || { echo "nobrnf needs the masq path's bridge" >&2; return 1; }
		ip netns exec "${3}r" sh -c 'echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables'
		return
	fi
	for e in $ENDS; do
		ns=${e%%:*} dev=${e#*:}
		case $1 in
		base) ;;
		gro) ip netns exec "$ns" ethtool -K "$dev" gro on ;;
		big4) ip netns exec "$ns" "$LINKSET" "$dev" 185000 ipv4 ;;
		big4+gro) ip netns exec "$ns" "$LINKSET" "$dev" 185000 ipv4 && ip netns exec "$ns" ethtool -K "$dev" gro on ;;
		big512) ip netns exec "$ns" "$LINKSET" "$dev" 524280 ipv4 ;;
		txq0) ip -n "$ns" link set "$dev" txqueuelen 0 ;;
		*) echo "unknown setting $1" >&2; return 1 ;;
		esac >/dev/null || return 1
	done
}

NAMES=() PREFIX=()
i=0
for v in $VARIANTS; do
	i=$((i + 1))
	p=v$i-
	if ! build_path "${v%%:*}" "$p" || ! apply "${v#*:}" "${v%%:*}" "$p"; then
		echo "  $v: build failed; left out" >&2
		continue
	fi
	if ! ip netns exec "${p}a" ping -c1 -W2 -q 10.9.2.2 >/dev/null 2>&1; then
		echo "  $v: no connectivity; left out" >&2
		continue
	fi
	ip netns exec "${p}b" taskset -c 1 iperf3 -s -B 10.9.2.2 -D --pidfile "$OUT/.srv-$i.pid" || continue
	NAMES+=("$v") PREFIX+=("$p")
done
sleep 1

for ((c = 1; c <= CYCLES; c++)); do
	line=
	for k in $(seq 0 $((${#NAMES[@]} - 1)) | shuf); do
		read -r g rt < <(ip netns exec "${PREFIX[$k]}a" taskset -c 0 timeout $((SECS + 15)) \
			iperf3 -c 10.9.2.2 -t "$SECS" -J 2>/dev/null | python3 -c 'import json, sys
try:
    e = json.load(sys.stdin)["end"]
    print("%.3f %d" % (e["sum_received"]["bits_per_second"] / 1e9, e["sum_sent"].get("retransmits", -1)))
except Exception:
    print("nan -1")')
		echo "$c,${NAMES[$k]},$g,$rt" >>"$CSV"
		line+=" ${NAMES[$k]}=$g"
	done
	echo "  cycle $c/$CYCLES:$line" >&2
done
