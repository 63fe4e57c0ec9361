package kernel

import (
	"encoding/binary"
	"errors"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/google/nftables/xt"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table that holds a lab's rules in a namespace.
func TableName(lab string) string { return "nsrouter-" + lab }

func comment(s string) []byte { return userdata.AppendString(nil, userdata.TypeComment, s) }

// commentOf returns a rule's comment: the one nft and nsrouter keep in the
// rule's user data, or the xt comment match iptables-nft writes for
// `-m comment` (how `nsrouter script` marks rules in iptables chains).
func commentOf(r *nftables.Rule) string {
	if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
		return s
	}
	for _, e := range r.Exprs {
		if m, ok := e.(*expr.Match); ok && m.Name == "comment" {
			if c, ok := m.Info.(*xt.Comment); ok {
				return string(*c)
			}
		}
	}
	return ""
}

func nativeU32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// EnsureTable makes the table in ns hold exactly spec, in one transaction
// that deletes and re-creates it; when it already does, nothing is sent.
// With flush, a change to an existing table also empties the namespace's
// conntrack table, so that no flow keeps a verdict or translation of the
// old rules. The host's table is never flushed: its flows are not ours.
func (ns *NS) EnsureTable(spec TableSpec, flush bool) (changed bool, err error) {
	table := &nftables.Table{Name: spec.Name, Family: spec.Family}
	same, existed, err := ns.tableIs(table, spec)
	if err != nil || same {
		return false, err
	}
	if existed {
		ns.conn().DelTable(table)
	}
	ns.conn().AddTable(table)
	for _, cs := range spec.Chains {
		policy := cs.Policy
		chain := ns.conn().AddChain(&nftables.Chain{Name: cs.Name, Table: table, Type: cs.Type,
			Hooknum: cs.Hook, Priority: cs.Priority, Policy: &policy})
		for _, r := range cs.Rules {
			ns.conn().AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: r.Exprs, UserData: comment(r.Text)})
		}
	}
	if err := ns.conn().Flush(); err != nil {
		return false, &OpError{Op: "write nftables table", Node: ns.Name, Iface: familyName(spec.Family) + " " + spec.Name, Err: err}
	}
	if existed && flush {
		if err := ns.FlushConntrack(); err != nil {
			return true, err
		}
	}
	return true, nil
}

// FlushConntrack empties the namespace's connection tracking table
// (`conntrack -F`).
func (ns *NS) FlushConntrack() error {
	h, err := netlink.NewHandleAt(ns.fd, unix.NETLINK_NETFILTER)
	if err != nil {
		return &OpError{Op: "flush conntrack", Node: ns.Name, Err: err}
	}
	defer h.Close()
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, allFlows{}); err != nil {
			return &OpError{Op: "flush conntrack", Node: ns.Name, Err: err}
		}
	}
	return nil
}

// allFlows matches every conntrack entry.
type allFlows struct{}

func (allFlows) MatchConntrackFlow(*netlink.ConntrackFlow) bool { return true }

// tableIs reports whether the table exists (existed) and holds exactly the
// chains of spec, each with the same hook, policy and rule texts (same).
func (ns *NS) tableIs(table *nftables.Table, spec TableSpec) (same, existed bool, err error) {
	if _, err := ns.conn().ListTableOfFamily(table.Name, table.Family); err != nil {
		return false, false, nil
	}
	chains, err := ns.conn().ListChainsOfTableFamily(table.Family)
	if err != nil {
		return false, true, &OpError{Op: "list chains", Node: ns.Name, Err: err}
	}
	have := map[string]*nftables.Chain{}
	for _, c := range chains {
		if c.Table.Name == table.Name {
			have[c.Name] = c
		}
	}
	if len(have) != len(spec.Chains) {
		return false, true, nil
	}
	for _, cs := range spec.Chains {
		c, ok := have[cs.Name]
		if !ok || c.Policy == nil || *c.Policy != cs.Policy || c.Type != cs.Type ||
			c.Hooknum == nil || *c.Hooknum != *cs.Hook || c.Priority == nil || *c.Priority != *cs.Priority {
			return false, true, nil
		}
		rules, err := ns.conn().GetRules(table, c)
		if err != nil {
			return false, true, &OpError{Op: "list rules", Node: ns.Name, Iface: table.Name, Err: err}
		}
		if len(rules) != len(cs.Rules) {
			return false, true, nil
		}
		for i, r := range rules {
			if commentOf(r) != cs.Rules[i].Text {
				return false, true, nil
			}
		}
	}
	return true, true, nil
}

// DeleteTable removes the lab's table in ns, if it is there.
func (ns *NS) DeleteTable(lab string) (bool, error) {
	tables, err := ns.conn().ListTables()
	if err != nil {
		return false, &OpError{Op: "list nftables tables", Node: ns.Name, Err: err}
	}
	found := false
	for _, t := range tables {
		if t.Name == TableName(lab) {
			ns.conn().DelTable(t)
			found = true
		}
	}
	if !found {
		return false, nil
	}
	if err := ns.conn().Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return false, &OpError{Op: "delete table", Node: ns.Name, Iface: TableName(lab), Err: err}
	}
	return true, nil
}

// TableNames lists the nftables tables in ns as "family name".
func (ns *NS) TableNames() ([]string, error) {
	tables, err := ns.conn().ListTables()
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
