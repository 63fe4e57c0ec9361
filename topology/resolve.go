package topology

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
)

var (
	labNameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
	ifNameRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
)

func valueOf(f *File) reflect.Value { return reflect.ValueOf(f).Elem() }

// resolver turns the decoded file into the model, checking every reference
// and value on the way and recording every problem.
type resolver struct {
	errs  *ErrorList
	t     *Topology
	names []string // node names, for suggestions
	// declared keeps the settings of interfaces named under a node, to be
	// attached when a link creates that interface.
	declared map[*Node]Map[FileInterface]
	// addrs maps each lab address to where it was first assigned.
	addrs map[netip.Addr]string
}

func resolve(source string, f *File, errs *ErrorList) *Topology {
	r := &resolver{
		errs:     errs,
		t:        &Topology{Source: source, Name: f.Name.Value},
		declared: map[*Node]Map[FileInterface]{},
		addrs:    map[netip.Addr]string{},
	}
	r.labName(f)
	r.nodes(f)
	r.links(f)
	r.interfaceSettings()
	for i, fn := range f.Nodes {
		if n := r.t.Node(fn.Key); n != nil && r.t.Nodes[i] == n {
			r.nodeSettings(n, &fn.Value)
		}
	}
	r.expectations(f)
	return r.t
}

func (r *resolver) labName(f *File) {
	switch {
	case !f.Name.Set:
		r.errs.add(Pos{Line: max(f.Pos.Line, 1), Col: max(f.Pos.Col, 1)}, "missing field \"name\": every lab needs a name")
	case !labNameRE.MatchString(f.Name.Value):
		r.errs.add(f.Name.Pos, "name %q: a lab name is 1 to 32 lowercase letters, digits and '-', starting with a letter or digit", f.Name.Value)
	}
}

func (r *resolver) nodes(f *File) {
	if len(f.Nodes) == 0 {
		r.errs.add(Pos{Line: max(f.Pos.Line, 1), Col: max(f.Pos.Col, 1)}, "no nodes: a lab needs at least one node")
	}
	for _, e := range f.Nodes {
		if !nodeNameRE.MatchString(e.Key) || e.Key == "." || e.Key == ".." {
			r.errs.add(e.KeyPos, "node name %q: use 1 to 64 letters, digits, '_', '.' and '-', not starting with '.' or '-' (it names a file under /run/netns)", e.Key)
		}
		n := &Node{Name: e.Key, Host: e.Key == HostNode}
		r.t.Nodes = append(r.t.Nodes, n)
		r.names = append(r.names, n.Name)
		r.declared[n] = e.Value.Interfaces
		for _, b := range e.Value.Bridges {
			r.ifName(b.KeyPos, n, b.Key)
			br := &Bridge{Node: n, Name: b.Key}
			br.Addrs = r.addresses(b.Value.Addresses, n.Name+":"+b.Key)
			n.Bridges = append(n.Bridges, br)
		}
		for _, i := range e.Value.Interfaces {
			r.ifName(i.KeyPos, n, i.Key)
			if n.Bridge(i.Key) != nil {
				r.errs.add(i.KeyPos, "node %s: %q is both an interface and a bridge", n.Name, i.Key)
			}
		}
	}
}

func (r *resolver) ifName(p Pos, n *Node, name string) {
	switch {
	case len(name) > 15:
		r.errs.add(p, "node %s: interface name %q is %d bytes; Linux allows at most 15", n.Name, name, len(name))
	case name == "lo" || !ifNameRE.MatchString(name):
		r.errs.add(p, "node %s: %q is not a usable interface name (letters, digits, '_', '.', '-'; not \"lo\")", n.Name, name)
	}
}

// node looks a node name up, reporting it with a suggestion when unknown.
func (r *resolver) node(s String, what string) *Node {
	if n := r.t.Node(s.Value); n != nil {
		return n
	}
	msg := fmt.Sprintf("%s: unknown node %q", what, s.Value)
	if sug := suggest(s.Value, r.names); sug != "" {
		msg += fmt.Sprintf("; did you mean %q?", sug)
	}
	r.errs.add(s.Pos, "%s", msg)
	return nil
}

func (r *resolver) links(f *File) {
	used := map[string]Pos{}
	for li, fl := range f.Links {
		what := fmt.Sprintf("links[%d]", li)
		if len(fl.Endpoints) != 2 {
			r.errs.add(fl.Pos, "%s: a link needs exactly two endpoints, found %d", what, len(fl.Endpoints))
			continue
		}
		var ends [2]*Interface
		var bridges [2]*Bridge
		ok := true
		for k, ep := range fl.Endpoints {
			nodeName, ifName, found := strings.Cut(ep.Value, ":")
			if !found || nodeName == "" || ifName == "" {
				r.errs.add(ep.Pos, "%s: endpoint %q must be written node:interface", what, ep.Value)
				ok = false
				continue
			}
			n := r.node(String{Value: nodeName, Pos: ep.Pos}, what)
			if n == nil {
				ok = false
				continue
			}
			if first, dup := used[ep.Value]; dup && n.Bridge(ifName) == nil {
				r.errs.add(ep.Pos, "%s: interface %s is already used by the link at line %d", what, ep.Value, first.Line)
				ok = false
				continue
			}
			used[ep.Value] = ep.Pos
			if b := n.Bridge(ifName); b != nil {
				bridges[k] = b
				continue
			}
			r.ifName(ep.Pos, n, ifName)
			ends[k] = &Interface{Node: n, Name: ifName}
		}
		if !ok {
			continue
		}
		if bridges[0] != nil && bridges[1] != nil {
			r.errs.add(fl.Pos, "%s: both ends are bridges; connect a bridge to an interface", what)
			continue
		}
		a, b := fl.Endpoints[0].Value, fl.Endpoints[1].Value
		na, _, _ := strings.Cut(a, ":")
		nb, _, _ := strings.Cut(b, ":")
		if na == nb {
			r.errs.add(fl.Pos, "%s: links %s to itself; a link joins two different nodes", what, na)
			continue
		}
		if bridges[0] != nil { // keep the plain interface as A
			ends[0], ends[1], bridges[0], bridges[1] = ends[1], ends[0], nil, bridges[0]
		}
		l := &Link{A: ends[0]}
		if br := bridges[1]; br != nil {
			port := &Interface{Node: br.Node, Name: PortName(l.A.Node.Name, l.A.Name), Master: br}
			br.Ports = append(br.Ports, port)
			l.B = port
		} else {
			l.B = ends[1]
		}
		l.A.Link, l.B.Link = l, l
		for _, i := range []*Interface{l.A, l.B} {
			if i.Node.Interface(i.Name) != nil || i.Node.Bridge(i.Name) != nil {
				r.errs.add(fl.Pos, "%s: interface name %s clashes with another interface of node %s", what, i.Name, i.Node.Name)
			}
			i.Node.Interfaces = append(i.Node.Interfaces, i)
		}
		r.t.Links = append(r.t.Links, l)
	}
}

// interfaceSettings attaches the settings declared under nodes.NAME.interfaces
// to the interfaces the links created, and reports declared interfaces that
// no link uses.
func (r *resolver) interfaceSettings() {
	for _, n := range r.t.Nodes {
		for _, e := range r.declared[n] {
			i := n.Interface(e.Key)
			if i == nil || i.Master != nil {
				if n.Bridge(e.Key) == nil {
					r.errs.add(e.KeyPos, "node %s: interface %s is not on any link; add a link with endpoint %s:%s", n.Name, e.Key, n.Name, e.Key)
				}
				continue
			}
			i.Addrs = r.addresses(e.Value.Addresses, i.String())
		}
	}
}

// addresses parses interface addresses (address/prefix-length) and rejects
// duplicates across the lab.
func (r *resolver) addresses(list []String, owner string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		p, err := netip.ParsePrefix(s.Value)
		if err != nil {
			r.errs.add(s.Pos, "%s: address %q is not address/prefix-length (like 10.0.0.1/24 or fd00::1/64)", owner, s.Value)
			continue
		}
		a := p.Addr()
		if a.Is4() && p.Bits() <= 30 && (a == p.Masked().Addr() || a == lastAddr(p)) {
			r.errs.add(s.Pos, "%s: %s is the network or broadcast address of %s; use a host address", owner, a, p.Masked())
			continue
		}
		if a.IsUnspecified() || a.IsMulticast() {
			r.errs.add(s.Pos, "%s: %s cannot be an interface address", owner, a)
			continue
		}
		if first, dup := r.addrs[a]; dup {
			r.errs.add(s.Pos, "%s: address %s is already assigned to %s", owner, a, first)
			continue
		}
		r.addrs[a] = owner
		out = append(out, p)
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (r *resolver) nodeSettings(n *Node, fn *FileNode) {
	if fw := fn.Forwarding; fw != nil {
		n.Forward4, n.Forward6 = fw.IPv4.Value, fw.IPv6.Value
	}
	for i := range fn.Routes {
		if rt := r.route(n, &fn.Routes[i]); rt != nil {
			n.Routes = append(n.Routes, rt)
		}
	}
	if fn.Firewall != nil && fn.Firewall.Forward != nil {
		n.Firewall = &Firewall{Forward: r.chain(n, fn.Firewall.Forward)}
	}
}

// ifNames lists the names of a node's interfaces and bridges.
func ifNames(n *Node) []string {
	var out []string
	for _, i := range n.Interfaces {
		out = append(out, i.Name)
	}
	for _, b := range n.Bridges {
		out = append(out, b.Name)
	}
	return out
}

// hasIf reports whether a node has an interface or bridge of that name.
func hasInterface(n *Node, name string) bool {
	return n.Interface(name) != nil || n.Bridge(name) != nil
}

func (r *resolver) unknownIf(s String, n *Node, what string) {
	msg := fmt.Sprintf("%s: node %s has no interface %q", what, n.Name, s.Value)
	if sug := suggest(s.Value, ifNames(n)); sug != "" {
		msg += fmt.Sprintf("; did you mean %q?", sug)
	}
	r.errs.add(s.Pos, "%s", msg)
}

func (r *resolver) route(n *Node, fr *FileRoute) *Route {
	what := "node " + n.Name + " route"
	rt := &Route{Dev: fr.Dev.Value, Metric: fr.Metric.Value}
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
	if fr.Dev.Set && !hasInterface(n, fr.Dev.Value) {
		r.unknownIf(fr.Dev, n, what)
		ok = false
	}
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
		if !onLink(n, rt.Via, rt.Dev) {
			r.errs.add(fr.Via.Pos, "%s: gateway %s is not on any subnet of node %s", what, rt.Via, n.Name)
			return nil
		}
	}
	return rt
}

// onLink reports whether addr lies in a subnet of one of n's interfaces
// (only dev's, when dev is set).
func onLink(n *Node, addr netip.Addr, dev string) bool {
	check := func(name string, prefixes []netip.Prefix) bool {
		if dev != "" && dev != name {
			return false
		}
		for _, p := range prefixes {
			if p.Masked().Contains(addr) && p.Addr() != addr {
				return true
			}
		}
		return false
	}
	for _, i := range n.Interfaces {
		if i.Master == nil && check(i.Name, i.Addrs) {
			return true
		}
	}
	for _, b := range n.Bridges {
		if check(b.Name, b.Addrs) {
			return true
		}
	}
	return false
}

func (r *resolver) chain(n *Node, fc *FileChain) *Chain {
	what := "node " + n.Name + " firewall.forward"
	c := &Chain{Policy: "accept"}
	if fc.Policy.Set {
		switch fc.Policy.Value {
		case "accept", "drop":
			c.Policy = fc.Policy.Value
		default:
			r.errs.add(fc.Policy.Pos, "%s: policy %q must be accept or drop", what, fc.Policy.Value)
		}
	}
	for i := range fc.Rules {
		fr := &fc.Rules[i]
		rule := Rule{In: fr.In.Value, Out: fr.Out.Value}
		for _, s := range []String{fr.In, fr.Out} {
			if s.Set && !hasInterface(n, s.Value) {
				r.unknownIf(s, n, what)
			}
		}
		rule.Src = r.network(fr.Src, what+" src")
		rule.Dst = r.network(fr.Dst, what+" dst")
		if rule.Src.IsValid() && rule.Dst.IsValid() && rule.Src.Addr().Is4() != rule.Dst.Addr().Is4() {
			r.errs.add(fr.Dst.Pos, "%s: src and dst are of different IP versions", what)
		}
		switch fr.Action.Value {
		case "accept", "drop", "reject":
			rule.Action = fr.Action.Value
		case "":
			r.errs.add(fr.Pos, "%s: rule needs an action (accept, drop or reject)", what)
		default:
			r.errs.add(fr.Action.Pos, "%s: action %q must be accept, drop or reject", what, fr.Action.Value)
		}
		c.Rules = append(c.Rules, rule)
	}
	return c
}

// network parses a prefix meant as a network: host bits must be clear.
func (r *resolver) network(s String, what string) netip.Prefix {
	if !s.Set {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s.Value)
	if err != nil {
		if a, aerr := netip.ParseAddr(s.Value); aerr == nil {
			return netip.PrefixFrom(a, a.BitLen())
		}
		r.errs.add(s.Pos, "%s: %q is not a prefix like 10.1.0.0/24", what, s.Value)
		return netip.Prefix{}
	}
	if p != p.Masked() {
		r.errs.add(s.Pos, "%s: %s has host bits set; did you mean %s?", what, p, p.Masked())
	}
	return p.Masked()
}

func (r *resolver) expectations(f *File) {
	for i, fe := range f.Expect {
		what := fmt.Sprintf("expect[%d]", i)
		e := &Expectation{Line: fe.Pos.Line, To: fe.To.Value, Reach: true, TTL: fe.TTL.Value}
		if fe.Reach.Set {
			e.Reach = fe.Reach.Value
		}
		if !fe.From.Set {
			r.errs.add(fe.Pos, "%s: missing field \"from\"", what)
		} else {
			e.From = r.node(fe.From, what)
		}
		if !fe.To.Set {
			r.errs.add(fe.Pos, "%s: missing field \"to\"", what)
		} else {
			e.Addr, e.Target = r.target(fe.To, what)
		}
		if fe.TTL.Set && (fe.TTL.Value < 1 || fe.TTL.Value > 255) {
			r.errs.add(fe.TTL.Pos, "%s: ttl must be between 1 and 255", what)
		}
		r.t.Expect = append(r.t.Expect, e)
	}
}

// target resolves an expectation's "to": an IP address, a node (its first
// address), or node:interface (that interface's first address).
func (r *resolver) target(s String, what string) (netip.Addr, *Node) {
	if a, err := netip.ParseAddr(s.Value); err == nil {
		return a, r.owner(a)
	}
	nodeName, ifName, named := strings.Cut(s.Value, ":")
	n := r.node(String{Value: nodeName, Pos: s.Pos}, what)
	if n == nil {
		return netip.Addr{}, nil
	}
	for _, i := range n.Interfaces {
		if (!named || i.Name == ifName) && len(i.Addrs) > 0 {
			return i.Addrs[0].Addr(), n
		}
	}
	for _, b := range n.Bridges {
		if (!named || b.Name == ifName) && len(b.Addrs) > 0 {
			return b.Addrs[0].Addr(), n
		}
	}
	if named && !hasInterface(n, ifName) {
		r.unknownIf(String{Value: ifName, Pos: s.Pos}, n, what)
	} else {
		r.errs.add(s.Pos, "%s: %s has no address to send to", what, s.Value)
	}
	return netip.Addr{}, nil
}

// owner returns the node that holds addr, or nil.
func (r *resolver) owner(a netip.Addr) *Node {
	for _, n := range r.t.Nodes {
		for _, i := range n.Interfaces {
			for _, p := range i.Addrs {
				if p.Addr() == a {
					return n
				}
			}
		}
		for _, b := range n.Bridges {
			for _, p := range b.Addrs {
				if p.Addr() == a {
					return n
				}
			}
		}
	}
	return nil
}
