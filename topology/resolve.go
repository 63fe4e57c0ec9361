package topology

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

var (
	labNameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	nodeNameRE = nameChecker{max: 64}          // [A-Za-z0-9_][A-Za-z0-9_.-]{0,63}
	ifNameRE   = nameChecker{max: math.MaxInt} // [A-Za-z0-9_][A-Za-z0-9_.-]*
	sysctlRE   = regexp.MustCompile(`^net(\.[A-Za-z0-9_-]+)+$`)
)

func valueOf(f *File) reflect.Value { return reflect.ValueOf(f).Elem() }

// nameChecker matches node and interface names: a letter, digit or _,
// then letters, digits, _, . or -, max characters in all. It does what
// the regular expression in its comment does, a dozen times faster: a
// 100,000-node lab checks 300,000 names.
type nameChecker struct{ max int }

func (c nameChecker) MatchString(s string) bool {
	if len(s) == 0 || len(s) > c.max {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		ok := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' ||
			i > 0 && (b == '.' || b == '-')
		if !ok {
			return false
		}
	}
	return true
}

// ValidLabName reports whether name can name a lab: 1 to 32 lowercase
// letters, digits and '-', starting with a letter or digit. Lab names
// become file names under /run/nsrouter, so nothing else may pass.
func ValidLabName(name string) bool { return labNameRE.MatchString(name) }

// resolver turns the decoded file into the model, checking every reference
// and value on the way and recording every problem.
type resolver struct {
	errs   *ErrorList
	t      *Topology
	names  []string // node names, for suggestions
	byName map[string]*Node
	ifs    map[*Node]map[string]*Interface
	// declared keeps the settings of interfaces named under a node, to be
	// attached when a link creates that interface.
	declared map[*Node]Map[FileInterface]
	// addrs maps each lab address to where it was first assigned.
	addrs map[netip.Addr]string
	pools map[string]*pool
	// unknownPools holds where an unknown pool was named and reported.
	unknownPools map[Pos]bool
	// linkPools and bridgePools say which links and bridges draw addresses
	// from a pool.
	linkPools     map[*Link]String
	bridgePools   map[*Bridge]String
	groupDefaults []groupDefault
	segments      []*segment
	// fileLinks are the links as written; endpoints, made from them when
	// first needed, holds every endpoint they name, valid or not, so that
	// an interface on a rejected link is not also called unused.
	fileLinks []FileLink
	endpoints map[string]bool
	// fast is the lab's profile, for links that name none.
	fast bool
}

func resolve(source string, f *File, errs *ErrorList) *Topology {
	r := &resolver{
		errs:        errs,
		t:           &Topology{Source: source, Name: f.Name.Value},
		byName:      map[string]*Node{},
		ifs:         map[*Node]map[string]*Interface{},
		declared:    map[*Node]Map[FileInterface]{},
		addrs:       map[netip.Addr]string{},
		linkPools:   map[*Link]String{},
		bridgePools: map[*Bridge]String{},
	}
	r.labName(f)
	r.fast = r.profile(f.Profile, "profile", false)
	r.poolDefs(f)
	r.expandGroups(f)
	r.expandUplink(f)
	r.nodes(f)
	r.links(f)
	r.bridgePorts()
	r.interfaceSettings()
	r.allocate()
	for i, fn := range f.Nodes {
		if i < len(r.t.Nodes) && r.t.Nodes[i].Name == fn.Key {
			r.nodeSettings(r.t.Nodes[i], &fn.Value)
		}
	}
	r.resolveUplink(f)
	r.mixedProfiles()
	r.buildSegments()
	r.groupRoutes()
	r.overlaps()
	r.autoRoutes()
	r.expectations(f)
	r.t.byName = r.byName
	for n, idx := range r.ifs {
		n.ifIndex = idx
	}
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

// mixedProfiles warns where a packet can pass from a link of profile
// fast to one of profile default: across a bridge between its ports, and
// across a router between its links and bridges. Such a packet is bigger
// than the default link takes whole, and the kernel cuts it into
// MTU-sized packets in software: measured, TCP from a fast link out of a
// default one ran at 8.6 Gbit/s, where all-default ran at 20. Links left
// down pass nothing. The uplink, default on purpose, gets a warning of its
// own when the lab has fast links.
func (r *resolver) mixedProfiles() {
	var uplink *Link
	if r.t.Uplink != nil {
		uplink = r.t.Uplink.Iface.Link
	}
	anyFast := false
	for _, n := range r.t.Nodes {
		var routed []mixedEnd
		for _, i := range n.Interfaces {
			anyFast = anyFast || (i.Fast() && !i.Down)
			if i.Master == nil && !i.Down && i.Link != uplink {
				routed = append(routed, mixedEnd{name: i.String(), fast: i.Fast(), pos: i.Link.pos})
			}
		}
		for _, b := range n.Bridges {
			var ports []mixedEnd
			for _, p := range b.Ports {
				if !p.Down {
					ports = append(ports, mixedEnd{name: p.Peer().String(), fast: p.Fast(), pos: p.Link.pos})
				}
			}
			if fast, plain := splitEnds(ports); fast != nil && plain != nil {
				r.errs.warn(plain.pos, "bridge %s:%s joins links of profile fast (%s) and default (%s): frames from the fast ones leave by the default ones cut into MTU-sized packets in software, slower than with no profile; give every link of a path the same profile",
					n.Name, b.Name, fast.name, plain.name)
			}
			if b.carries() {
				routed = append(routed, mixedEnd{name: n.Name + ":" + b.Name, fast: b.Fast(), pos: b.pos, bridge: true})
			}
		}
		if fast, plain := splitEnds(routed); n.Forward4 && fast != nil && plain != nil {
			why := ""
			if plain.bridge {
				why = "; a bridge is fast when all its ports that are up are"
			}
			r.errs.warn(plain.pos, "router %s routes packets from %s (profile fast) to %s (profile default%s), which cuts them into MTU-sized packets in software: slower than with no profile; give every link of a path the same profile",
				n.Name, fast.name, plain.name, why)
		}
	}
	if uplink != nil && anyFast {
		r.errs.warn(uplink.pos, "uplink: the lab has links of profile fast, and the uplink keeps the default: traffic from fast links to the host's network is cut into MTU-sized packets in software where it enters the uplink, slower than with no profile")
	}
}

// mixedEnd is a link end or bridge, for mixedProfiles.
type mixedEnd struct {
	name   string
	fast   bool
	pos    Pos
	bridge bool
}

// splitEnds returns the first fast end and the first default one.
func splitEnds(ends []mixedEnd) (fast, plain *mixedEnd) {
	for k := range ends {
		switch {
		case ends[k].fast && fast == nil:
			fast = &ends[k]
		case !ends[k].fast && plain == nil:
			plain = &ends[k]
		}
	}
	return fast, plain
}

// profile reads a profile field: true for fast, def when unset.
func (r *resolver) profile(p String, what string, def bool) bool {
	switch {
	case !p.Set:
		return def
	case p.Value == "fast":
		return true
	case p.Value != "default":
		r.errs.add(p.Pos, "%s %q: a profile is default or fast", what, p.Value)
	}
	return false
}

func (r *resolver) nodes(f *File) {
	if len(f.Nodes) == 0 {
		r.errs.add(Pos{Line: max(f.Pos.Line, 1), Col: max(f.Pos.Col, 1)}, "no nodes: a lab needs at least one node")
	}
	// Sized once, now that groups are written out: growing maps of
	// 100,000 nodes step by step rehashed them again and again.
	r.byName = make(map[string]*Node, len(f.Nodes))
	r.ifs = make(map[*Node]map[string]*Interface, len(f.Nodes))
	r.declared = make(map[*Node]Map[FileInterface], len(f.Nodes))
	r.t.Nodes = make([]*Node, 0, len(f.Nodes))
	r.names = make([]string, 0, len(f.Nodes))
	for _, e := range f.Nodes {
		if !nodeNameRE.MatchString(e.Key) || e.Key == "." || e.Key == ".." {
			r.errs.add(e.KeyPos, "node name %q: use 1 to 64 letters, digits, '_', '.' and '-', not starting with '.' or '-' (it names a file under /run/netns)", e.Key)
		}
		n := &Node{Name: e.Key, Host: e.Key == HostNode}
		r.t.Nodes = append(r.t.Nodes, n)
		r.names = append(r.names, n.Name)
		r.byName[n.Name] = n
		r.ifs[n] = map[string]*Interface{}
		r.declared[n] = e.Value.Interfaces
		for _, b := range e.Value.Bridges {
			r.ifName(b.KeyPos, n, b.Key)
			br := &Bridge{Node: n, Name: b.Key, MTU: r.mtu(b.Value.MTU, n.Name+":"+b.Key), Snooping: b.Value.Snooping.Value, pos: b.KeyPos}
			br.Addrs = r.addresses(b.Value.Addresses, n.Name+":"+b.Key)
			if b.Value.Pool.Set {
				r.bridgePools[br] = b.Value.Pool
			}
			n.Bridges = append(n.Bridges, br)
		}
		// Interface names are checked where a link makes the interface;
		// one declared here but on no link is reported as such.
		for _, i := range e.Value.Interfaces {
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

func (r *resolver) mtu(i Int, owner string) int {
	if i.Set && (i.Value < 68 || i.Value > 65535) {
		r.errs.add(i.Pos, "%s: mtu %d is outside 68..65535", owner, i.Value)
		return 0
	}
	return i.Value
}

// node looks a node name up, reporting it with a suggestion when unknown.
func (r *resolver) node(s String, what string) *Node {
	if n := r.byName[s.Value]; n != nil {
		return n
	}
	msg := fmt.Sprintf("%s: unknown node %q", what, s.Value)
	if sug := suggest(s.Value, r.names); sug != "" {
		msg += fmt.Sprintf("; did you mean %q?", sug)
	}
	r.errs.add(s.Pos, "%s", msg)
	return nil
}

// iface returns the plain interface (not a bridge port) name of node n.
func (r *resolver) iface(n *Node, name string) *Interface { return r.ifs[n][name] }

func (r *resolver) links(f *File) {
	used := make(map[string]Pos, 2*len(f.Links))
	r.linkPools = make(map[*Link]String, len(f.Links))
	r.t.Links = make([]*Link, 0, len(f.Links))
	r.fileLinks = f.Links
	for li := range f.Links {
		r.link(fmt.Sprintf("links[%d]", li), &f.Links[li], used)
	}
}

func (r *resolver) link(what string, fl *FileLink, used map[string]Pos) {
	if len(fl.Endpoints) != 2 {
		r.errs.add(fl.Pos, "%s: a link needs exactly two endpoints, found %d", what, len(fl.Endpoints))
		return
	}
	var (
		ends    [2]*Interface
		bridges [2]*Bridge
		nodes   [2]*Node
	)
	for k, ep := range fl.Endpoints {
		nodeName, ifName, found := strings.Cut(ep.Value, ":")
		if !found || nodeName == "" || ifName == "" {
			r.errs.add(ep.Pos, "%s: endpoint %q must be written node:interface", what, ep.Value)
			return
		}
		n := r.node(String{Value: nodeName, Pos: ep.Pos}, what)
		if n == nil {
			return
		}
		nodes[k] = n
		if b := n.Bridge(ifName); b != nil {
			bridges[k] = b
			continue
		}
		if first, dup := used[ep.Value]; dup {
			r.errs.add(ep.Pos, "%s: interface %s is already used by the link at line %d", what, ep.Value, first.Line)
			return
		}
		used[ep.Value] = ep.Pos
		r.ifName(ep.Pos, n, ifName)
		ends[k] = &Interface{Node: n, Name: ifName}
	}
	switch {
	case bridges[0] != nil && bridges[1] != nil:
		r.errs.add(fl.Pos, "%s: both ends are bridges; connect a bridge to an interface", what)
		return
	case nodes[0] == nodes[1]:
		r.errs.add(fl.Pos, "%s: links %s to itself; a link joins two different nodes", what, nodes[0].Name)
		return
	}
	if bridges[0] != nil { // keep the plain interface as A
		ends[0], ends[1], bridges[0], bridges[1] = ends[1], nil, nil, bridges[0]
	}
	l := &Link{A: ends[0], pos: fl.Pos}
	if br := bridges[1]; br != nil {
		port := &Interface{Node: br.Node, Name: PortName(l.A.Node.Name, l.A.Name), Master: br}
		br.Ports = append(br.Ports, port)
		l.B = port
	} else {
		l.B = ends[1]
	}
	l.A.Link, l.B.Link = l, l
	down := false
	switch fl.State.Value {
	case "", "up":
	case "down":
		down = true
	default:
		r.errs.add(fl.State.Pos, "%s: state %q must be up or down", what, fl.State.Value)
	}
	mtu := r.mtu(fl.MTU, what)
	l.Fast = r.profile(fl.Profile, what+": profile", r.fast)
	for _, i := range []*Interface{l.A, l.B} {
		if r.nameClash(what, fl.Pos, i) {
			continue // keep the first holder of the name
		}
		i.MTU, i.Down = mtu, down
		i.Node.Interfaces = append(i.Node.Interfaces, i)
		r.ifs[i.Node][i.Name] = i
	}
	if fl.Pool.Set {
		r.linkPools[l] = fl.Pool
		if l.B.Master != nil {
			r.lookupPool(fl.Pool, what) // unused on a bridge, but still a name to check
		}
	}
	r.t.Links = append(r.t.Links, l)
}

// nameClash reports whether i's name is taken in its node, and says so: a
// bridge port is named after the interface it serves, so the clash is
// often with a name the user never wrote.
func (r *resolver) nameClash(what string, p Pos, i *Interface) bool {
	other := r.iface(i.Node, i.Name)
	switch {
	case other == nil && i.Node.Bridge(i.Name) == nil:
		return false
	case i.Master != nil:
		r.errs.add(p, "%s: the port nsrouter makes on bridge %s:%s for %s is named %s, which node %s already uses; rename that interface or bridge",
			what, i.Node.Name, i.Master.Name, i.Peer(), i.Name, i.Node.Name)
	case other != nil && other.Master != nil:
		r.errs.add(p, "%s: interface %s has the name of the port nsrouter makes on bridge %s:%s for %s; rename the interface",
			what, i, i.Node.Name, other.Master.Name, other.Peer())
	default:
		r.errs.add(p, "%s: node %s already has a bridge or interface named %s", what, i.Node.Name, i.Name)
	}
	return true
}

// named reports whether a link names the endpoint node:interface.
func (r *resolver) named(endpoint string) bool {
	if r.endpoints == nil {
		r.endpoints = map[string]bool{}
		for _, l := range r.fileLinks {
			for _, ep := range l.Endpoints {
				r.endpoints[ep.Value] = true
			}
		}
	}
	return r.endpoints[endpoint]
}

// interfaceSettings attaches the settings declared under nodes.NAME.interfaces
// to the interfaces the links created, and reports declared interfaces that
// no link uses.
func (r *resolver) interfaceSettings() {
	for _, n := range r.t.Nodes {
		for _, e := range r.declared[n] {
			i := r.iface(n, e.Key)
			if i == nil || i.Master != nil {
				if n.Bridge(e.Key) == nil && !r.named(n.Name+":"+e.Key) {
					r.errs.add(e.KeyPos, "node %s: interface %s is not on any link; add a link with endpoint %s:%s", n.Name, e.Key, n.Name, e.Key)
				}
				continue
			}
			r.applyInterface(i, &e.Value)
		}
	}
}

func (r *resolver) applyInterface(i *Interface, fi *FileInterface) {
	i.Addrs = r.addresses(fi.Addresses, i.String())
	if fi.MTU.Set {
		i.MTU = r.mtu(fi.MTU, i.String())
	}
	if fi.MAC.Set {
		mac, err := net.ParseMAC(fi.MAC.Value)
		switch {
		case err != nil || len(mac) != 6:
			r.errs.add(fi.MAC.Pos, "%s: mac %q is not an Ethernet address like 02:00:00:00:00:01", i, fi.MAC.Value)
		case mac[0]&1 == 1:
			r.errs.add(fi.MAC.Pos, "%s: mac %s is a multicast address", i, mac)
		default:
			i.MAC = mac
		}
	}
	switch fi.State.Value {
	case "", "up":
	case "down":
		i.Down = true
	default:
		r.errs.add(fi.State.Pos, "%s: state %q must be up or down", i, fi.State.Value)
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
		if r.claim(p, owner, s.Pos) {
			out = append(out, p)
		}
	}
	return out
}

// claim checks one interface address and records it as taken.
func (r *resolver) claim(p netip.Prefix, owner string, pos Pos) bool {
	a := p.Addr()
	if a.Is4() && p.Bits() <= 30 && (a == p.Masked().Addr() || a == lastAddr(p)) {
		r.errs.add(pos, "%s: %s is the network or broadcast address of %s; use a host address", owner, a, p.Masked())
		return false
	}
	if a.IsUnspecified() || a.IsMulticast() || a.Is4In6() {
		r.errs.add(pos, "%s: %s cannot be an interface address", owner, a)
		return false
	}
	if first, dup := r.addrs[a]; dup {
		r.errs.add(pos, "%s: address %s is already assigned to %s", owner, a, first)
		return false
	}
	r.addrs[a] = owner
	return true
}

func (r *resolver) nodeSettings(n *Node, fn *FileNode) {
	what := "node " + n.Name
	n.Loopback = r.addresses(fn.Loopback, n.Name+":lo")
	if fw := fn.Forwarding; fw != nil {
		n.Forward4, n.Forward6 = fw.IPv4.Value, fw.IPv6.Value
	}
	n.AutoRoutes = fn.AutoRoutes.Value
	n.Sysctls = r.sysctls(fn.Sysctls, what)
	for i := range fn.Routes {
		if rt := r.route(n, &fn.Routes[i]); rt != nil {
			n.Routes = append(n.Routes, rt)
		}
	}
	for i := range fn.Rules {
		if pr := r.policyRule(n, &fn.Rules[i]); pr != nil {
			n.Rules = append(n.Rules, pr)
		}
	}
	if fn.Firewall != nil {
		if n.Host {
			r.errs.add(fn.Firewall.Pos, "node host: a firewall on the host is not supported; nsrouter changes the host only where a lab needs it")
		} else {
			n.Firewall = r.firewall(n, fn.Firewall)
		}
	}
	if fn.NAT != nil {
		if n.Host {
			r.errs.add(fn.NAT.Pos, "node host: NAT on the host is not supported; use an uplink")
		} else {
			n.NAT = r.nat(n, fn.NAT)
		}
	}
	if n.Host && len(fn.Rules) > 0 {
		r.errs.add(fn.Rules[0].Pos, "node host: policy routing rules on the host are not supported; put them in a lab node")
	}
}

func (r *resolver) sysctls(m Map[String], what string) []Sysctl {
	var out []Sysctl
	for _, e := range m {
		switch {
		case !sysctlRE.MatchString(e.Key):
			r.errs.add(e.KeyPos, "%s: sysctl %q: only net.* keys, written with dots, like net.ipv4.conf.all.rp_filter", what, e.Key)
		case strings.ContainsAny(e.Value.Value, "\n\x00") || e.Value.Value == "":
			r.errs.add(cmp.Or(e.Value.Pos, e.KeyPos), "%s: sysctl %s needs a value on one line", what, e.Key)
		default:
			out = append(out, Sysctl{Key: e.Key, Value: e.Value.Value})
		}
	}
	return out
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

// hasInterface reports whether a node has an interface or bridge of that name.
func (r *resolver) hasInterface(n *Node, name string) bool {
	return r.iface(n, name) != nil || n.Bridge(name) != nil
}

// checkIf reports an unknown interface name of n, with a suggestion.
func (r *resolver) checkIf(s String, n *Node, what string) bool {
	if !s.Set || r.hasInterface(n, s.Value) {
		return true
	}
	msg := fmt.Sprintf("%s: node %s has no interface %q", what, n.Name, s.Value)
	if strings.HasPrefix(what, "node "+n.Name+" ") { // said already
		msg = fmt.Sprintf("%s: no interface %q", what, s.Value)
	}
	if sug := suggest(s.Value, ifNames(n)); sug != "" {
		msg += fmt.Sprintf("; did you mean %q?", sug)
	}
	r.errs.add(s.Pos, "%s", msg)
	return false
}

// network parses a prefix meant as a network: host bits must be clear. A
// bare address means that one address.
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

// portRange parses "80" or "8000-8010".
func (r *resolver) portRange(s String, what string) PortRange {
	if !s.Set {
		return PortRange{}
	}
	lo, hi, isRange := strings.Cut(s.Value, "-")
	a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	}
	if err1 != nil || err2 != nil || a == 0 || b < a {
		r.errs.add(s.Pos, "%s: %q is not a port (1-65535) or range like 8000-8010", what, s.Value)
		return PortRange{}
	}
	return PortRange{Lo: uint16(a), Hi: uint16(b)}
}

// MaxBridgePorts is the most ports a Linux bridge takes (BR_MAX_PORTS is
// 1,024 port numbers, and number 0 is never given out); the kernel refuses
// the next one with "exchange full".
const MaxBridgePorts = 1023

// bridgePorts refuses bridges with more ports than the kernel allows, so
// that up fails here and not half-way.
func (r *resolver) bridgePorts() {
	for _, n := range r.t.Nodes {
		for _, b := range n.Bridges {
			if len(b.Ports) > MaxBridgePorts {
				r.errs.add(b.pos, "bridge %s:%s has %d ports; a Linux bridge takes at most %d", n.Name, b.Name, len(b.Ports), MaxBridgePorts)
			}
		}
	}
}
