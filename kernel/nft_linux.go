package kernel

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/nsrouter/nsrouter/topology"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table that holds a lab's rules in a namespace.
func TableName(lab string) string { return "nsrouter-" + lab }

// RuleText renders a rule as nft prints it. It is stored as the rule's
// comment, so that a later run can tell whether the kernel already holds
// exactly the rules the file asks for.
func RuleText(r topology.Rule) string {
	var parts []string
	if r.In != "" {
		parts = append(parts, fmt.Sprintf("iifname %q", r.In))
	}
	if r.Out != "" {
		parts = append(parts, fmt.Sprintf("oifname %q", r.Out))
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
	return strings.Join(append(parts, r.Action), " ")
}

// ifnameData is an interface name as the kernel compares it: the name and
// its terminating NUL.
func ifnameData(name string) []byte { return append([]byte(name), 0) }

// ruleExprs builds the expressions of one rule of an inet table:
//
//	iifname "eth0" oifname "eth1" ip saddr 10.11.0.0/24 counter accept
func ruleExprs(r topology.Rule) []expr.Any {
	var e []expr.Any
	if r.In != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(r.In)})
	}
	if r.Out != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(r.Out)})
	}
	var p netip.Prefix
	if r.Src.IsValid() {
		p = r.Src
	} else if r.Dst.IsValid() {
		p = r.Dst
	}
	if p.IsValid() {
		proto := byte(unix.NFPROTO_IPV4)
		if p.Addr().Is6() {
			proto = unix.NFPROTO_IPV6
		}
		e = append(e, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
	}
	if r.Src.IsValid() {
		e = append(e, matchPrefix(r.Src, true)...)
	}
	if r.Dst.IsValid() {
		e = append(e, matchPrefix(r.Dst, false)...)
	}
	e = append(e, &expr.Counter{})
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

// matchPrefix compares the source or destination address with a prefix.
func matchPrefix(p netip.Prefix, src bool) []expr.Any {
	off, size := uint32(16), uint32(4) // IPv4 daddr
	if p.Addr().Is6() {
		off, size = 24, 16
	}
	if src {
		off -= size
	}
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size}
	if p.Bits() == p.Addr().BitLen() {
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()}}
	}
	m := make([]byte, size)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{load,
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: m, Xor: make([]byte, size)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

func comment(s string) []byte { return userdata.AppendString(nil, userdata.TypeComment, s) }

func commentOf(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return s
}

// EnsureFirewall makes the lab's inet table in ns hold exactly fw, in one
// transaction; when it already does, nothing is sent. Its shape:
//
//	table inet nsrouter-LAB {
//		chain forward {
//			type filter hook forward priority filter; policy drop;
//			iifname "eth0" oifname "eth1" counter accept comment "..."
//		}
//	}
func (ns *NS) EnsureFirewall(lab string, fw *topology.Firewall) (changed bool, err error) {
	table := &nftables.Table{Name: TableName(lab), Family: nftables.TableFamilyINet}
	policy := nftables.ChainPolicyAccept
	if fw.Forward.Policy == "drop" {
		policy = nftables.ChainPolicyDrop
	}
	if same, err := ns.firewallIs(table, policy, fw.Forward.Rules); err != nil || same {
		return false, err
	}
	if _, err := ns.nft.ListTableOfFamily(table.Name, table.Family); err == nil {
		ns.nft.DelTable(table)
	}
	ns.nft.AddTable(table)
	chain := ns.nft.AddChain(&nftables.Chain{Name: "forward", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	for _, r := range fw.Forward.Rules {
		ns.nft.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: ruleExprs(r), UserData: comment(RuleText(r))})
	}
	if err := ns.nft.Flush(); err != nil {
		return false, &OpError{Op: "set firewall", Node: ns.Name, Iface: "inet " + table.Name, Err: err}
	}
	return true, nil
}

// firewallIs reports whether the table exists with a forward chain of the
// given policy whose rules carry exactly the wanted texts.
func (ns *NS) firewallIs(table *nftables.Table, policy nftables.ChainPolicy, rules []topology.Rule) (bool, error) {
	chain, err := ns.nft.ListChain(table, "forward")
	if err != nil {
		return false, nil // no table or no chain: build it
	}
	if chain.Policy == nil || *chain.Policy != policy {
		return false, nil
	}
	have, err := ns.nft.GetRules(table, chain)
	if err != nil {
		return false, &OpError{Op: "list rules", Node: ns.Name, Iface: table.Name, Err: err}
	}
	var got, want []string
	for _, r := range have {
		got = append(got, commentOf(r))
	}
	for _, r := range rules {
		want = append(want, RuleText(r))
	}
	chains, err := ns.nft.ListChainsOfTableFamily(table.Family)
	if err != nil {
		return false, &OpError{Op: "list chains", Node: ns.Name, Err: err}
	}
	n := 0
	for _, c := range chains {
		if c.Table.Name == table.Name {
			n++
		}
	}
	return n == 1 && slices.Equal(got, want), nil
}

// DeleteTable removes the lab's table in ns, if it is there.
func (ns *NS) DeleteTable(lab string) (bool, error) {
	tables, err := ns.nft.ListTables()
	if err != nil {
		return false, &OpError{Op: "list nftables tables", Node: ns.Name, Err: err}
	}
	found := false
	for _, t := range tables {
		if t.Name == TableName(lab) {
			ns.nft.DelTable(t)
			found = true
		}
	}
	if !found {
		return false, nil
	}
	if err := ns.nft.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return false, &OpError{Op: "delete table", Node: ns.Name, Iface: TableName(lab), Err: err}
	}
	return true, nil
}

// TableNames lists the nftables tables in ns as "family name".
func (ns *NS) TableNames() ([]string, error) {
	tables, err := ns.nft.ListTables()
	if err != nil {
		return nil, &OpError{Op: "list nftables tables", Node: ns.Name, Err: err}
	}
	var out []string
	for _, t := range tables {
		out = append(out, familyName(t.Family)+" "+t.Name)
	}
	return out, nil
}

func familyName(f nftables.TableFamily) string {
	if s, ok := familyNames[f]; ok {
		return s
	}
	switch f {
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyNetdev:
		return "netdev"
	}
	return "unknown"
}
