package topology

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// A segment is one layer-2 network of the lab: the two ends of a plain
// link, or a bridge with everything attached to it, or a node's loopback.
// Subnets live on segments; routing moves packets between them.
type segment struct {
	name    string
	pos     Pos
	members []member
}

type member struct {
	node   *Node
	dev    string
	addrs  []netip.Prefix
	router bool // set per family during a search
}

func (r *resolver) buildSegments() {
	add := func(s *segment) {
		r.segments = append(r.segments, s)
	}
	for _, l := range r.t.Links {
		if l.B.Master != nil {
			continue
		}
		add(&segment{name: "link " + l.A.String() + " - " + l.B.String(), pos: l.pos, members: []member{
			{node: l.A.Node, dev: l.A.Name, addrs: l.A.Addrs},
			{node: l.B.Node, dev: l.B.Name, addrs: l.B.Addrs},
		}})
	}
	for _, n := range r.t.Nodes {
		for _, b := range n.Bridges {
			s := &segment{name: "bridge " + n.Name + ":" + b.Name, pos: b.pos, members: []member{{node: n, dev: b.Name, addrs: b.Addrs}}}
			for _, p := range b.Ports {
				peer := p.Peer()
				s.members = append(s.members, member{node: peer.Node, dev: peer.Name, addrs: peer.Addrs})
			}
			add(s)
		}
		if len(n.Loopback) > 0 {
			add(&segment{name: "loopback of " + n.Name, members: []member{{node: n, dev: "lo", addrs: n.Loopback}}})
		}
	}
	r.t.segments = r.segments
}

// subnet is one prefix on one segment.
type subnet struct {
	prefix netip.Prefix
	seg    *segment
}

// overlaps reports subnets of different segments that overlap: an error
// when one node sits on both (its routing would be ambiguous), a warning
// otherwise (two separate LANs numbered alike, as behind two NATs).
func (r *resolver) overlaps() {
	var all []subnet
	for _, s := range r.segments {
		seen := map[netip.Prefix]bool{}
		for _, m := range s.members {
			for _, p := range m.addrs {
				if q := p.Masked(); !seen[q] {
					seen[q] = true
					all = append(all, subnet{q, s})
				}
			}
		}
	}
	slices.SortFunc(all, func(a, b subnet) int {
		return cmp.Or(a.prefix.Addr().Compare(b.prefix.Addr()), cmp.Compare(a.prefix.Bits(), b.prefix.Bits()))
	})
	var open []subnet // enclosing prefixes of the current one, outermost first
	reported := map[[2]*segment]bool{}
	for _, cur := range all {
		for len(open) > 0 && !open[len(open)-1].prefix.Contains(cur.prefix.Addr()) {
			open = open[:len(open)-1]
		}
		for _, o := range open {
			if o.seg != cur.seg && !reported[[2]*segment{o.seg, cur.seg}] {
				reported[[2]*segment{o.seg, cur.seg}] = true
				r.overlap(o, cur)
			}
		}
		open = append(open, cur)
	}
}

func (r *resolver) overlap(a, b subnet) {
	for _, ma := range a.seg.members {
		for _, mb := range b.seg.members {
			if ma.node == mb.node && len(ma.addrs) > 0 && len(mb.addrs) > 0 {
				r.errs.add(b.seg.pos, "node %s: subnet %s on %s overlaps %s on %s; the node could not tell them apart",
					ma.node.Name, a.prefix, ma.dev, b.prefix, mb.dev)
				return
			}
		}
	}
	r.errs.warn(b.seg.pos, "subnet %s (%s) overlaps %s (%s); fine for separate networks behind NAT, a mistake otherwise",
		a.prefix, a.seg.name, b.prefix, b.seg.name)
}

// hop is the first step towards a segment: the gateway and the device.
type hop struct {
	gw   netip.Addr
	dev  string
	dist int
}

// autoRoutes gives every node that asks for them a route to each lab
// subnet it is not on, via the nearest router, by breadth-first search over
// the segments through nodes that forward. Hand-made routes win.
func (r *resolver) autoRoutes() {
	bySeg := map[*Node][]*segment{}
	for _, s := range r.segments {
		for _, m := range s.members {
			bySeg[m.node] = append(bySeg[m.node], s)
		}
	}
	for _, n := range r.t.Nodes {
		if !n.AutoRoutes {
			continue
		}
		for _, v6 := range []bool{false, true} {
			r.autoRoutesFamily(n, v6, bySeg)
		}
	}
}

// addrOf returns a member's address of one family. A member on a link left
// down has none as far as routing goes: nothing passes there.
func addrOf(m member, v6 bool) (netip.Prefix, bool) {
	if i := m.node.Interface(m.dev); i != nil && i.Down {
		return netip.Prefix{}, false
	}
	for _, p := range m.addrs {
		if p.Addr().Is6() == v6 {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func forwards(n *Node, v6 bool) bool {
	if v6 {
		return n.Forward6
	}
	return n.Forward4
}

func (r *resolver) autoRoutesFamily(n *Node, v6 bool, bySeg map[*Node][]*segment) {
	first := map[*Node]hop{n: {}}
	var queue []*Node
	// Neighbours on n's own segments are reached directly.
	for _, s := range bySeg[n] {
		own, ok := r.memberOf(s, n, v6)
		if !ok {
			continue
		}
		for _, m := range s.members {
			a, ok := addrOf(m, v6)
			if _, seen := first[m.node]; !ok || seen {
				continue
			}
			first[m.node] = hop{gw: a.Addr(), dev: own.dev, dist: 1}
			if forwards(m.node, v6) {
				queue = append(queue, m.node)
			}
		}
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, s := range bySeg[cur] {
			if _, ok := r.memberOf(s, cur, v6); !ok {
				continue
			}
			for _, m := range s.members {
				if _, ok := addrOf(m, v6); !ok {
					continue
				}
				if _, seen := first[m.node]; seen {
					continue
				}
				h := first[cur]
				h.dist++
				first[m.node] = h
				if forwards(m.node, v6) {
					queue = append(queue, m.node)
				}
			}
		}
	}
	mine := map[netip.Prefix]bool{}
	for _, c := range n.connected() {
		mine[c.prefix.Masked()] = true
	}
	for _, p := range n.Loopback {
		mine[p.Masked()] = true
	}
	for _, s := range r.segments {
		best, found := hop{}, false
		for _, m := range s.members {
			h, ok := first[m.node]
			if !ok || m.node == n || !forwards(m.node, v6) {
				continue
			}
			if _, has := addrOf(m, v6); has && (!found || h.dist < best.dist) {
				best, found = h, true
			}
		}
		if !found {
			continue
		}
		for _, m := range s.members {
			for _, p := range m.addrs {
				q := p.Masked()
				if q.Addr().Is6() != v6 || mine[q] || hasRoute(n, q, 0) {
					continue
				}
				mine[q] = true
				n.Routes = append(n.Routes, &Route{Dst: q, Via: best.gw, Auto: true})
			}
		}
	}
}

// memberOf returns n's membership of s with an address of the family.
func (r *resolver) memberOf(s *segment, n *Node, v6 bool) (member, bool) {
	for _, m := range s.members {
		if m.node == n {
			if _, ok := addrOf(m, v6); ok {
				return m, true
			}
		}
	}
	return member{}, false
}

// Hop is one node a packet passes in Walk.
type Hop struct {
	Node *Node
	Out  string     // output device
	Via  netip.Addr // gateway, when the route has one
}

// Walk follows the lab's routes (main table, as the file gives them) from
// a node towards dst, and reports the nodes passed, whether dst was
// reached, and otherwise why not. It knows only the lab: it ignores
// policy rules, firewalls and NAT.
func (t *Topology) Walk(from *Node, dst netip.Addr) ([]Hop, bool, string) {
	var hops []Hop
	cur := from
	for range 64 {
		if cur.owns(dst) {
			hops = append(hops, Hop{Node: cur})
			return hops, true, ""
		}
		if cur != from && !forwards(cur, dst.Is6()) {
			return hops, false, fmt.Sprintf("node %s does not forward %s", cur.Name, family(dst))
		}
		dev, via, ok := cur.lookup(dst)
		if !ok {
			return hops, false, fmt.Sprintf("node %s has no route to %s", cur.Name, dst)
		}
		hops = append(hops, Hop{Node: cur, Out: dev, Via: via})
		next := via
		if !next.IsValid() {
			next = dst
		}
		nxt := t.neighbour(cur, dev, next)
		if nxt == nil {
			return hops, false, fmt.Sprintf("nothing answers for %s on %s:%s", next, cur.Name, dev)
		}
		cur = nxt
	}
	return hops, false, "routing loop"
}

func family(a netip.Addr) string {
	if a.Is6() {
		return "IPv6"
	}
	return "IPv4"
}

// lookup picks n's route to dst by longest prefix: connected subnets, then
// routes of the main table.
func (n *Node) lookup(dst netip.Addr) (string, netip.Addr, bool) {
	bestBits := -1
	var dev string
	var via netip.Addr
	for _, c := range n.connected() {
		if c.prefix.Masked().Contains(dst) && c.prefix.Bits() > bestBits {
			bestBits, dev, via = c.prefix.Bits(), c.dev, netip.Addr{}
		}
	}
	for _, rt := range n.Routes {
		if rt.Table == 0 && rt.Dst.Contains(dst) && rt.Dst.Bits() > bestBits {
			bestBits, dev, via = rt.Dst.Bits(), rt.Dev, rt.Via
			if dev == "" {
				dev = n.devFor(rt.Via)
			}
		}
	}
	return dev, via, bestBits >= 0
}

// devFor returns the device whose subnet holds gw.
func (n *Node) devFor(gw netip.Addr) string {
	for _, c := range n.connected() {
		if c.prefix.Masked().Contains(gw) {
			return c.dev
		}
	}
	return ""
}

// neighbour returns the node on n's segment behind dev that owns addr.
func (t *Topology) neighbour(n *Node, dev string, addr netip.Addr) *Node {
	for _, s := range t.segments {
		in := false
		for _, m := range s.members {
			in = in || (m.node == n && m.dev == dev)
		}
		if !in {
			continue
		}
		for _, m := range s.members {
			for _, p := range m.addrs {
				if p.Addr() == addr {
					return m.node
				}
			}
		}
	}
	return nil
}

// wayBack warns about expectations whose probe would reach its target by
// the file's routes while the target has no route back. fes are the
// expectations as written, one for each of r.t.Expect.
func (r *resolver) wayBack(fes []FileExpect) {
	if len(r.segments) > 5000 {
		return // a simulation per expectation is for small labs
	}
	for i, e := range r.t.Expect {
		if !e.Reach || e.From == nil || e.Target == nil || e.From.Host || e.Target.Host || !e.Addr.IsValid() {
			continue
		}
		hops, ok, _ := r.t.Walk(e.From, e.Addr)
		if !ok || len(hops) < 2 || natOnPath(hops) {
			continue
		}
		src := sourceFor(e.From, hops[0].Out, e.Addr.Is6())
		if !src.IsValid() {
			continue
		}
		if _, back, why := r.t.Walk(e.Target, src); !back {
			r.errs.warn(fes[i].Pos, "expect[%d]: %s reaches %s by the file's routes, but the reply has no way back to %s: %s",
				i, e.From.Name, e.Addr, src, why)
		}
	}
}

func natOnPath(hops []Hop) bool {
	for _, h := range hops {
		if h.Node.NAT != nil {
			return true
		}
	}
	return false
}

func sourceFor(n *Node, dev string, v6 bool) netip.Addr {
	for _, c := range n.connected() {
		if c.dev == dev && c.prefix.Addr().Is6() == v6 {
			return c.prefix.Addr()
		}
	}
	return netip.Addr{}
}

// Neighbour returns the node on n's network behind dev that holds addr,
// or nil.
func (t *Topology) Neighbour(n *Node, dev string, addr netip.Addr) *Node {
	return t.neighbour(n, dev, addr)
}

// Owns reports whether addr is one of n's addresses in the file.
func (n *Node) Owns(addr netip.Addr) bool { return n.owns(addr) }

// Owner returns the node that holds addr in the file, or nil.
func (t *Topology) Owner(addr netip.Addr) *Node {
	for _, n := range t.Nodes {
		if n.owns(addr) {
			return n
		}
	}
	return nil
}

// FacingDev returns the interface of m on the same network as n's dev.
func (t *Topology) FacingDev(n *Node, dev string, m *Node) string {
	for _, s := range t.segments {
		in := false
		for _, x := range s.members {
			in = in || (x.node == n && x.dev == dev)
		}
		if !in {
			continue
		}
		for _, x := range s.members {
			if x.node == m {
				return x.dev
			}
		}
	}
	return ""
}

// Resolve turns an address, a node (its first address) or node:interface
// into an address of the lab, as expectations do.
func (t *Topology) Resolve(spec string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(spec); err == nil {
		return a, nil
	}
	name, ifname, named := strings.Cut(spec, ":")
	n := t.Node(name)
	if n == nil {
		return netip.Addr{}, fmt.Errorf("no node %q in lab %s", name, t.Name)
	}
	for _, c := range n.connected() {
		if !named || c.dev == ifname {
			return c.prefix.Addr(), nil
		}
	}
	for _, p := range n.Loopback {
		if !named || ifname == "lo" {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no address", spec)
}
