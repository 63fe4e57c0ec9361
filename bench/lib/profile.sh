#!/bin/bash
# profile.sh (lib) -- the part of bench/profile.sh that runs inside the
# sandbox. Builds the harness's direct and routed paths by hand (tp-a,
# tp-r, tp-b; 10.9.0.0/16), applies one candidate setting to every veth
# end, and measures iperf3 from tp-a (CPU 0) to tp-b (CPU 1). Each round
# runs every variant once, in the same order. bench/profile.sh sets:
#
#   OUT VARIANTS ROUNDS SECS   results folder, "path:setting" list, rounds,
#                              iperf3 seconds
#   LINKSET                    the bench/linkset binary
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/guard.sh"
CSV=$OUT/profile.csv
[[ -s $CSV ]] || echo "round,variant,gbps,retransmits" >"$CSV"
SRV=

teardown() {
	local n
	for n in tp-a tp-b tp-r; do ip netns del "$n" 2>/dev/null; done
	return 0
}
trap '[[ -n $SRV ]] && kill "$SRV" 2>/dev/null; teardown' EXIT

build() { # direct|routed; sets ENDS to "ns:iface ..."
	ip netns add tp-a && ip netns add tp-b || return 1
	ip -n tp-a link set lo up && ip -n tp-b link set lo up
	if [[ $1 == direct ]]; then
		ip link add eth0 netns tp-a type veth peer name eth0 netns tp-b
		ip -n tp-a addr add 10.9.2.1/24 dev eth0
		ip -n tp-b addr add 10.9.2.2/24 dev eth0
		ENDS="tp-a:eth0 tp-b:eth0"
	else
		ip netns add tp-r && ip -n tp-r link set lo up
		ip netns exec tp-r sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
		ip link add va netns tp-r type veth peer name eth0 netns tp-a
		ip link add vb netns tp-r type veth peer name eth0 netns tp-b
		ip -n tp-r addr add 10.9.1.1/24 dev va
		ip -n tp-r addr add 10.9.2.1/24 dev vb
		ip -n tp-a addr add 10.9.1.2/24 dev eth0
		ip -n tp-b addr add 10.9.2.2/24 dev eth0
		ENDS="tp-a:eth0 tp-r:va tp-r:vb tp-b:eth0"
	fi
	local e
	for e in $ENDS; do ip -n "${e%%:*}" link set "${e#*:}" up || return 1; done
	if [[ $1 == routed ]]; then
		ip -n tp-a route add default via 10.9.1.1
		ip -n tp-b route add default via 10.9.2.1
	fi
}

apply() { # setting: applied to every veth end
	local e ns dev
	for e in $ENDS; do
		ns=${e%%:*} dev=${e#*:}
		case $1 in
		base) ;;
		gro) ip netns exec "$ns" ethtool -K "$dev" gro on ;;
		bigtcp) ip netns exec "$ns" "$LINKSET" "$dev" 185000 ;;
		bigtcp+gro) ip netns exec "$ns" "$LINKSET" "$dev" 185000 && ip netns exec "$ns" ethtool -K "$dev" gro on ;;
		txq0) ip -n "$ns" link set "$dev" txqueuelen 0 ;;
		*) echo "unknown setting $1" >&2; return 1 ;;
		esac || return 1
	done
}

iperf() { # -> "gbps retransmits"
	local i
	ip netns exec tp-b taskset -c 1 timeout $((SECS + 20)) iperf3 -s -1 -B 10.9.2.2 >/dev/null 2>&1 &
	SRV=$!
	for ((i = 0; i < 50; i++)); do
		ip netns exec tp-b ss -Hltn "sport = :5201" | grep -q 5201 && break
		sleep 0.1
	done
	ip netns exec tp-a taskset -c 0 timeout $((SECS + 15)) iperf3 -c 10.9.2.2 -t "$SECS" -J >"$OUT/cli.json" 2>/dev/null
	wait "$SRV" 2>/dev/null
	SRV=
	python3 -c 'import json, sys
try:
    e = json.load(open(sys.argv[1]))["end"]
    print("%.3f %d" % (e["sum_received"]["bits_per_second"] / 1e9, e["sum_sent"].get("retransmits", -1)))
except Exception:
    print("nan -1")' "$OUT/cli.json"
}

for ((r = 1; r <= ROUNDS; r++)); do
	for v in $VARIANTS; do
		teardown
		if ! build "${v%%:*}" || ! apply "${v#*:}"; then
			echo "  $v: build failed" >&2
			continue
		fi
		ip netns exec tp-a ping -c1 -W2 -q 10.9.2.2 >/dev/null 2>&1 || echo "  $v: no connectivity" >&2
		read -r g rt < <(iperf)
		echo "$r,$v,$g,$rt" >>"$CSV"
		echo "  round $r $v: $g Gbit/s retr=$rt" >&2
	done
done
teardown
