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
	CreateNamespace Kind = iota // a named network namespace, marked, lo up
	SetSysctl                   // one sysctl inside a node
	CreateBridge                // a Linux bridge, marked, up
	CreateVeth                  // a veth pair with each end in its namespace
	AddAddress                  // an address on an interface or bridge
	SetUp                       // an interface brought up
	AddRoute                    // a static route
	SetFirewall                 // a node's nftables table, in one transaction
	AllowBridged                // host: let frames cross the lab's bridges
)

var kindNames = [...]string{
	CreateNamespace: "namespace",
	SetSysctl:       "sysctl",
	CreateBridge:    "bridge",
	CreateVeth:      "veth",
	AddAddress:      "address",
	SetUp:           "up",
	AddRoute:        "route",
	SetFirewall:     "firewall",
	AllowBridged:    "allow-bridged",
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
	Node    *topology.Node     // where the step acts
	Iface   string             // interface or bridge name in Node
	Veth    *topology.Link     // CreateVeth
	Addr    netip.Prefix       // AddAddress
	Route   *topology.Route    // AddRoute
	Key     string             // SetSysctl: dotted name, like net.ipv4.ip_forward
	Value   string             // SetSysctl
	Chain   *topology.Firewall // SetFirewall
	Bridges []*topology.Bridge // AllowBridged
	Reason  string             // why the lab needs this step, for people
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
		return fmt.Sprintf("%s: set %s up", where, s.Iface)
	case AddRoute:
		return fmt.Sprintf("%s: route %s", where, s.Route)
	case SetFirewall:
		return fmt.Sprintf("%s: firewall (forward policy %s, %d rules)", where, s.Chain.Forward.Policy, len(s.Chain.Forward.Rules))
	case AllowBridged:
		return fmt.Sprintf("%s: let frames cross %d lab bridges past foreign forward drops", where, len(s.Bridges))
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
	p := &Plan{Lab: t.Name}
	for _, n := range t.Namespaces() {
		p.add(Step{Kind: CreateNamespace, Node: n,
			Reason: "each lab node is a network namespace of its own"})
	}
	for _, n := range t.Nodes {
		p.sysctls(n)
	}
	for _, n := range t.Nodes {
		for _, b := range n.Bridges {
			p.add(Step{Kind: CreateBridge, Node: n, Iface: b.Name,
				Reason: "a bridge is the switch that joins the cables of one LAN"})
		}
	}
	for _, l := range t.Links {
		p.add(Step{Kind: CreateVeth, Node: l.A.Node, Veth: l,
			Reason: "a veth pair is the cable between two namespaces"})
	}
	for _, n := range t.Nodes {
		p.addresses(n)
	}
	for _, n := range t.Nodes {
		for _, i := range n.Interfaces {
			p.add(Step{Kind: SetUp, Node: n, Iface: i.Name,
				Reason: "an interface passes no traffic until it is up"})
		}
	}
	for _, n := range t.Nodes {
		for _, r := range n.Routes {
			p.add(Step{Kind: AddRoute, Node: n, Route: r,
				Reason: "without it the node only knows its own subnets"})
		}
	}
	for _, n := range t.Nodes {
		if n.Firewall != nil && !n.Host {
			p.add(Step{Kind: SetFirewall, Node: n, Chain: n.Firewall,
				Reason: "the forward policy decides what the router passes"})
		}
	}
	for _, n := range t.Nodes {
		if n.Host && len(n.Bridges) > 0 {
			p.add(Step{Kind: AllowBridged, Node: n, Bridges: n.Bridges,
				Reason: "another program's forward drop (Docker's) also sees bridged frames"})
		}
	}
	return p
}

func (p *Plan) add(s Step) { p.Steps = append(p.Steps, s) }

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
	if len(n.Bridges) > 0 {
		set("net.bridge.bridge-nf-call-iptables", false,
			"bridged frames in a lab node skip IP firewall hooks")
		set("net.bridge.bridge-nf-call-ip6tables", false,
			"bridged frames in a lab node skip IPv6 firewall hooks")
	}
}

func (p *Plan) addresses(n *topology.Node) {
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
