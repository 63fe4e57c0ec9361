package topology

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
)

// HostNode is the reserved node name for the namespace nsrouter runs in.
const HostNode = "host"

// Topology is a validated lab: every reference resolved, every address parsed.
type Topology struct {
	// Source is the file name used in messages ("<built-in>" for the
	// embedded topology, "<stdin>" for standard input).
	Source string
	Name   string
	Nodes  []*Node
	Links  []*Link
	Expect []*Expectation
	Uplink *Uplink
	// Warnings are problems that do not stop the lab from being built.
	Warnings []Error

	byName   map[string]*Node
	segments []*segment
}

// Node is a network namespace of the lab, or the host namespace.
type Node struct {
	Name       string
	Host       bool
	Interfaces []*Interface // veth ends, in file order of their links
	Bridges    []*Bridge
	Loopback   []netip.Prefix
	Forward4   bool
	Forward6   bool
	Sysctls    []Sysctl
	AutoRoutes bool
	Routes     []*Route
	Rules      []*PolicyRule
	Firewall   *Firewall
	NAT        *NAT

	ifIndex map[string]*Interface
}

// Sysctl is one net.* setting of a node.
type Sysctl struct {
	Key, Value string
}

// Interface is a veth end inside a node.
type Interface struct {
	Node   *Node
	Name   string
	Addrs  []netip.Prefix
	Link   *Link
	Master *Bridge // set for the generated end that is a bridge port
	MTU    int     // 0: the kernel's default
	MAC    net.HardwareAddr
	Down   bool // left down on purpose
}

// Bridge is a Linux bridge inside a node.
type Bridge struct {
	Node  *Node
	Name  string
	Addrs []netip.Prefix
	Ports []*Interface
	MTU   int
	// Snooping turns on the bridge's IGMP/MLD snooping. Off by default:
	// it costs timers and state on every port, which made a 1,000-port
	// bridge a third slower to build, and a lab LAN has no querier.
	Snooping bool
	pos      Pos
}

// Link is one veth pair. A is always a plain interface; B is either a plain
// interface or the port the tool generates on a bridge.
type Link struct {
	A, B *Interface
	// Fast is the fast profile: both ends pass IPv4 packets of up to
	// FastPacketSize bytes (GSO and GRO: IPv4 "BIG TCP").
	Fast bool
	pos  Pos
}

// Fast reports whether the bridge takes the fast profile's packet sizes:
// when every port that is up does (and one is). A packet routed into a
// bridge is cut to the bridge's size however big its ports take them; a
// port left down passes nothing.
func (b *Bridge) Fast() bool {
	up := 0
	for _, p := range b.Ports {
		if p.Down {
			continue
		}
		if !p.Fast() {
			return false
		}
		up++
	}
	return up > 0
}

// carries reports whether a bridge has a port that is up.
func (b *Bridge) carries() bool {
	for _, p := range b.Ports {
		if !p.Down {
			return true
		}
	}
	return false
}

// Fast reports whether the interface's link has the fast profile.
func (i *Interface) Fast() bool { return i.Link != nil && i.Link.Fast }

// FastPacketSize is the largest IPv4 packet the fast profile lets the
// stack build and pass whole over a link: 185,000 bytes, the size the BIG TCP
// work settled on (the kernel takes up to 512 KiB on veth). The kernel's
// default is 65,536.
const FastPacketSize = 185000

// Route is a static route in a node's main table.
type Route struct {
	Dst    netip.Prefix // 0.0.0.0/0 or ::/0 for default
	Via    netip.Addr   // invalid when the route is on-link
	Dev    string       // "" lets the kernel choose from the gateway
	Metric int
	Table  int  // 0: main
	Auto   bool // computed by auto-routes
}

// PolicyRule is an `ip rule`: packets it matches look up Table.
type PolicyRule struct {
	From, To netip.Prefix
	IIF, OIF string
	FwMark   uint32
	Priority int
	Table    int
	IPv6     bool
}

// Firewall is a node's nftables filter configuration.
type Firewall struct {
	Input, Forward, Output *Chain
}

// Chains returns the firewall's chains by hook name, skipping unset ones.
func (f *Firewall) Chains() []NamedChain {
	var out []NamedChain
	for _, c := range []NamedChain{{"input", f.Input}, {"forward", f.Forward}, {"output", f.Output}} {
		if c.Chain != nil {
			out = append(out, c)
		}
	}
	return out
}

// NamedChain is a chain with its hook's name.
type NamedChain struct {
	Hook  string
	Chain *Chain
}

// Chain is a base chain with a policy and ordered rules.
type Chain struct {
	Policy string // "accept" or "drop"
	Rules  []Rule
}

// Rule is one filter rule; zero fields match anything.
type Rule struct {
	In, Out      string
	Src, Dst     netip.Prefix
	Proto        string // "", "tcp", "udp", "icmp", "icmpv6"
	SPort, DPort PortRange
	States       []string // "new", "established", "related", "invalid"
	Log          string   // log prefix; "" logs nothing
	Action       string   // "accept", "drop" or "reject"
}

// PortRange is a port or an inclusive range; zero matches any port.
type PortRange struct {
	Lo, Hi uint16
}

// IsZero reports whether the range is unset.
func (p PortRange) IsZero() bool { return p.Lo == 0 }

func (p PortRange) String() string {
	if p.Lo == p.Hi {
		return fmt.Sprint(p.Lo)
	}
	return fmt.Sprintf("%d-%d", p.Lo, p.Hi)
}

// NAT is a node's address translation.
type NAT struct {
	Masquerade []Masquerade
	Ports      []PortForward
}

// Masquerade rewrites the source of packets from Src leaving through Out:
// to Out's address, or to To when it is set (SNAT).
type Masquerade struct {
	Out string
	Src []netip.Prefix
	To  netip.Addr
}

// PortForward sends connections to a port of the node on to another
// address (DNAT).
type PortForward struct {
	Proto   string
	Port    PortRange
	To      netip.Addr
	ToPort  uint16 // 0: the same port
	In      string
	Hairpin bool
}

// Uplink is the link from a lab node to the host, masqueraded by the host
// towards its own network.
type Uplink struct {
	Node    *Node
	Iface   *Interface // the lab node's end
	HostEnd *Interface // the host's end
	Subnet  netip.Prefix
	Out     string // host interface; "" means the default route's
}

// Expectation says whether From should reach To.
type Expectation struct {
	Line   int
	From   *Node
	To     string     // as written in the file
	Addr   netip.Addr // the address To resolves to
	Reach  bool
	TTL    int // 0: any
	Target *Node
	Proto  string     // "icmp", "tcp" or "udp"
	Port   uint16     // tcp and udp
	Source netip.Addr // tcp/udp: the source the target must see
	// Server is the node where check runs the tcp/udp listener, on
	// ServerPort: the owner of Addr and Port unless the file says.
	Server     *Node
	ServerPort uint16
}

// Node returns the node called name, or nil.
func (t *Topology) Node(name string) *Node {
	if t.byName != nil {
		return t.byName[name]
	}
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Namespaces returns the nodes that are namespaces of their own.
func (t *Topology) Namespaces() []*Node {
	var out []*Node
	for _, n := range t.Nodes {
		if !n.Host {
			out = append(out, n)
		}
	}
	return out
}

// Interface returns the veth end or bridge port called name, or nil.
func (n *Node) Interface(name string) *Interface {
	if n.ifIndex != nil {
		return n.ifIndex[name]
	}
	for _, i := range n.Interfaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}

// Bridge returns the bridge called name, or nil.
func (n *Node) Bridge(name string) *Bridge {
	for _, b := range n.Bridges {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// Peer returns the other end of i's link.
func (i *Interface) Peer() *Interface {
	if i.Link.A == i {
		return i.Link.B
	}
	return i.Link.A
}

// String names the interface as node:name.
func (i *Interface) String() string { return i.Node.Name + ":" + i.Name }

// IsDefault reports whether the route is a default route.
func (r *Route) IsDefault() bool { return r.Dst.Bits() == 0 }

// String renders the route as `ip route` would take it.
func (r *Route) String() string {
	s := r.Dst.String()
	if r.IsDefault() {
		s = "default"
	}
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	return s
}

// PortName is the name of the veth end the tool puts on a bridge for the
// interface node:iface: "node-iface" when that fits the kernel's 15 bytes,
// otherwise a short stable hash of it.
func PortName(node, iface string) string {
	if n := node + "-" + iface; len(n) <= 15 {
		return n
	}
	h := fnv.New32a()
	h.Write([]byte(node + ":" + iface))
	return fmt.Sprintf("nsr%08x", h.Sum32())
}
