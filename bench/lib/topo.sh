#!/bin/bash
# topo.sh KIND ARGS... -- print an nsrouter topology file for the benchmarks.
# Pure text: it touches nothing.
#
#   star N          router r, hosts h1..hN, a /31 cable each from a pool,
#                   default route via r (the harness's "star")
#   bridge N        br0 inside r numbered from a /16 pool, every host on it,
#                   default route via br0, masquerade of the LAN out of a
#                   cable to one more node, wan (the harness's "bridge")
#   pairs N         a star of N hosts expecting every host to reach every
#                   other: N*(N-1) expectations
#   group N         a star of N hosts and nothing else, for validate
#   fwd-routed      the forwarding benchmark's "routed" path: tp-a, router
#                   tp-r, tp-b, with the harness's names and addresses
#   fwd-masq        its "masq" path: tp-a on br0 in tp-r, masquerade to tp-b
#
# Addresses: star 10.1.0.0/16 (as the harness), bridge 10.2.0.0/16 and
# 10.3.0.0/30, forwarding 10.9.0.0/16; they exist only inside the sandbox.
set -euo pipefail

star() { # name count pool
	cat <<EOF
name: $1
pools:
  p2p: {ipv4: $3}
nodes:
  r: {forwarding: {ipv4: true}}
groups:
  - {name: h, count: $2, connect: r, pool: p2p, default-route: true}
EOF
}

bridge() { # count
	cat <<EOF
name: bench-bridge
pools:
  lan: {ipv4: 10.2.0.0/16, ipv4-length: 16}
nodes:
  r:
    forwarding: {ipv4: true}
    bridges:
      br0: {pool: lan}
    interfaces:
      wan0: {addresses: [10.3.0.1/30]}
    nat:
      masquerade:
        - {out: wan0, src: [10.2.0.0/16]}
  wan:
    interfaces:
      eth0: {addresses: [10.3.0.2/30]}
links:
  - endpoints: [r:wan0, wan:eth0]
groups:
  - {name: h, count: $1, connect: "r:br0", default-route: true}
expect:
  - {from: h1, to: h$1}
  - {from: h$1, to: wan, ttl: 63}
EOF
}

pairs() { # count
	local i j
	star bench-pairs "$1" 10.1.0.0/16
	echo "expect:"
	for ((i = 1; i <= $1; i++)); do
		for ((j = 1; j <= $1; j++)); do
			((i == j)) || echo "  - {from: h$i, to: h$j}"
		done
	done
}

fwd_routed() {
	cat <<'EOF'
name: bench-fwd
nodes:
  tp-r:
    forwarding: {ipv4: true}
    interfaces:
      va: {addresses: [10.9.1.1/24]}
      vb: {addresses: [10.9.2.1/24]}
  tp-a:
    interfaces:
      eth0: {addresses: [10.9.1.2/24]}
    routes:
      - {to: default, via: 10.9.1.1}
  tp-b:
    interfaces:
      eth0: {addresses: [10.9.2.2/24]}
    routes:
      - {to: default, via: 10.9.2.1}
links:
  - endpoints: [tp-a:eth0, tp-r:va]
  - endpoints: [tp-b:eth0, tp-r:vb]
expect:
  - {from: tp-a, to: tp-b, ttl: 63}
EOF
}

fwd_masq() {
	cat <<'EOF'
name: bench-fwd
nodes:
  tp-r:
    forwarding: {ipv4: true}
    bridges:
      br0: {addresses: [10.9.1.1/24]}
    interfaces:
      vb: {addresses: [10.9.2.1/24]}
    nat:
      masquerade:
        - {out: vb, src: [10.9.1.0/24]}
  tp-a:
    interfaces:
      eth0: {addresses: [10.9.1.2/24]}
    routes:
      - {to: default, via: 10.9.1.1}
  tp-b:
    # no route back to 10.9.1.0/24: only masquerade gets replies home
    interfaces:
      eth0: {addresses: [10.9.2.2/24]}
links:
  - endpoints: [tp-a:eth0, tp-r:br0]
  - endpoints: [tp-b:eth0, tp-r:vb]
expect:
  - {from: tp-a, to: tp-b, ttl: 63}
EOF
}

count() { # N: a positive integer, at most 100,000
	[[ ${1:-} =~ ^[1-9][0-9]{0,5}$ ]] && (($1 <= 100000)) ||
		{ echo "topo.sh: bad count ${1:-none}" >&2; exit 2; }
}

case ${1:-} in
star) count "${2:-}"; star bench-star "$2" 10.1.0.0/16 ;;
bridge) count "${2:-}"; bridge "$2" ;;
pairs) count "${2:-}"; pairs "$2" ;;
group) count "${2:-}"; star bench-group "$2" 10.0.0.0/8 ;;
fwd-routed) fwd_routed ;;
fwd-masq) fwd_masq ;;
*) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
