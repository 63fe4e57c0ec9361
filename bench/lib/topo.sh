#!/bin/bash
# topo.sh KIND ARGS... -- print an nsrouter topology file for the benchmarks.
# Pure text: it touches nothing.
#
#   star N          router r, hosts h1..hN, a /31 cable each from a pool,
#                   default route via r (the harness's "star"); expects h1
#                   and hN to reach each other
#   bridge N        br0 inside r numbered from a /16 pool, every host on it,
#                   default route via br0, masquerade of the LAN out of a
#                   cable to one more node, wan (the harness's "bridge")
#   pairs N         a star of N hosts expecting every host to reach every
#                   other: N*(N-1) expectations
#   group N         a star of N hosts and nothing else, for validate
#   fwd-routed [PREFIX [PROFILE]]   the forwarding benchmark's "routed"
#                   path: PREFIXa, router PREFIXr, PREFIXb (PREFIX tp- by
#                   default: the harness's names), the harness's addresses
#   fwd-masq ...    its "masq" path: a on br0 in r, masquerade out to b
#   fwd-direct ...  a veth pair between a and b
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

# star_expect N: what `nsrouter check` proves of a star after each timed
# up, like the harness's own check of the other methods: the first and the
# last host reach each other across the router (one host: the router).
star_expect() {
	echo "expect:"
	if (($1 == 1)); then
		echo "  - {from: h1, to: r}"
	else
		echo "  - {from: h1, to: h$1}"
		echo "  - {from: h$1, to: h1}"
	fi
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

# fwd_routed PREFIX PROFILE and fwd_masq PREFIX PROFILE: nodes PREFIXa,
# PREFIXr and PREFIXb, lab fwd-PREFIX-routed (or -masq), with the
# harness's interface names and addresses.
fwd_routed() {
	cat <<EOF
name: fwd-${1%-}-routed
profile: $2
nodes:
  ${1}r:
    forwarding: {ipv4: true}
    interfaces:
      va: {addresses: [10.9.1.1/24]}
      vb: {addresses: [10.9.2.1/24]}
  ${1}a:
    interfaces:
      eth0: {addresses: [10.9.1.2/24]}
    routes:
      - {to: default, via: 10.9.1.1}
  ${1}b:
    interfaces:
      eth0: {addresses: [10.9.2.2/24]}
    routes:
      - {to: default, via: 10.9.2.1}
links:
  - endpoints: [${1}a:eth0, ${1}r:va]
  - endpoints: [${1}b:eth0, ${1}r:vb]
expect:
  - {from: ${1}a, to: ${1}b, ttl: 63}
EOF
}

fwd_masq() {
	cat <<EOF
name: fwd-${1%-}-masq
profile: $2
nodes:
  ${1}r:
    forwarding: {ipv4: true}
    bridges:
      br0: {addresses: [10.9.1.1/24]}
    interfaces:
      vb: {addresses: [10.9.2.1/24]}
    nat:
      masquerade:
        - {out: vb, src: [10.9.1.0/24]}
  ${1}a:
    interfaces:
      eth0: {addresses: [10.9.1.2/24]}
    routes:
      - {to: default, via: 10.9.1.1}
  ${1}b:
    # no route back to 10.9.1.0/24: only masquerade gets replies home
    interfaces:
      eth0: {addresses: [10.9.2.2/24]}
links:
  - endpoints: [${1}a:eth0, ${1}r:br0]
  - endpoints: [${1}b:eth0, ${1}r:vb]
expect:
  - {from: ${1}a, to: ${1}b, ttl: 63}
EOF
}

# fwd_direct PREFIX PROFILE: the direct pair PREFIXa -- PREFIXb.
fwd_direct() {
	cat <<EOF
name: fwd-${1%-}-direct
profile: $2
nodes:
  ${1}a:
    interfaces:
      eth0: {addresses: [10.9.2.1/24]}
  ${1}b:
    interfaces:
      eth0: {addresses: [10.9.2.2/24]}
links:
  - endpoints: [${1}a:eth0, ${1}b:eth0]
expect:
  - {from: ${1}a, to: ${1}b, ttl: 64}
EOF
}

fwd() { # path prefix profile
	[[ $2 =~ ^[a-z]{1,4}-$ ]] || { echo "topo.sh: a prefix is 1-4 letters and a dash" >&2; exit 2; }
	[[ $3 =~ ^(default|fast)$ ]] || { echo "topo.sh: a profile is default or fast" >&2; exit 2; }
	"fwd_$1" "$2" "$3"
}

count() { # N: a positive integer, at most 100,000
	[[ ${1:-} =~ ^[1-9][0-9]{0,5}$ ]] && (($1 <= 100000)) ||
		{ echo "topo.sh: bad count ${1:-none}" >&2; exit 2; }
}

case ${1:-} in
star) count "${2:-}"; star bench-star "$2" 10.1.0.0/16 && star_expect "$2" ;;
bridge) count "${2:-}"; bridge "$2" ;;
pairs) count "${2:-}"; pairs "$2" ;;
group) count "${2:-}"; star bench-group "$2" 10.0.0.0/8 ;;
fwd-routed | fwd-masq | fwd-direct) fwd "${1#fwd-}" "${2:-tp-}" "${3:-default}" ;;
*) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
