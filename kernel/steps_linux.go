package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

func (w *worker) step(s plan.Step) (changed bool, note string, err error) {
	e := w.e
	mark := Mark(e.Lab)
	switch s.Kind {
	case plan.CreateNamespace:
		return w.createNamespace(s.Node.Name)
	case plan.CreateVeth:
		l := s.Veth
		if a, b := freshEnds(l); b.Master == nil && !a.Node.Host && !b.Node.Host &&
			e.isFresh(a.Node.Name) && e.isFresh(b.Node.Name) {
			return w.createFreshVeth(l)
		}
		return w.createVeth(l, mark)
	}
	ns, err := w.ns(s.Node)
	if err != nil {
		return false, "", err
	}
	fresh := !s.Node.Host && e.isFresh(s.Node.Name)
	switch s.Kind {
	case plan.SetSysctl:
		return w.sysctl(ns, s, fresh)
	case plan.CreateBridge:
		b := s.Node.Bridge(s.Iface)
		changed, err = ns.EnsureBridge(s.Iface, mark, BridgeOptions{
			MAC: plan.BridgeMAC(e.Lab, s.Node.Name, s.Iface), Snooping: b.Snooping, Fast: b.Fast()})
		return changed, "", err
	case plan.AddAddress:
		if fresh {
			return true, "", ns.AddAddr(s.Iface, s.Addr)
		}
		changed, err = ns.EnsureAddr(s.Iface, s.Addr)
		return changed, "", err
	case plan.SetUp:
		if fresh {
			return true, "", ns.SetUpFresh(s.Iface, s.NoLL6)
		}
		changed, err = ns.SetUp(s.Iface, s.NoLL6)
		if err == nil && !s.NoLL6 && !s.Node.Host { // a node with IPv6
			c, err := ns.EnsureLinkLocal6(s.Iface)
			return changed || c, "", err
		}
		return changed, "", err
	case plan.SetDown:
		if fresh {
			return false, "", nil // created down
		}
		changed, err = ns.SetDown(s.Iface)
		return changed, "", err
	case plan.AddRoute:
		r := s.Route
		spec := RouteSpec{Dst: r.Dst, Via: r.Via, Dev: r.Dev, Metric: r.Metric, Table: r.Table}
		if fresh {
			return true, "", ns.AddRoute(spec)
		}
		changed, err = ns.EnsureRoute(spec)
		return changed, "", err
	case plan.AddRule:
		changed, err = ns.EnsureRule(netlinkRule(s.Rule), plan.RuleString(s.Rule))
		return changed, "", err
	case plan.SetFirewall:
		changed, err = ns.EnsureTable(NodeTable(e.Lab, s.Node, s.Chain, s.NAT), true)
		return changed, "", err
	case plan.AllowBridged:
		return w.allowBridged(ns, s.Bridges)
	case plan.SetMTU:
		changed, err = ns.EnsureMTU(s.Iface, s.MTU)
		return changed, "", err
	case plan.SetPacketSize:
		return ns.EnsurePacketSize(s.Iface)
	case plan.WriteHosts:
		changed, err = LinkHosts(s.Node.Name, s.Path, s.Hosts, plan.HostsMarker)
		return changed, "", err
	case plan.WriteSharedHosts:
		changed, err = WriteSharedHosts(s.Path, s.Hosts)
		return changed, "", err
	case plan.SetUplink:
		return w.uplink(ns, s.Uplink)
	}
	return false, "", fmt.Errorf("%w %v", errUnknownStep, s.Kind)
}

func (w *worker) createNamespace(name string) (bool, string, error) {
	mark, exists, err := NamespaceMark(name)
	if err != nil {
		return false, "", err
	}
	if exists {
		if mark != Mark(w.e.Lab) {
			return false, "", &ClashError{Kind: "namespace", Name: name, Owner: mark}
		}
		return false, "", nil
	}
	if w.creator == nil {
		if w.creator, err = NewCreator(); err != nil {
			return false, "", err
		}
	}
	ns, err := w.creator.Create(name, w.e.Lab)
	if err != nil {
		ns.Close()
		return false, "", err
	}
	w.keep(name, ns)
	id, _ := NamespaceID(name)
	w.e.mu.Lock()
	w.e.fresh[name] = true
	w.e.res.Created[name] = id
	w.e.mu.Unlock()
	return true, "", nil
}

// sysctl writes a setting. In a namespace this run created, the value it
// was born with is known (read once, in the first such namespace), and a
// write that would not change it is skipped: /proc/sys writes get slower
// with every namespace on the machine.
func (w *worker) sysctl(ns *NS, s plan.Step, fresh bool) (bool, string, error) {
	if fresh {
		if v, ok := w.e.birthValue(ns, s.Key); ok && v == s.Value {
			return false, "", nil
		}
	}
	_, changed, err := ns.SetSysctl(s.Key, s.Value)
	if errors.Is(err, errNotExist) && isBridgeNF(s.Key) {
		return false, "br_netfilter absent: bridged frames skip IP hooks anyway", nil
	}
	return changed, "", err
}

// birthKeys are the settings whose value at a namespace's birth is read.
var birthKeys = []string{
	"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding",
	"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter",
	"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6",
	"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad",
}

// birthValue returns what a namespace created by this run had for key
// before nsrouter wrote anything, read from the first fresh namespace
// (every one is born the same way, from the same host).
func (e *Executor) birthValue(ns *NS, key string) (string, bool) {
	e.birthMu.Do(func() {
		m := map[string]string{}
		_ = ns.Do(func() error {
			for _, k := range birthKeys {
				if v, err := readSysctl(k); err == nil {
					m[k] = v
				}
			}
			return nil
		})
		e.birth = m
	})
	v, ok := e.birth[key]
	return v, ok
}

// createVeth creates the pair through the namespace of the end that joins
// a bridge, if any, so that end is born attached to its bridge.
func (w *worker) createVeth(l *topology.Link, mark string) (bool, string, error) {
	a, b := l.A, l.B
	if a.Master == nil && b.Master != nil {
		a, b = b, a
	}
	nsA, err := w.ns(a.Node)
	if err != nil {
		return false, "", err
	}
	nsB, err := w.ns(b.Node)
	if err != nil {
		return false, "", err
	}
	end := func(ns *NS, i *topology.Interface) VethEnd {
		v := VethEnd{NS: ns, Name: i.Name, MTU: i.MTU, MAC: i.MAC, Fast: i.Fast()}
		if i.Master != nil {
			v.Master = i.Master.Name
		}
		return v
	}
	fresh := !a.Node.Host && !b.Node.Host && w.e.isFresh(a.Node.Name) && w.e.isFresh(b.Node.Name)
	changed, err := EnsureVeth(end(nsA, a), end(nsB, b), mark, fresh)
	return changed, "", err
}

// freshEnds orders a cable's ends for createFreshVeth: the end on the node
// with more interfaces first.
func freshEnds(l *topology.Link) (a, b *topology.Interface) {
	a, b = l.A, l.B
	if len(b.Node.Interfaces) > len(a.Node.Interfaces) {
		a, b = b, a
	}
	return a, b
}

// createFreshVeth creates a cable between two namespaces this run made in
// one request sent from the host with both namespaces' descriptors: no
// socket in either namespace is needed. The first end (see freshEnds) may
// be a port of a bridge; it is born attached to it.
//
// When one end is on a node with many interfaces (a star's router), that
// end is created up and with an interface index chosen here, so nothing
// needs to ask the kernel for it later: each lookup, and each state change
// of an interface whose peer is in another namespace, makes the kernel
// scan the node's table of peer namespaces, one entry per host.
func (w *worker) createFreshVeth(l *topology.Link) (bool, string, error) {
	host, err := w.ns(&topology.Node{Name: topology.HostNode, Host: true})
	if err != nil {
		return false, "", err
	}
	a, b := freshEnds(l)
	var fds [2]netns.NsHandle
	for k, i := range []*topology.Interface{a, b} {
		if fds[k], err = netns.GetFromPath(filepath.Join(NetnsDir, i.Node.Name)); err != nil {
			return false, "", &OpError{Op: "open namespace", Node: i.Node.Name, Err: err}
		}
		defer fds[k].Close()
	}
	v := &netlink.Veth{LinkAttrs: netlink.NewLinkAttrs(), PeerName: b.Name, PeerTxQLen: -1, PeerNamespace: netlink.NsFd(fds[1]),
		PeerMTU: uint32(b.MTU), PeerHardwareAddr: b.MAC}
	v.Name, v.Namespace, v.MTU, v.HardwareAddr = a.Name, netlink.NsFd(fds[0]), a.MTU, a.MAC
	via := host
	if a.Master != nil {
		// The kernel looks the bridge up in the namespace of the socket
		// the request comes from: send it from the bridge's namespace.
		if v.MasterIndex, err = w.bridgeIndex(a.Node, a.Master.Name); err != nil {
			return false, "", err
		}
		if via, err = w.ns(a.Node); err != nil {
			return false, "", err
		}
		v.Namespace = nil
	}
	big := len(a.Node.Interfaces) > bigNode && !a.Down
	if big {
		v.Index, v.Flags = w.e.ifindex(a), net.FlagUp
		// Every notification about this end names the peer's namespace
		// by its ID in the big node, which the kernel finds by walking
		// the node's IDs in ascending order until it meets the peer: one
		// walk of all the node's peers per notification, a few per cable,
		// under the rtnl lock. Given IDs that fall as cables are added,
		// the newest peer comes first in the walk. (The ID is set outside
		// that lock; if it is taken, the kernel picks one, as before.)
		if r, err := w.ns(a.Node); err == nil {
			_ = r.nl.SetNetNsIdByFd(int(fds[1]), len(a.Node.Interfaces)-w.e.pos[a])
		}
	}
	err = via.nl.LinkAdd(v)
	if big && (errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST)) {
		v.Index, big = 0, false // the index is taken: let the kernel choose
		err = via.nl.LinkAdd(v)
	}
	if err != nil {
		return false, "", &OpError{Op: "create veth", Node: a.Node.Name, Iface: a.Name,
			Err: fmt.Errorf("peer %s: %w", b, err)}
	}
	if big {
		ns, err := w.ns(a.Node)
		if err != nil {
			return true, "", err
		}
		ns.remember(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: v.Index, Name: a.Name, Flags: net.FlagUp}})
	}
	return true, "", nil
}

// bridgeIndex returns the interface index of a bridge in a node, asking
// the kernel once per run.
func (w *worker) bridgeIndex(n *topology.Node, bridge string) (int, error) {
	key := n.Name + "\x00" + bridge
	w.e.mu.Lock()
	idx, ok := w.e.bridges[key]
	w.e.mu.Unlock()
	if ok {
		return idx, nil
	}
	ns, err := w.ns(n)
	if err != nil {
		return 0, err
	}
	l, err := ns.nl.LinkByName(bridge)
	if err != nil {
		return 0, &OpError{Op: "find bridge", Node: n.Name, Iface: bridge, Err: err}
	}
	w.e.mu.Lock()
	if w.e.bridges == nil {
		w.e.bridges = map[string]int{}
	}
	w.e.bridges[key] = l.Attrs().Index
	w.e.mu.Unlock()
	return l.Attrs().Index, nil
}

func (w *worker) allowBridged(ns *NS, bridges []*topology.Bridge) (bool, string, error) {
	var names []string
	for _, b := range bridges {
		names = append(names, b.Name)
	}
	chains, changed, err := ns.AllowBridged(w.e.Lab, names)
	w.e.addForeign(chains)
	note := ""
	if len(chains) > 0 {
		note = fmt.Sprintf("accept rules in %d foreign forward chains", len(chains))
	}
	return changed, note, err
}

// netlinkRule converts a policy rule to netlink's form.
func netlinkRule(r *topology.PolicyRule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V4
	if r.IPv6 {
		nr.Family = netlink.FAMILY_V6
	}
	nr.Table = r.Table
	nr.Priority = r.Priority
	if r.Priority == 0 {
		nr.Priority = -1
	}
	if r.From.IsValid() {
		nr.Src = ipNet(r.From)
	}
	if r.To.IsValid() {
		nr.Dst = ipNet(r.To)
	}
	nr.IifName, nr.OifName = r.IIF, r.OIF
	if r.FwMark != 0 {
		nr.Mark = r.FwMark
	}
	return nr
}

// uplink connects the lab to the host's network: the host masquerades the
// uplink's subnet towards its default-route interface (or the one named),
// and foreign forward drops let the uplink's traffic through.
func (w *worker) uplink(host *NS, u *topology.Uplink) (bool, string, error) {
	out := u.Out
	if out == "" {
		dev, err := host.DefaultRouteDev()
		if err != nil {
			return false, "", err
		}
		out = dev
	}
	spec := TableSpec{Family: nftables.TableFamilyIPv4, Name: TableName(w.e.Lab), Chains: []ChainSpec{{
		Name: "postrouting", Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource, Policy: nftables.ChainPolicyAccept,
		Rules: []RuleSpec{masqRuleIn(topology.Masquerade{Out: out, Src: []netip.Prefix{u.Subnet}}, u.Subnet, false)},
	}}}
	changed, err := host.EnsureTable(spec, false)
	if err != nil {
		return changed, "", err
	}
	chains, c2, err := host.AllowUplink(w.e.Lab, u.HostEnd.Name)
	w.e.addForeign(chains)
	return changed || c2, "masquerade towards " + out, err
}
