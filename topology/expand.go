package topology

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// maxGroup bounds one group, so that a typo cannot ask for a billion
// namespaces.
const maxGroup = 100_000

var groupNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,15}$`)

// expandGroups writes each group out as the nodes and links it stands for,
// before anything else is resolved, so members are ordinary nodes from
// then on. Errors about members point at the group.
func (r *resolver) expandGroups(f *File) {
	existing := map[string]bool{}
	for _, e := range f.Nodes {
		existing[e.Key] = true
	}
	for gi := range f.Groups {
		g := &f.Groups[gi]
		what := fmt.Sprintf("groups[%d]", gi)
		if !r.groupValid(g, what) || !r.groupTarget(f, g, what) {
			continue
		}
		ifname := "eth0"
		if g.Interface.Set {
			ifname = g.Interface.Value
		}
		target, bridge, isBridge := strings.Cut(g.Connect.Value, ":")
		profile := g.Profile
		if profile.Set { // checked once here, not once per member
			profile = String{Value: map[bool]string{true: "fast", false: "default"}[r.profile(g.Profile, what+": profile", false)], Pos: g.Profile.Pos, Set: true}
		}
		// Grown once: appending 100,000 large entries one by one copied
		// them over and over.
		f.Nodes = slices.Grow(f.Nodes, g.Count.Value)
		f.Links = slices.Grow(f.Links, g.Count.Value)
		for k := 1; k <= g.Count.Value; k++ {
			name := fmt.Sprintf("%s%d", g.Name.Value, k)
			if existing[name] {
				r.errs.add(g.Name.Pos, "%s: member %s clashes with another node of that name", what, name)
				break // the other groups still get checked
			}
			existing[name] = true
			f.Nodes = append(f.Nodes, Entry[FileNode]{Key: name, KeyPos: g.Name.Pos, Value: FileNode{
				Pos: g.Pos, Forwarding: g.Forwarding, Routes: g.Routes, Sysctls: g.Sysctls, AutoRoutes: g.AutoRoutes,
			}})
			peer := target + ":" + name
			if isBridge {
				peer = target + ":" + bridge
			}
			f.Links = append(f.Links, FileLink{Pos: g.Pos, Pool: g.Pool, Profile: profile, Endpoints: []String{
				{Value: name + ":" + ifname, Pos: g.Name.Pos, Set: true},
				{Value: peer, Pos: g.Connect.Pos, Set: true},
			}})
		}
		if g.DefaultRoute.Value {
			r.groupDefaults = append(r.groupDefaults, groupDefault{prefix: g.Name.Value, count: g.Count.Value, iface: ifname, pos: g.DefaultRoute.Pos})
		}
	}
}

// groupDefault remembers a group whose members route default via the node
// they connect to; the route needs addresses, which come later.
type groupDefault struct {
	prefix string
	count  int
	iface  string
	pos    Pos
}

func (r *resolver) groupValid(g *FileGroup, what string) bool {
	ok := true
	if !groupNameRE.MatchString(g.Name.Value) {
		r.errs.add(g.Pos, "%s: name %q: a group name is a letter or '_' then up to 15 letters, digits, '_' or '-'", what, g.Name.Value)
		ok = false
	}
	if !g.Count.Set || g.Count.Value < 1 || g.Count.Value > maxGroup {
		r.errs.add(g.Pos, "%s: count must be between 1 and %d", what, maxGroup)
		ok = false
	}
	switch v := g.Interface.Value; {
	case !g.Interface.Set:
	case len(v) > 15:
		r.errs.add(g.Interface.Pos, "%s: interface name %q is %d bytes; Linux allows at most 15", what, v, len(v))
		ok = false
	case v == "lo" || !ifNameRE.MatchString(v):
		r.errs.add(g.Interface.Pos, "%s: %q is not a usable interface name (letters, digits, '_', '.', '-'; not \"lo\")", what, v)
		ok = false
	}
	if !g.Connect.Set {
		r.errs.add(g.Pos, "%s: missing field \"connect\" (a node, or node:bridge)", what)
		ok = false
	}
	if last := fmt.Sprintf("%s%d", g.Name.Value, g.Count.Value); ok && len(last) > 15 && !strings.Contains(g.Connect.Value, ":") {
		r.errs.add(g.Name.Pos, "%s: the interface on %s towards member %s would be named %s, %d bytes; Linux allows 15, so shorten the group's name",
			what, g.Connect.Value, last, last, len(last))
		ok = false
	}
	return ok
}

// groupTarget reports whether the node, or node:bridge, a group connects
// to exists, and says so once when it does not, instead of once for every
// member's link.
func (r *resolver) groupTarget(f *File, g *FileGroup, what string) bool {
	target, bridge, isBridge := strings.Cut(g.Connect.Value, ":")
	var names []string
	for _, e := range f.Nodes {
		names = append(names, e.Key)
		if e.Key != target {
			continue
		}
		if !isBridge {
			return true
		}
		var bridges []string
		for _, b := range e.Value.Bridges {
			if b.Key == bridge {
				return true
			}
			bridges = append(bridges, b.Key)
		}
		r.unknown(g.Connect.Pos, what+" connect: node "+target+" has no bridge", bridge, bridges)
		return false
	}
	r.unknown(g.Connect.Pos, what+" connect: unknown node", target, names)
	return false
}

// unknown reports a name that is not among known, suggesting the closest.
func (r *resolver) unknown(p Pos, what, name string, known []string) {
	msg := fmt.Sprintf("%s %q", what, name)
	if s := suggest(name, known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	r.errs.add(p, "%s", msg)
}

// groupRoutes adds each member's default route via its peer.
func (r *resolver) groupRoutes() {
	for _, g := range r.groupDefaults {
		for k := 1; k <= g.count; k++ {
			n := r.byName[fmt.Sprintf("%s%d", g.prefix, k)]
			if n == nil {
				continue
			}
			i := r.iface(n, g.iface)
			if i == nil {
				continue
			}
			r.defaultVia(n, i, g.pos)
		}
	}
}

// defaultVia gives n a default route per family via the address of the
// node on the other side of i (for a bridge: the bridge's own address).
func (r *resolver) defaultVia(n *Node, i *Interface, pos Pos) {
	var gws []netip.Addr
	if p := i.Peer(); p.Master != nil {
		for _, a := range p.Master.Addrs {
			gws = append(gws, a.Addr())
		}
	} else {
		for _, a := range p.Addrs {
			gws = append(gws, a.Addr())
		}
	}
	seen := map[bool]bool{}
	for _, gw := range gws {
		if seen[gw.Is4()] {
			continue
		}
		seen[gw.Is4()] = true
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if gw.Is6() {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		if hasRoute(n, dst, 0) {
			continue
		}
		n.Routes = append(n.Routes, &Route{Dst: dst, Via: gw})
	}
	_, linkPool := r.linkPools[i.Link]
	_, bridgePool := r.bridgePools[i.Peer().Master]
	if len(gws) == 0 && !linkPool && !bridgePool { // else the pool said why
		r.errs.add(pos, "node %s: default-route needs an address on the other side of %s; give the link a pool", n.Name, i.Name)
	}
}

func hasRoute(n *Node, dst netip.Prefix, table int) bool {
	for _, rt := range n.Routes {
		if rt.Dst == dst && rt.Table == table {
			return true
		}
	}
	return false
}

// expandUplink adds the uplink's cable as an ordinary link between the
// node and the host, so validation treats it like any other.
func (r *resolver) expandUplink(f *File) {
	u := f.Uplink
	if u == nil {
		return
	}
	if !u.Node.Set {
		r.errs.add(u.Pos, "uplink: missing field \"node\"")
		return
	}
	if u.Node.Value == HostNode {
		r.errs.add(u.Node.Pos, "uplink: node must be a lab node, not the host")
		return
	}
	ifname := "uplink0"
	if u.Interface.Set {
		ifname = u.Interface.Value
	}
	hasHost := false
	for _, e := range f.Nodes {
		hasHost = hasHost || e.Key == HostNode
	}
	if !hasHost {
		f.Nodes = append(f.Nodes, Entry[FileNode]{Key: HostNode, KeyPos: u.Pos})
	}
	hostEnd := UplinkHostName(f.Name.Value)
	// The uplink keeps the kernel's defaults whatever the lab's profile:
	// its host end faces the host's own network.
	f.Links = append(f.Links, FileLink{Pos: u.Pos, Endpoints: []String{
		{Value: u.Node.Value + ":" + ifname, Pos: u.Node.Pos, Set: true},
		{Value: HostNode + ":" + hostEnd, Pos: u.Pos, Set: true},
	}, Profile: String{Value: "default", Pos: u.Pos, Set: true}})
}

// UplinkHostName is the host's end of a lab's uplink.
func UplinkHostName(lab string) string {
	if n := "nsr-" + lab; len(n) <= 15 {
		return n
	}
	return PortName("uplink", lab)
}

// resolveUplink numbers the uplink's cable and records it in the model.
func (r *resolver) resolveUplink(f *File) {
	u := f.Uplink
	if u == nil || !u.Node.Set {
		return
	}
	n := r.byName[u.Node.Value]
	if n == nil {
		return
	}
	ifname := "uplink0"
	if u.Interface.Set {
		ifname = u.Interface.Value
	}
	i := r.iface(n, ifname)
	if i == nil {
		return
	}
	subnet := netip.MustParsePrefix("10.254.0.0/30")
	if u.Subnet.Set {
		p := r.network(u.Subnet, "uplink subnet")
		if !p.IsValid() {
			return
		}
		if !p.Addr().Is4() || p.Bits() > 30 {
			r.errs.add(u.Subnet.Pos, "uplink: subnet %s must be IPv4 with room for two hosts (/30 or larger)", p)
			return
		}
		subnet = p
	}
	host := i.Peer()
	hostAddr := netip.PrefixFrom(addOffset(subnet.Addr(), 1), subnet.Bits())
	nodeAddr := netip.PrefixFrom(addOffset(subnet.Addr(), 2), subnet.Bits())
	if r.claim(hostAddr, host.String(), u.Pos) {
		host.Addrs = append(host.Addrs, hostAddr)
	}
	if len(i.Addrs) == 0 && r.claim(nodeAddr, i.String(), u.Pos) {
		i.Addrs = append(i.Addrs, nodeAddr)
	}
	dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if !hasRoute(n, dst, 0) {
		n.Routes = append(n.Routes, &Route{Dst: dst, Via: hostAddr.Addr()})
	}
	n.Forward4 = true
	r.t.Uplink = &Uplink{Node: n, Iface: i, HostEnd: host, Subnet: subnet, Out: u.Out.Value}
	if u.Out.Set && !ifNameRE.MatchString(u.Out.Value) {
		r.errs.add(u.Out.Pos, "uplink: out %q is not an interface name", u.Out.Value)
	} else if u.Out.Value == "lo" {
		r.errs.add(u.Out.Pos, "uplink: out lo leads nowhere; name the host's interface towards its network")
	}
}
