// Package graph draws a topology as a diagram: Graphviz DOT or a Mermaid
// flowchart. It is pure and deterministic: the same topology always gives
// the same text, in the order of the file.
//
// Every node is a box (a DOT cluster, a Mermaid subgraph) holding one
// shape per veth end and per bridge. Routers, the nodes that forward, are
// drawn in another colour than the other namespaces, and the host node,
// the machine's own namespace, with a dashed frame. A link is a line
// between its two ends; the end that nsrouter generates on a bridge has no
// shape of its own, so the line meets the bridge and carries that port's
// name.
package graph

import (
	"fmt"

	"github.com/nsrouter/nsrouter/topology"
)

// kind is how a node is drawn.
type kind int

const (
	kindNamespace kind = iota // a namespace that does not forward
	kindRouter                // a namespace that forwards IPv4 or IPv6
	kindHost                  // the machine's own namespace
)

func kindOf(n *topology.Node) kind {
	switch {
	case n.Host:
		return kindHost
	case n.Forward4 || n.Forward6:
		return kindRouter
	}
	return kindNamespace
}

// title returns the lines that head a node's box: its name, its role,
// then what it does to packets: forwarding, loopback addresses, firewall
// chains, address translation and routes.
func title(t *topology.Topology, n *topology.Node) []string {
	lines := []string{n.Name}
	switch kindOf(n) {
	case kindHost:
		lines = append(lines, "the machine's own namespace")
	case kindRouter:
		lines = append(lines, "router")
	}
	if f := forwarding(n); f != "" {
		lines = append(lines, f)
	}
	for _, a := range n.Loopback {
		lines = append(lines, "lo "+a.String())
	}
	if n.Firewall != nil {
		for _, c := range n.Firewall.Chains() {
			lines = append(lines, fmt.Sprintf("%s policy %s, %s", c.Hook, policy(c.Chain), plural(len(c.Chain.Rules), "rule")))
		}
	}
	lines = append(lines, nat(n)...)
	if u := t.Uplink; u != nil && n.Host {
		lines = append(lines, "uplink from "+u.Node.Name+", masqueraded out "+or(u.Out, "the default route"))
	}
	if len(n.Rules) > 0 {
		lines = append(lines, plural(len(n.Rules), "policy rule"))
	}
	return append(lines, routes(n)...)
}

func policy(c *topology.Chain) string { return or(c.Policy, "accept") }

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func plural(k int, what string) string {
	if k == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", k, what)
}

// nat describes a node's masquerading and port forwards, one per line.
func nat(n *topology.Node) []string {
	if n.NAT == nil {
		return nil
	}
	var lines []string
	for _, m := range n.NAT.Masquerade {
		l := "masquerade out " + m.Out
		if m.To.IsValid() {
			l = "source NAT out " + m.Out + " to " + m.To.String()
		}
		lines = append(lines, l)
	}
	for _, p := range n.NAT.Ports {
		to := p.To.String()
		if p.ToPort != 0 {
			to += fmt.Sprintf(" port %d", p.ToPort)
		}
		lines = append(lines, fmt.Sprintf("%s port %s forwarded to %s", p.Proto, p.Port, to))
	}
	return lines
}

// routes lists the routes written in the file; the ones auto-routes
// computes are only counted, since there can be many.
func routes(n *topology.Node) []string {
	var lines []string
	auto := 0
	for _, r := range n.Routes {
		switch {
		case r.Auto:
			auto++
		case r.Table != 0:
			lines = append(lines, fmt.Sprintf("route %s table %d", r, r.Table))
		default:
			lines = append(lines, "route "+r.String())
		}
	}
	if auto > 0 {
		lines = append(lines, plural(auto, "computed route"))
	}
	return lines
}

func forwarding(n *topology.Node) string {
	switch {
	case n.Forward4 && n.Forward6:
		return "IPv4 and IPv6 forwarding"
	case n.Forward4:
		return "IPv4 forwarding"
	case n.Forward6:
		return "IPv6 forwarding"
	}
	return ""
}

// ifaceLines labels a veth end: its name, then its addresses.
func ifaceLines(i *topology.Interface) []string {
	lines := []string{i.Name}
	if i.Down {
		lines[0] += " (down)"
	}
	for _, a := range i.Addrs {
		lines = append(lines, a.String())
	}
	return lines
}

// bridgeLines labels a bridge: its name, then its addresses.
func bridgeLines(b *topology.Bridge) []string {
	lines := []string{b.Name + " (bridge)"}
	for _, a := range b.Addrs {
		lines = append(lines, a.String())
	}
	return lines
}

// plain returns the veth ends of n that get a shape of their own: all
// but the ports nsrouter generates on bridges.
func plain(n *topology.Node) []*topology.Interface {
	var out []*topology.Interface
	for _, i := range n.Interfaces {
		if i.Master == nil {
			out = append(out, i)
		}
	}
	return out
}

// levels numbers every node by its distance in links from where the
// diagram starts: the host when it takes part, otherwise the nodes that
// hold bridges, otherwise the first node. A component the start does not
// reach starts again at 0 from its first node.
func levels(t *topology.Topology) map[*topology.Node]int {
	adj := map[*topology.Node][]*topology.Node{}
	for _, l := range t.Links {
		a, b := l.A.Node, l.B.Node
		adj[a] = append(adj[a], b)
		adj[b] = append(adj[b], a)
	}
	level := map[*topology.Node]int{}
	var queue []*topology.Node
	visit := func(n *topology.Node, d int) {
		if _, seen := level[n]; !seen {
			level[n] = d
			queue = append(queue, n)
		}
	}
	walk := func(start []*topology.Node) {
		for _, n := range start {
			visit(n, 0)
		}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			for _, m := range adj[n] {
				visit(m, level[n]+1)
			}
		}
	}
	walk(roots(t))
	for _, n := range t.Nodes {
		walk([]*topology.Node{n})
	}
	return level
}

func roots(t *topology.Topology) []*topology.Node {
	if h := t.Node(topology.HostNode); h != nil && (len(h.Interfaces) > 0 || len(h.Bridges) > 0) {
		return []*topology.Node{h}
	}
	var out []*topology.Node
	for _, n := range t.Nodes {
		if len(n.Bridges) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// orient returns the ends of l in drawing order: the end nearer the
// start of the diagram first, and a bridge before a plain interface
// when both are as near.
func orient(l *topology.Link, level map[*topology.Node]int) (from, to *topology.Interface) {
	la, lb := level[l.A.Node], level[l.B.Node]
	if lb < la || (lb == la && l.B.Master != nil) {
		return l.B, l.A
	}
	return l.A, l.B
}

// down reports whether l is left down on purpose, at either end.
func down(l *topology.Link) bool { return l.A.Down || l.B.Down }

// portName is the label a line carries at the end of i: the port's name
// when i is the end nsrouter generates on a bridge, otherwise nothing,
// since i's own shape already shows its name.
func portName(i *topology.Interface) string {
	if i.Master == nil {
		return ""
	}
	return i.Name
}
