// Package plan turns a validated topology into the ordered steps that build
// it. It is pure: no system calls, so plans can be tested, printed and
// diffed anywhere.
package plan

import (
	"fmt"
	"net/netip"

	"github.com/nsrouter/nsrouter/topology"
)

// Kind says what a step does.
type Kind int

// The kinds of step, in the order a plan uses them.
const (
	CreateNamespace  Kind = iota // a named network namespace, marked, lo up
	SetSysctl                    // one sysctl inside a node
	CreateBridge                 // a Linux bridge, marked, up
	CreateVeth                   // a veth pair with each end in its namespace
	AddAddress                   // an address on an interface or bridge
	SetUp                        // an interface brought up
	AddRoute                     // a static route
	SetFirewall                  // a node's nftables table, in one transaction
	AllowBridged                 // host: let frames cross the lab's bridges
	SetMTU                       // a bridge's MTU, once its ports are attached
	AddRule                      // a policy routing rule
	WriteHosts                   // /etc/netns/NODE/hosts: every node by name
	SetUplink                    // host: forwarding and masquerade for the uplink
	SetPacketSize                // fast profile: big IPv4 GSO/GRO packets on a link end
	SetDown                      // an interface the file leaves down
	WriteSharedHosts             // host: the lab's hosts file, once, for the nodes' links
)

var kindNames = [...]string{
	CreateNamespace:  "namespace",
	SetSysctl:        "sysctl",
	CreateBridge:     "bridge",
	CreateVeth:       "veth",
	AddAddress:       "address",
	SetUp:            "up",
	AddRoute:         "route",
	SetFirewall:      "firewall",
	AllowBridged:     "allow-bridged",
	SetMTU:           "mtu",
	AddRule:          "rule",
	WriteHosts:       "hosts",
	SetUplink:        "uplink",
	SetPacketSize:    "packet-size",
	SetDown:          "down",
	WriteSharedHosts: "shared-hosts",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Step is one change to the kernel. Only the fields its Kind needs are set.
type Step struct {
	Kind    Kind
	Node    *topology.Node       // where the step acts
	Iface   string               // interface or bridge name in Node
	Veth    *topology.Link       // CreateVeth
	Addr    netip.Prefix         // AddAddress
	Route   *topology.Route      // AddRoute
	Key     string               // SetSysctl: dotted name, like net.ipv4.ip_forward
	Value   string               // SetSysctl
	Chain   *topology.Firewall   // SetFirewall (with NAT)
	NAT     *topology.NAT        // SetFirewall
	Bridges []*topology.Bridge   // AllowBridged
	Rule    *topology.PolicyRule // AddRule
	MTU     int                  // SetMTU
	Size    int                  // SetPacketSize: largest IPv4 GSO/GRO packet, bytes
	NoLL6   bool                 // SetUp: without an IPv6 link-local address
	Hosts   []byte               // WriteHosts, WriteSharedHosts
	Path    string               // WriteHosts, WriteSharedHosts: the lab's shared hosts file
	Uplink  *topology.Uplink     // SetUplink
	Reason  string               // why the lab needs this step, for people
}

// String renders the step on one line, for logs and dry runs.
func (s Step) String() string {
	where := s.Node.Name
	switch s.Kind {
	case CreateNamespace:
		return fmt.Sprintf("create namespace %s", where)
	case SetSysctl:
		return fmt.Sprintf("%s: sysctl %s=%s", where, s.Key, s.Value)
	case CreateBridge:
		return fmt.Sprintf("%s: create bridge %s", where, s.Iface)
	case CreateVeth:
		return fmt.Sprintf("create veth %s <-> %s", s.Veth.A, s.Veth.B)
	case AddAddress:
		return fmt.Sprintf("%s: address %s on %s", where, s.Addr, s.Iface)
	case SetUp:
		if s.NoLL6 {
			return fmt.Sprintf("%s: set %s up (no IPv6 link-local address)", where, s.Iface)
		}
		return fmt.Sprintf("%s: set %s up", where, s.Iface)
	case AddRoute:
		return fmt.Sprintf("%s: route %s", where, s.Route)
	case SetFirewall:
		return fmt.Sprintf("%s: nftables table (filter and NAT)", where)
	case AllowBridged:
		return fmt.Sprintf("%s: let frames cross %d lab bridges past foreign forward drops", where, len(s.Bridges))
	case SetMTU:
		return fmt.Sprintf("%s: mtu %d on %s", where, s.MTU, s.Iface)
	case SetDown:
		return fmt.Sprintf("%s: leave %s down", where, s.Iface)
	case SetPacketSize:
		return fmt.Sprintf("%s: IPv4 packets of up to %d bytes on %s (GSO/GRO, fast profile)", where, s.Size, s.Iface)
	case AddRule:
		return fmt.Sprintf("%s: rule %s", where, RuleString(s.Rule))
	case WriteHosts:
		return fmt.Sprintf("%s: link /etc/netns/%s/hosts to %s", where, where, s.Path)
	case WriteSharedHosts:
		return fmt.Sprintf("host: write %s", s.Path)
	case SetUplink:
		return fmt.Sprintf("host: forward and masquerade %s for the uplink", s.Uplink.Subnet)
	}
	return s.Kind.String()
}

// Plan is the ordered list of steps that builds a topology from nothing.
type Plan struct {
	Lab   string
	Steps []Step
}

// Build returns the plan for t. Steps come in dependency order: namespaces,
// their settings, bridges, cables, addresses, links up, routes, firewalls.
func Build(t *topology.Topology) *Plan {
	// Sized once: grown by doubling, the list of a 100,000-node plan
	// allocated a gigabyte.
	p := &Plan{Lab: t.Name, Steps: make([]Step, 0, 10*len(t.Nodes)+3*len(t.Links))}
	for _, n := range t.Namespaces() {
		p.add(Step{Kind: CreateNamespace, Node: n,
			Reason: "each lab node is a network namespace of its own"})
	}
	for _, n := range t.Nodes {
		p.sysctls(n)
	}
	if u := t.Uplink; u != nil && !u.HostEnd.Node.Forward4 {
		p.add(Step{Kind: SetSysctl, Node: u.HostEnd.Node, Key: "net.ipv4.ip_forward", Value: "1",
			Reason: "the host routes the uplink's traffic; down puts the old value back"})
	}
	for _, n := range t.Nodes {
		for _, b := range n.Bridges {
			p.add(Step{Kind: CreateBridge, Node: n, Iface: b.Name,
				Reason: "a bridge is the switch that joins the cables of one LAN"})
			if b.Fast() {
				p.add(Step{Kind: SetPacketSize, Node: n, Iface: b.Name, Size: topology.FastPacketSize,
					Reason: "fast profile, all ports fast: packets routed into the bridge pass whole"})
			}
		}
	}
	for _, l := range t.Links {
		p.add(Step{Kind: CreateVeth, Node: l.A.Node, Veth: l,
			Reason: "a veth pair is the cable between two namespaces"})
	}
	for _, n := range t.Nodes {
		for _, b := range n.Bridges {
			if b.MTU != 0 {
				p.add(Step{Kind: SetMTU, Node: n, Iface: b.Name, MTU: b.MTU,
					Reason: "set after the ports join, which would otherwise lower it"})
			}
		}
	}
	for _, n := range t.Nodes {
		p.addresses(n)
	}
	for _, n := range t.Nodes {
		// A node without IPv6 addresses would still give each link an
		// fe80:: address, announced by duplicate address detection, MLD
		// and router solicitations: multicast that a bridge floods to all
		// its ports, so a LAN of N such nodes costs N² frames to build.
		noLL6 := !n.Host && !usesIPv6(n)
		for _, i := range n.Interfaces {
			if i.Fast() {
				p.add(Step{Kind: SetPacketSize, Node: n, Iface: i.Name, Size: topology.FastPacketSize,
					Reason: "fast profile: the stack builds and forwards IPv4 packets of up to this size whole, a third of the per-packet work"})
			}
			if i.Down {
				p.add(Step{Kind: SetDown, Node: n, Iface: i.Name,
					Reason: "the file leaves this end down: a cable pulled out"})
			} else {
				p.add(Step{Kind: SetUp, Node: n, Iface: i.Name, NoLL6: noLL6,
					Reason: "an interface passes no traffic until it is up"})
			}
		}
	}
	for _, n := range t.Nodes {
		p.routes(n)
	}
	for _, n := range t.Nodes {
		nat := n.NAT
		if u := t.Uplink; u != nil && u.Node == n {
			nat = uplinkNAT(t, nat)
		}
		if !n.Host && (n.Firewall != nil || nat != nil) {
			p.add(Step{Kind: SetFirewall, Node: n, Chain: n.Firewall, NAT: nat,
				Reason: "filter and NAT rules, replaced in one nftables transaction"})
		}
	}
	for _, n := range t.Nodes {
		if n.Host && len(n.Bridges) > 0 {
			p.add(Step{Kind: AllowBridged, Node: n, Bridges: n.Bridges,
				Reason: "another program's forward drop (Docker's) also sees bridged frames"})
		}
	}
	if u := t.Uplink; u != nil {
		p.add(Step{Kind: SetUplink, Node: u.HostEnd.Node, Uplink: u,
			Reason: "the host masquerades the uplink towards its own network"})
	}
	if hosts := HostsFile(t); hosts != nil {
		shared := SharedHostsPath(t.Name, hosts)
		host := t.Node(topology.HostNode)
		if host == nil {
			host = &topology.Node{Name: topology.HostNode, Host: true}
		}
		p.add(Step{Kind: WriteSharedHosts, Node: host, Hosts: hosts, Path: shared,
			Reason: "the lab's names, written once: each node's hosts file is a hard link to this copy"})
		for _, n := range t.Namespaces() {
			p.add(Step{Kind: WriteHosts, Node: n, Hosts: hosts, Path: shared,
				Reason: "nodes reach each other by name through /etc/hosts"})
		}
	}
	return p
}

func (p *Plan) routes(n *topology.Node) {
	for _, r := range n.Routes {
		why := "without it the node only knows its own subnets"
		if r.Auto {
			why = "computed by auto-routes: the shortest path over the lab's routers"
		}
		p.add(Step{Kind: AddRoute, Node: n, Route: r, Reason: why})
	}
	for _, r := range n.Rules {
		p.add(Step{Kind: AddRule, Node: n, Rule: r,
			Reason: "policy routing: these packets look up another table"})
	}
}

func (p *Plan) add(s Step) { p.Steps = append(p.Steps, s) }

// uplinkNAT adds to the uplink node's NAT a masquerade of every IPv4 lab
// subnet out of the uplink, so the host needs no routes into the lab.
func uplinkNAT(t *topology.Topology, nat *topology.NAT) *topology.NAT {
	out := &topology.NAT{}
	if nat != nil {
		*out = *nat
		out.Masquerade = append([]topology.Masquerade(nil), nat.Masquerade...)
	}
	seen := map[netip.Prefix]bool{t.Uplink.Subnet: true}
	var src []netip.Prefix
	for _, n := range t.Nodes {
		for _, i := range n.Interfaces {
			for _, a := range i.Addrs {
				if q := a.Masked(); a.Addr().Is4() && !seen[q] {
					seen[q] = true
					src = append(src, q)
				}
			}
		}
		for _, b := range n.Bridges {
			for _, a := range b.Addrs {
				if q := a.Masked(); a.Addr().Is4() && !seen[q] {
					seen[q] = true
					src = append(src, q)
				}
			}
		}
	}
	if len(src) > 0 {
		out.Masquerade = append(out.Masquerade, topology.Masquerade{Out: t.Uplink.Iface.Name, Src: src})
	}
	return out
}

// sysctls sets, in lab namespaces, every value the lab depends on, rather
// than trusting what a new namespace inherits. In the host, it only turns
// forwarding on where the file asks; the lab records and restores it.
func (p *Plan) sysctls(n *topology.Node) {
	set := func(key string, on bool, why string) {
		v := "0"
		if on {
			v = "1"
		}
		p.add(Step{Kind: SetSysctl, Node: n, Key: key, Value: v, Reason: why})
	}
	if n.Host {
		if n.Forward4 {
			set("net.ipv4.ip_forward", true, "the host routes between lab links")
		}
		if n.Forward6 {
			set("net.ipv6.conf.all.forwarding", true, "the host routes IPv6 between lab links")
		}
		return
	}
	set("net.ipv4.ip_forward", n.Forward4, "a router forwards IPv4 only when this is 1")
	set("net.ipv6.conf.all.forwarding", n.Forward6, "IPv6 forwarding is decided by the all switch")
	if n.Forward4 || len(n.Interfaces)+len(n.Bridges) > 1 {
		// A strict reverse-path filter, inherited from the host, drops
		// what arrives on one link and would leave by another: routers and
		// multi-homed nodes of asymmetric labs. A node with one link cannot
		// see such a path.
		set("net.ipv4.conf.all.rp_filter", false, "lab paths may be asymmetric; do not inherit a strict reverse-path filter")
		set("net.ipv4.conf.default.rp_filter", false, "the same for interfaces created after this")
	}
	if !usesIPv6(n) && len(n.Interfaces)+len(n.Bridges) > manyLinks {
		// Each link would get an fe80::/64 route, all under one node of
		// the IPv6 routing tree, and every later link change walks them
		// all: thousands of links make building the node quadratic.
		set("net.ipv6.conf.default.disable_ipv6", true, "a node with many links and no IPv6 address does without IPv6")
		set("net.ipv6.conf.all.disable_ipv6", true, "the same for the interfaces already there")
	}
	if usesIPv6(n) {
		set("net.ipv6.conf.all.disable_ipv6", false, "IPv6 addresses need IPv6 on, whatever was inherited")
		set("net.ipv6.conf.default.disable_ipv6", false, "the same for interfaces created after this")
		set("net.ipv6.conf.all.keep_addr_on_down", true, "an interface the file takes down keeps its IPv6 addresses, as IPv4 ones are kept")
		set("net.ipv6.conf.all.accept_dad", false, "lab cables are private: no duplicate address detection to wait for")
		set("net.ipv6.conf.default.accept_dad", false, "the same for interfaces created after this, link-local addresses included")
	}
	if len(n.Bridges) > 0 {
		set("net.bridge.bridge-nf-call-iptables", false,
			"bridged frames in a lab node skip IP firewall hooks")
		set("net.bridge.bridge-nf-call-ip6tables", false,
			"bridged frames in a lab node skip IPv6 firewall hooks")
	}
	for _, sc := range n.Sysctls {
		p.add(Step{Kind: SetSysctl, Node: n, Key: sc.Key, Value: sc.Value, Reason: "asked for by the file"})
	}
}

// manyLinks is the number of links past which a node without IPv6
// addresses gets IPv6 turned off.
const manyLinks = 32

// usesIPv6 reports whether a node has any IPv6 address or route.
func usesIPv6(n *topology.Node) bool {
	for _, i := range n.Interfaces {
		for _, a := range i.Addrs {
			if a.Addr().Is6() {
				return true
			}
		}
	}
	for _, b := range n.Bridges {
		for _, a := range b.Addrs {
			if a.Addr().Is6() {
				return true
			}
		}
	}
	for _, a := range n.Loopback {
		if a.Addr().Is6() {
			return true
		}
	}
	return n.Forward6
}

func (p *Plan) addresses(n *topology.Node) {
	for _, a := range n.Loopback {
		p.add(Step{Kind: AddAddress, Node: n, Iface: "lo", Addr: a,
			Reason: "a loopback address stays up whatever links go down"})
	}
	for _, b := range n.Bridges {
		for _, a := range b.Addrs {
			p.add(Step{Kind: AddAddress, Node: n, Iface: b.Name, Addr: a,
				Reason: "the bridge's address makes this node a member of the LAN"})
		}
	}
	for _, i := range n.Interfaces {
		for _, a := range i.Addrs {
			p.add(Step{Kind: AddAddress, Node: n, Iface: i.Name, Addr: a,
				Reason: "the address puts the interface on its subnet"})
		}
	}
}
