package kernel

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/nsrouter/nsrouter/topology"
	"golang.org/x/sys/unix"
)

// TableSpec is the desired content of one nftables table of the lab's.
type TableSpec struct {
	Family nftables.TableFamily
	Name   string
	Chains []ChainSpec
}

// ChainSpec is one base chain.
type ChainSpec struct {
	Name     string
	Type     nftables.ChainType
	Hook     *nftables.ChainHook
	Priority *nftables.ChainPriority
	Policy   nftables.ChainPolicy
	Rules    []RuleSpec
}

// RuleSpec is one rule: its expressions and the text nft would print for
// it, which is stored as the rule's comment.
type RuleSpec struct {
	Text  string
	Exprs []expr.Any
}

// NodeTable builds a node's table: its filter chains and its NAT.
//
//	table inet nsrouter-LAB {
//		chain forward { type filter hook forward priority filter; policy drop; ... }
//		chain prerouting { type nat hook prerouting priority dstnat; ... }   port forwards
//		chain output-nat { type nat hook output priority -100; ... }         the same, for the node itself
//		chain postrouting { type nat hook postrouting priority srcnat; ... } masquerade, SNAT, hairpin
//	}
func NodeTable(lab string, n *topology.Node, fw *topology.Firewall, nat *topology.NAT) TableSpec {
	t := TableSpec{Family: nftables.TableFamilyINet, Name: TableName(lab)}
	if fw != nil {
		hooks := map[string]*nftables.ChainHook{
			"input": nftables.ChainHookInput, "forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
		}
		for _, c := range fw.Chains() {
			cs := ChainSpec{Name: c.Hook, Type: nftables.ChainTypeFilter, Hook: hooks[c.Hook],
				Priority: nftables.ChainPriorityFilter, Policy: nftables.ChainPolicyAccept}
			if c.Chain.Policy == "drop" {
				cs.Policy = nftables.ChainPolicyDrop
			}
			for _, r := range c.Chain.Rules {
				cs.Rules = append(cs.Rules, RuleSpec{Text: RuleText(r), Exprs: ruleExprs(r)})
			}
			t.Chains = append(t.Chains, cs)
		}
	}
	if nat != nil {
		t.Chains = append(t.Chains, natChains(n, nat)...)
	}
	return t
}

// RuleText renders a filter rule nearly as nft prints it, without double
// quotes, so the text can sit inside the rule's comment.
func RuleText(r topology.Rule) string {
	var parts []string
	if r.In != "" {
		parts = append(parts, "iifname "+r.In)
	}
	if r.Out != "" {
		parts = append(parts, "oifname "+r.Out)
	}
	fam := "ip"
	if (r.Src.IsValid() && r.Src.Addr().Is6()) || (r.Dst.IsValid() && r.Dst.Addr().Is6()) {
		fam = "ip6"
	}
	if r.Src.IsValid() {
		parts = append(parts, fam+" saddr "+r.Src.String())
	}
	if r.Dst.IsValid() {
		parts = append(parts, fam+" daddr "+r.Dst.String())
	}
	if r.Proto != "" && r.SPort.IsZero() && r.DPort.IsZero() {
		parts = append(parts, "meta l4proto "+r.Proto)
	}
	if !r.SPort.IsZero() {
		parts = append(parts, r.Proto+" sport "+r.SPort.String())
	}
	if !r.DPort.IsZero() {
		parts = append(parts, r.Proto+" dport "+r.DPort.String())
	}
	if len(r.States) > 0 {
		parts = append(parts, "ct state "+strings.Join(r.States, ","))
	}
	parts = append(parts, "counter")
	if r.Log != "" {
		parts = append(parts, "log prefix '"+r.Log+"'")
	}
	action := r.Action
	if action == "reject" {
		action = "reject with icmpx admin-prohibited"
	}
	return strings.Join(append(parts, action), " ")
}

// ifnameData is an interface name as iptables-nft compares it: the name
// and its terminating NUL. Rules in other programs' iptables-nft chains use
// this form, which iptables -S reads back.
func ifnameData(name string) []byte { return append([]byte(name), 0) }

// ifnameFull is an interface name as nft compares it: padded with NULs to
// the kernel's 16 bytes.
func ifnameFull(name string) []byte {
	b := make([]byte, 16)
	copy(b, name)
	return b
}

// matchIfname matches an interface name as nft writes it.
func matchIfname(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameFull(name)}}
}

// matchIfnameIPT matches an interface name as iptables-nft writes it.
func matchIfnameIPT(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(name)}}
}

func matchNFProto(v6 bool) []expr.Any {
	proto := byte(unix.NFPROTO_IPV4)
	if v6 {
		proto = unix.NFPROTO_IPV6
	}
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}}}
}

var l4protos = map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "icmp": unix.IPPROTO_ICMP, "icmpv6": unix.IPPROTO_ICMPV6}

func matchL4(proto string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4protos[proto]}}}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// matchPort compares the transport header's source (offset 0) or
// destination (offset 2) port with a port or range.
func matchPort(p topology.PortRange, offset uint32) []expr.Any {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2}
	if p.Lo == p.Hi {
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(p.Lo)}}
	}
	return []expr.Any{load, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: be16(p.Lo), ToData: be16(p.Hi)}}
}

// ctBits are the conntrack state bits as the ct expression loads them.
var ctBits = map[string]uint32{"invalid": 1, "established": 2, "related": 4, "new": 8}

func matchCt(key expr.CtKey, mask uint32) []expr.Any {
	m := binary.NativeEndian.AppendUint32(nil, mask)
	return []expr.Any{&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)}}
}

// ruleExprs builds the expressions of one filter rule of an inet table,
// in the order RuleText prints them.
func ruleExprs(r topology.Rule) []expr.Any {
	var e []expr.Any
	if r.In != "" {
		e = append(e, matchIfname(expr.MetaKeyIIFNAME, r.In)...)
	}
	if r.Out != "" {
		e = append(e, matchIfname(expr.MetaKeyOIFNAME, r.Out)...)
	}
	if p := firstValid(r.Src, r.Dst); p.IsValid() {
		e = append(e, matchNFProto(p.Addr().Is6())...)
	}
	if r.Src.IsValid() {
		e = append(e, matchPrefix(r.Src, true)...)
	}
	if r.Dst.IsValid() {
		e = append(e, matchPrefix(r.Dst, false)...)
	}
	if r.Proto != "" {
		e = append(e, matchL4(r.Proto)...)
	}
	if !r.SPort.IsZero() {
		e = append(e, matchPort(r.SPort, 0)...)
	}
	if !r.DPort.IsZero() {
		e = append(e, matchPort(r.DPort, 2)...)
	}
	if len(r.States) > 0 {
		var mask uint32
		for _, s := range r.States {
			mask |= ctBits[s]
		}
		e = append(e, matchCt(expr.CtKeySTATE, mask)...)
	}
	e = append(e, &expr.Counter{})
	if r.Log != "" {
		e = append(e, &expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(r.Log)})
	}
	switch r.Action {
	case "accept":
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case "drop":
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	case "reject":
		e = append(e, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED})
	}
	return e
}

func firstValid(ps ...netip.Prefix) netip.Prefix {
	for _, p := range ps {
		if p.IsValid() {
			return p
		}
	}
	return netip.Prefix{}
}

// matchPrefix compares the source or destination address with a prefix,
// as nft compiles it: only the bytes the prefix covers are loaded, and a
// mask only when the prefix ends inside a byte.
func matchPrefix(p netip.Prefix, src bool) []expr.Any {
	off, size := uint32(16), uint32(4) // IPv4 daddr
	if p.Addr().Is6() {
		off, size = 24, 16
	}
	if src {
		off -= size
	}
	n := uint32(p.Bits()+7) / 8
	if n == 0 {
		return nil // any address: the family match says it all
	}
	want := p.Masked().Addr().AsSlice()[:n]
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
	if p.Bits()%8 == 0 {
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: want}}
	}
	m := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{load,
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: m, Xor: make([]byte, n)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: want},
	}
}
