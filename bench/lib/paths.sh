# paths.sh -- sourced by lib/forward.sh and lib/profile.sh: builds one of
# the shared harness's forwarding paths by hand, with the commands of its
# lib/bench_tput.sh, in namespaces PREFIXa (client), PREFIXr (router) and
# PREFIXb (server, 10.9.2.2), so several copies can exist at once.
#
#   build_path direct|routed|masq PREFIX   sets ENDS to "ns:iface ..."
build_path() {
	local a=$2a r=$2r b=$2b e
	ip netns add "$a" && ip netns add "$b" || return 1
	ip -n "$a" link set lo up && ip -n "$b" link set lo up
	if [[ $1 == direct ]]; then
		ip link add eth0 netns "$a" type veth peer name eth0 netns "$b"
		ip -n "$a" addr add 10.9.2.1/24 dev eth0
		ENDS="$a:eth0 $b:eth0"
	else
		ip netns add "$r" && ip -n "$r" link set lo up
		ip netns exec "$r" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
		ip link add va netns "$r" type veth peer name eth0 netns "$a"
		ip link add vb netns "$r" type veth peer name eth0 netns "$b"
		if [[ $1 == routed ]]; then
			ip -n "$r" addr add 10.9.1.1/24 dev va
		else
			ip -n "$r" link add br0 type bridge
			ip -n "$r" link set va master br0
			ip -n "$r" link set br0 up
			ip -n "$r" addr add 10.9.1.1/24 dev br0
		fi
		ip -n "$r" addr add 10.9.2.1/24 dev vb
		ip -n "$a" addr add 10.9.1.2/24 dev eth0
		ENDS="$a:eth0 $r:va $r:vb $b:eth0"
	fi
	ip -n "$b" addr add 10.9.2.2/24 dev eth0
	for e in $ENDS; do ip -n "${e%%:*}" link set "${e#*:}" up || return 1; done
	[[ $1 == direct ]] && return
	ip -n "$a" route add default via 10.9.1.1
	if [[ $1 == routed ]]; then
		ip -n "$b" route add default via 10.9.2.1
	else # b has no route back: only the NAT gets replies home
		ip netns exec "$r" nft -f - <<'NFT'
table ip bnnat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.9.1.0/24 oifname "vb" masquerade
  }
}
NFT
	fi
}
