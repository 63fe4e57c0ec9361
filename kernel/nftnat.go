package kernel

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/nsrouter/nsrouter/topology"
	"golang.org/x/sys/unix"
)

// natChains builds a node's NAT chains. Port forwards match any local
// address of the node (fib daddr type local) in prerouting, and again in
// output for connections the node opens itself. Hairpin NAT masquerades
// clients on the target's own LAN, so the target answers through the
// router instead of straight to a client that expects the public address.
func natChains(n *topology.Node, nat *topology.NAT) []ChainSpec {
	pre := ChainSpec{Name: "prerouting", Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityNATDest, Policy: nftables.ChainPolicyAccept}
	out := ChainSpec{Name: "output-nat", Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookOutput,
		Priority: nftables.ChainPriorityNATDest, Policy: nftables.ChainPolicyAccept}
	post := ChainSpec{Name: "postrouting", Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource, Policy: nftables.ChainPolicyAccept}
	for _, pf := range nat.Ports {
		pre.Rules = append(pre.Rules, dnatRule(pf, pf.In))
		out.Rules = append(out.Rules, dnatRule(pf, ""))
		if sub, ok := subnetOf(n, pf.To); ok && pf.Hairpin {
			post.Rules = append(post.Rules, hairpinRule(pf, sub))
		}
	}
	for _, m := range nat.Masquerade {
		for _, src := range m.Src {
			post.Rules = append(post.Rules, masqRule(m, src))
		}
	}
	var chains []ChainSpec
	for _, c := range []ChainSpec{pre, out, post} {
		if len(c.Rules) > 0 {
			chains = append(chains, c)
		}
	}
	return chains
}

// subnetOf returns the node's connected subnet that holds addr.
func subnetOf(n *topology.Node, addr netip.Addr) (netip.Prefix, bool) {
	prefixes := append([]netip.Prefix{}, n.Loopback...)
	for _, i := range n.Interfaces {
		if i.Master == nil {
			prefixes = append(prefixes, i.Addrs...)
		}
	}
	for _, b := range n.Bridges {
		prefixes = append(prefixes, b.Addrs...)
	}
	for _, p := range prefixes {
		if p.Masked().Contains(addr) {
			return p.Masked(), true
		}
	}
	return netip.Prefix{}, false
}

func natFamily(a netip.Addr) (uint32, string) {
	if a.Is6() {
		return unix.NFPROTO_IPV6, "ip6"
	}
	return unix.NFPROTO_IPV4, "ip"
}

// dnatRule: iifname "eth1" fib daddr type local meta l4proto tcp th dport 8080 counter dnat ip to 10.0.0.2:80
func dnatRule(pf topology.PortForward, in string) RuleSpec {
	fam, famName := natFamily(pf.To)
	var e []expr.Any
	text := ""
	if in != "" {
		e = append(e, matchIfname(expr.MetaKeyIIFNAME, in)...)
		text = "iifname " + in + " "
	}
	e = append(e, matchNFProto(pf.To.Is6())...)
	e = append(e, &expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(unix.RTN_LOCAL)})
	e = append(e, matchL4(pf.Proto)...)
	e = append(e, matchPort(pf.Port, 2)...)
	e = append(e, &expr.Counter{}, &expr.Immediate{Register: 1, Data: pf.To.AsSlice()})
	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: 1}
	to := pf.To.String()
	if pf.To.Is6() {
		to = "[" + to + "]"
	}
	if pf.ToPort != 0 {
		e = append(e, &expr.Immediate{Register: 2, Data: be16(pf.ToPort)})
		nat.RegProtoMin = 2
		to += fmt.Sprintf(":%d", pf.ToPort)
	}
	e = append(e, nat)
	text += fmt.Sprintf("meta nfproto %s fib daddr type local %s dport %s counter dnat %s to %s",
		map[bool]string{false: "ipv4", true: "ipv6"}[pf.To.Is6()], pf.Proto, pf.Port, famName, to)
	return RuleSpec{Text: text, Exprs: e}
}

// hairpinRule: ip saddr 10.0.0.0/24 ip daddr 10.0.0.2 meta l4proto tcp th dport 80 ct status dnat counter masquerade
func hairpinRule(pf topology.PortForward, sub netip.Prefix) RuleSpec {
	port := pf.Port
	if pf.ToPort != 0 {
		port = topology.PortRange{Lo: pf.ToPort, Hi: pf.ToPort}
	}
	_, famName := natFamily(pf.To)
	var e []expr.Any
	e = append(e, matchNFProto(pf.To.Is6())...)
	e = append(e, matchPrefix(sub, true)...)
	e = append(e, matchPrefix(netip.PrefixFrom(pf.To, pf.To.BitLen()), false)...)
	e = append(e, matchL4(pf.Proto)...)
	e = append(e, matchPort(port, 2)...)
	e = append(e, matchCt(expr.CtKeySTATUS, 0x20)...) // IPS_DST_NAT
	e = append(e, &expr.Counter{}, &expr.Masq{})
	text := fmt.Sprintf("%s saddr %s %s daddr %s %s dport %s ct status dnat counter masquerade",
		famName, sub, famName, pf.To, pf.Proto, port)
	return RuleSpec{Text: text, Exprs: e}
}

// masqRule: oifname "eth1" ip saddr 10.0.0.0/24 counter masquerade (or snat ip to ADDR)
func masqRule(m topology.Masquerade, src netip.Prefix) RuleSpec {
	return masqRuleIn(m, src, true)
}

// masqRuleIn builds the rule for an inet table (with a family match) or a
// table of one family (without: nft cannot read a family match there).
func masqRuleIn(m topology.Masquerade, src netip.Prefix, inet bool) RuleSpec {
	fam, famName := natFamily(src.Addr())
	var e []expr.Any
	e = append(e, matchIfname(expr.MetaKeyOIFNAME, m.Out)...)
	if inet {
		e = append(e, matchNFProto(src.Addr().Is6())...)
	}
	e = append(e, matchPrefix(src, true)...)
	e = append(e, &expr.Counter{})
	text := fmt.Sprintf("oifname %s %s saddr %s counter ", m.Out, famName, src)
	if m.To.IsValid() {
		e = append(e, &expr.Immediate{Register: 1, Data: m.To.AsSlice()},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: fam, RegAddrMin: 1})
		return RuleSpec{Text: text + fmt.Sprintf("snat %s to %s", famName, m.To), Exprs: e}
	}
	e = append(e, &expr.Masq{})
	return RuleSpec{Text: text + "masquerade", Exprs: e}
}
