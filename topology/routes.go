package topology

import (
	"net/netip"
	"strings"
)

// Reserved routing tables: 253 default, 254 main, 255 local.
const (
	TableMain  = 254
	maxTableID = 1<<32 - 1
)

func (r *resolver) table(i Int, what string) int {
	if !i.Set {
		return 0
	}
	if i.Value < 1 || i.Value == 253 || i.Value == 255 || int64(i.Value) > maxTableID {
		r.errs.add(i.Pos, "%s: table %d: use 1-252, 254 (main) or 256 and above", what, i.Value)
		return 0
	}
	if i.Value == TableMain {
		return 0
	}
	return i.Value
}

func (r *resolver) route(n *Node, fr *FileRoute) *Route {
	what := "node " + n.Name + " route"
	rt := &Route{Dev: fr.Dev.Value, Metric: fr.Metric.Value, Table: r.table(fr.Table, what)}
	ok := true
	switch {
	case !fr.To.Set:
		r.errs.add(fr.Pos, "%s: missing field \"to\" (a prefix, or default)", what)
		ok = false
	case fr.To.Value == "default":
		rt.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	default:
		p, err := netip.ParsePrefix(fr.To.Value)
		switch {
		case err != nil:
			r.errs.add(fr.To.Pos, "%s: %q is not a prefix like 10.1.0.0/24, or default", what, fr.To.Value)
			ok = false
		case p != p.Masked():
			r.errs.add(fr.To.Pos, "%s: %s has host bits set; did you mean %s?", what, p, p.Masked())
			ok = false
		}
		rt.Dst = p
	}
	if fr.Via.Set {
		a, err := netip.ParseAddr(fr.Via.Value)
		if err != nil {
			r.errs.add(fr.Via.Pos, "%s: gateway %q is not an IP address", what, fr.Via.Value)
			ok = false
		}
		rt.Via = a
	}
	ok = r.checkIf(fr.Dev, n, what) && ok
	if !fr.Via.Set && !fr.Dev.Set {
		r.errs.add(fr.Pos, "%s: give a gateway (via), a device (dev), or both", what)
		ok = false
	}
	if fr.Metric.Set && fr.Metric.Value < 0 {
		r.errs.add(fr.Metric.Pos, "%s: metric must not be negative", what)
		ok = false
	}
	if !ok {
		return nil
	}
	if rt.Via.IsValid() {
		if fr.To.Value == "default" && rt.Via.Is6() {
			rt.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		if rt.Via.Is4() != rt.Dst.Addr().Is4() {
			r.errs.add(fr.Via.Pos, "%s: gateway %s and destination %s are of different IP versions", what, rt.Via, fr.To.Value)
			return nil
		}
		if n.owns(rt.Via) {
			r.errs.add(fr.Via.Pos, "%s: gateway %s is node %s's own address; give the neighbour's", what, rt.Via, n.Name)
			return nil
		}
		if !onLink(n, rt.Via, rt.Dev) {
			r.errs.add(fr.Via.Pos, "%s: gateway %s is not on any subnet of node %s (%s)", what, rt.Via, n.Name, subnetsOf(n, rt.Dev, rt.Via.Is6()))
			return nil
		}
		if dev := downLink(n, rt.Via, rt.Dev); dev != "" {
			r.errs.add(fr.Via.Pos, "%s: gateway %s is reached only over %s, which the file leaves down (state: down); the kernel refuses a route through a link that is down", what, rt.Via, dev)
			return nil
		}
	}
	if i := n.Interface(rt.Dev); rt.Dev != "" && i != nil && i.Down {
		r.errs.add(fr.Dev.Pos, "%s: dev %s is left down (state: down); the kernel refuses a route through a link that is down", what, rt.Dev)
		return nil
	}
	for _, other := range n.Routes {
		if other.Dst == rt.Dst && other.Table == rt.Table && other.Metric == rt.Metric {
			r.errs.add(fr.Pos, "%s: a route to %s is already given (same table and metric)", what, fr.To.Value)
			return nil
		}
	}
	return rt
}

// downLink returns the interface addr is reached over when every subnet of
// n that holds it is on an interface left down; "" otherwise.
func downLink(n *Node, addr netip.Addr, dev string) string {
	down := ""
	for _, a := range n.connected() {
		if (dev == "" || dev == a.dev) && a.prefix.Masked().Contains(addr) {
			if i := n.Interface(a.dev); i == nil || !i.Down {
				return ""
			}
			down = a.dev
		}
	}
	return down
}

// onLink reports whether addr lies in a subnet of one of n's interfaces
// (only dev's, when dev is set), and is not n's own.
func onLink(n *Node, addr netip.Addr, dev string) bool {
	for _, a := range n.connected() {
		if (dev == "" || dev == a.dev) && a.prefix.Masked().Contains(addr) && a.prefix.Addr() != addr {
			return true
		}
	}
	return false
}

// subnetsOf lists, for a message, n's subnets of one IP version (only
// dev's, when dev is set).
func subnetsOf(n *Node, dev string, v6 bool) string {
	var list []string
	for _, a := range n.connected() {
		if (dev == "" || dev == a.dev) && a.prefix.Addr().Is6() == v6 {
			list = append(list, a.prefix.Masked().String()+" on "+a.dev)
		}
	}
	if len(list) == 0 && v6 {
		return "it has no IPv6 subnet"
	}
	if len(list) == 0 {
		return "it has no IPv4 subnet"
	}
	return "it has " + strings.Join(list, ", ")
}

// ifAddr is an address of a node with the interface it is on.
type ifAddr struct {
	dev    string
	prefix netip.Prefix
}

// connected lists the node's addresses on its links and bridges.
func (n *Node) connected() []ifAddr {
	var out []ifAddr
	for _, i := range n.Interfaces {
		if i.Master != nil {
			continue
		}
		for _, p := range i.Addrs {
			out = append(out, ifAddr{i.Name, p})
		}
	}
	for _, b := range n.Bridges {
		for _, p := range b.Addrs {
			out = append(out, ifAddr{b.Name, p})
		}
	}
	return out
}

func (r *resolver) policyRule(n *Node, fr *FileRule) *PolicyRule {
	what := "node " + n.Name + " rule"
	pr := &PolicyRule{IIF: fr.IIF.Value, OIF: fr.OIF.Value, Priority: fr.Priority.Value}
	pr.From = r.network(fr.From, what+" from")
	pr.To = r.network(fr.To, what+" to")
	r.checkIf(fr.IIF, n, what)
	r.checkIf(fr.OIF, n, what)
	if fr.FwMark.Set {
		if fr.FwMark.Value < 0 || int64(fr.FwMark.Value) > maxTableID {
			r.errs.add(fr.FwMark.Pos, "%s: fwmark %d is not a 32-bit mark", what, fr.FwMark.Value)
		}
		pr.FwMark = uint32(fr.FwMark.Value)
	}
	if fr.Priority.Set && (fr.Priority.Value < 1 || fr.Priority.Value >= 32766) {
		r.errs.add(fr.Priority.Pos, "%s: priority %d: use 1-32765, before the main table's rule", what, fr.Priority.Value)
	}
	if !fr.Table.Set {
		r.errs.add(fr.Pos, "%s: missing field \"table\": the routing table that matching packets look up", what)
		return nil
	}
	pr.Table = r.table(fr.Table, what)
	if pr.Table == 0 {
		pr.Table = TableMain
	}
	switch fr.Family.Value {
	case "", "ipv4":
	case "ipv6":
		pr.IPv6 = true
	default:
		r.errs.add(fr.Family.Pos, "%s: family %q must be ipv4 or ipv6", what, fr.Family.Value)
	}
	for _, p := range []netip.Prefix{pr.From, pr.To} {
		if p.IsValid() {
			pr.IPv6 = p.Addr().Is6()
		}
	}
	if pr.From.IsValid() && pr.To.IsValid() && pr.From.Addr().Is6() != pr.To.Addr().Is6() {
		r.errs.add(fr.To.Pos, "%s: from and to are of different IP versions", what)
	}
	if !fr.From.Set && !fr.To.Set && !fr.IIF.Set && !fr.OIF.Set && !fr.FwMark.Set {
		r.errs.add(fr.Pos, "%s: a rule needs something to match: from, to, iif, oif or fwmark", what)
	}
	return pr
}
