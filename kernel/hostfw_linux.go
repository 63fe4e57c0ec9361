package kernel

import (
	"errors"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Bridged frames meet the IP forward hooks when br_netfilter is active
// (net.bridge.bridge-nf-call-iptables=1, as Docker leaves it), and a drop
// in any base chain there is final: an accept in a table of our own cannot
// undo another program's "policy drop". So for each such foreign chain the
// tool puts one rule of its own at the head, marked with the lab:
//
//	iifname "br0" oifname "br0" counter accept comment "nsrouter:classic br0"
//
// Frames that enter and leave the same lab bridge are L2 traffic between
// lab nodes; nothing else is let through.

// ForeignChain names a base chain of another program on the forward hook.
type ForeignChain struct {
	Family string // ip, ip6 or inet
	Table  string
	Chain  string
	Legacy bool   `json:",omitempty"` // an iptables-legacy table, not nftables
	For    string // what the rules let through: "bridges" or "uplink"
}

func (c ForeignChain) String() string {
	if c.Legacy {
		return c.Family + " " + c.Table + " " + c.Chain + " (iptables-legacy)"
	}
	return c.Family + " " + c.Table + " " + c.Chain
}

var familyNames = map[nftables.TableFamily]string{
	nftables.TableFamilyIPv4: "ip",
	nftables.TableFamilyIPv6: "ip6",
	nftables.TableFamilyINet: "inet",
}

// bridgedRuleComment identifies the rule for one bridge of one lab.
func bridgedRuleComment(mark, bridge string) string { return mark + " " + bridge }

// forwardDrops lists the base chains of other programs on the forward hook
// whose policy is drop and which see the traffic: routed IPv4 always,
// bridged frames only in the families br_netfilter sends them to.
func (ns *NS) forwardDrops(lab string, routed bool) ([]*nftables.Chain, error) {
	v4, _ := ns.Sysctl("net.bridge.bridge-nf-call-iptables")
	v6, _ := ns.Sysctl("net.bridge.bridge-nf-call-ip6tables")
	chains, err := ns.conn().ListChains()
	if err != nil {
		return nil, &OpError{Op: "list nftables chains", Node: ns.Name, Err: err}
	}
	var out []*nftables.Chain
	for _, c := range chains {
		if c.Table.Name == TableName(lab) || c.Hooknum == nil || *c.Hooknum != *nftables.ChainHookForward ||
			c.Policy == nil || *c.Policy != nftables.ChainPolicyDrop {
			continue
		}
		var sees bool
		switch c.Table.Family {
		case nftables.TableFamilyIPv4:
			sees = routed || v4 == "1"
		case nftables.TableFamilyIPv6:
			sees = !routed && v6 == "1"
		case nftables.TableFamilyINet:
			sees = routed || v4 == "1" || v6 == "1"
		}
		if sees {
			out = append(out, c)
		}
	}
	return out, nil
}

// bridgedRules are the rules, nftables and legacy, that let frames cross
// each of the bridges.
func bridgedRules(lab string, bridges []string) ([]RuleSpec, []xtRule) {
	var rules []RuleSpec
	var legacy []xtRule
	for _, br := range bridges {
		e := append(matchIfnameIPT(expr.MetaKeyIIFNAME, br), matchIfnameIPT(expr.MetaKeyOIFNAME, br)...)
		rules = append(rules, RuleSpec{Text: bridgedRuleComment(Mark(lab), br),
			Exprs: append(e, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept})})
		legacy = append(legacy, xtRule{In: br, Out: br, Comment: bridgedRuleComment(Mark(lab), br)})
	}
	return rules, legacy
}

// AllowBridged makes sure every foreign forward chain with a drop policy
// lets frames cross each of the bridges, and returns those chains.
func (ns *NS) AllowBridged(lab string, bridges []string) (chains []ForeignChain, changed bool, err error) {
	rules, legacy := bridgedRules(lab, bridges)
	return ns.ensureBoth(lab, rules, legacy, false, "bridges")
}

// uplinkRules let the uplink's traffic through foreign forward chains
// with a drop policy, in the two rules iptables-nft itself writes for
// `-i`/`-o` matches, so `iptables -S` still reads the chain:
//
//	iifname "nsr-lab" counter accept
//	oifname "nsr-lab" counter accept
//
// The second lets the host forward anything to the uplink, not only
// replies: iptables-nft cannot read a connection-state match written
// over netlink. The lab node behind it masquerades and forwards only what
// its own rules allow.
func uplinkRules(lab, hostEnd string) ([]RuleSpec, []xtRule) {
	mark := Mark(lab)
	in := append(matchIfnameIPT(expr.MetaKeyIIFNAME, hostEnd), &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept})
	out := append(matchIfnameIPT(expr.MetaKeyOIFNAME, hostEnd), &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept})
	return []RuleSpec{
			{Text: mark + " uplink-in", Exprs: in},
			{Text: mark + " uplink-out", Exprs: out},
		}, []xtRule{
			{In: hostEnd, Comment: mark + " uplink-in"},
			{Out: hostEnd, Comment: mark + " uplink-out"},
		}
}

// AllowUplink lets the uplink's traffic through (see uplinkRules).
func (ns *NS) AllowUplink(lab, hostEnd string) ([]ForeignChain, bool, error) {
	rules, legacy := uplinkRules(lab, hostEnd)
	return ns.ensureBoth(lab, rules, legacy, true, "uplink")
}

// MissingForeign returns the comments of the rules that AllowBridged (for
// bridges) and AllowUplink (for uplinkEnd, if not empty) would add now,
// without changing anything.
func (ns *NS) MissingForeign(lab string, bridges []string, uplinkEnd string) []string {
	var out []string
	check := func(rules []RuleSpec, legacy []xtRule, routed bool) {
		drops, _ := ns.forwardDrops(lab, routed)
		for _, c := range drops {
			missing, _ := ns.missingIn(c, rules)
			for _, r := range missing {
				out = append(out, r.Text)
			}
		}
		out = append(out, ns.legacyMissing(legacy, routed)...)
	}
	if len(bridges) > 0 {
		rules, legacy := bridgedRules(lab, bridges)
		check(rules, legacy, false)
	}
	if uplinkEnd != "" {
		rules, legacy := uplinkRules(lab, uplinkEnd)
		check(rules, legacy, true)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RemoveForeignRule deletes every copy of the lab's rule with this comment
// from other programs' chains, nftables and iptables-legacy.
func (ns *NS) RemoveForeignRule(comment string) error {
	match := func(c string) bool { return c == comment }
	_, err := ns.removeNFTIf("", match)
	_, lerr := ns.legacyRemoveIf(match)
	return errors.Join(err, lerr)
}

// ensureBoth puts the rules into the nftables chains and their twins into
// the iptables-legacy FORWARD chains that drop.
func (ns *NS) ensureBoth(lab string, rules []RuleSpec, legacy []xtRule, routed bool, purpose string) ([]ForeignChain, bool, error) {
	chains, changed, err := ns.ensureForeign(lab, rules, routed)
	lc, lchanged, lerr := ns.legacyEnsure(legacy, routed)
	chains = append(chains, lc...)
	for i := range chains {
		chains[i].For = purpose
	}
	return chains, changed || lchanged, errors.Join(err, lerr)
}

// ensureForeign puts each rule, identified by its comment, at the head of
// every foreign forward chain with a drop policy, unless it is there.
func (ns *NS) ensureForeign(lab string, rules []RuleSpec, routed bool) (chains []ForeignChain, changed bool, err error) {
	drops, err := ns.forwardDrops(lab, routed)
	if err != nil {
		return nil, false, err
	}
	for _, c := range drops {
		chains = append(chains, ForeignChain{Family: familyNames[c.Table.Family], Table: c.Table.Name, Chain: c.Name})
		missing, err := ns.missingIn(c, rules)
		if err != nil {
			return chains, changed, err
		}
		for _, r := range slices.Backward(missing) { // each goes to the head: the first ends first
			ns.conn().InsertRule(&nftables.Rule{Table: c.Table, Chain: c, UserData: comment(r.Text), Exprs: r.Exprs})
			changed = true
		}
	}
	if !changed {
		return chains, false, nil
	}
	if err := ns.conn().Flush(); err != nil {
		return chains, false, &OpError{Op: "add rules to foreign forward chains", Node: ns.Name, Err: err}
	}
	return chains, true, nil
}

// missingIn returns the rules whose comment no rule of chain c carries.
func (ns *NS) missingIn(c *nftables.Chain, rules []RuleSpec) ([]RuleSpec, error) {
	have, err := ns.conn().GetRules(c.Table, c)
	if err != nil {
		return nil, &OpError{Op: "list rules", Node: ns.Name, Iface: c.Table.Name + "/" + c.Name, Err: err}
	}
	comments := map[string]bool{}
	for _, r := range have {
		comments[commentOf(r)] = true
	}
	var out []RuleSpec
	for _, r := range rules {
		if !comments[r.Text] {
			out = append(out, r)
		}
	}
	return out, nil
}

// RemoveForeignRules deletes every rule the lab put into chains it does
// not own, nftables and iptables-legacy, returning how many.
func (ns *NS) RemoveForeignRules(lab string) (int, error) {
	n, err := ns.removeForeignNFT(lab)
	k, lerr := ns.legacyRemove(Mark(lab))
	return n + k, errors.Join(err, lerr)
}

func (ns *NS) removeForeignNFT(lab string) (int, error) {
	return ns.removeNFTIf(TableName(lab), markedBy(Mark(lab)))
}

// removeNFTIf deletes the rules whose comment matches from every nftables
// chain outside the table named skip, returning how many.
func (ns *NS) removeNFTIf(skip string, match func(comment string) bool) (int, error) {
	chains, err := ns.conn().ListChains()
	if err != nil {
		return 0, &OpError{Op: "list nftables chains", Node: ns.Name, Err: err}
	}
	n := 0
	var errs []error
	for _, c := range chains {
		if c.Table.Name == skip {
			continue
		}
		rules, err := ns.conn().GetRules(c.Table, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range rules {
			if match(commentOf(r)) {
				if err := ns.conn().DelRule(r); err != nil {
					errs = append(errs, err)
					continue
				}
				n++
			}
		}
	}
	if n > 0 {
		if err := ns.conn().Flush(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, &OpError{Op: "remove rules in foreign chains", Node: ns.Name, Err: err}
	}
	return n, nil
}

// ForeignRules returns, by lab, the comments of marked rules in other
// programs' chains, nftables and iptables-legacy, each once.
func (ns *NS) ForeignRules() map[string][]string {
	out := map[string][]string{}
	seen := map[string]bool{}
	add := func(c string) {
		lab, ok := LabOfMark(c)
		if !ok || seen[c] {
			return
		}
		lab, _, _ = strings.Cut(lab, " ")
		seen[c] = true
		out[lab] = append(out[lab], c)
	}
	chains, _ := ns.conn().ListChains()
	for _, c := range chains {
		if strings.HasPrefix(c.Table.Name, "nsrouter-") {
			continue
		}
		rules, _ := ns.conn().GetRules(c.Table, c)
		for _, r := range rules {
			add(commentOf(r))
		}
	}
	for _, c := range ns.legacyComments("nsrouter:") {
		add(c)
	}
	return out
}
