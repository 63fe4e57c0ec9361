package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/probe"
	"github.com/nsrouter/nsrouter/topology"
	"golang.org/x/sys/unix"
)

// Hop is one node a traced packet passes, as the kernel routes it there.
type Hop struct {
	Node  string `json:"node"`
	In    string `json:"in,omitempty"`
	Out   string `json:"out,omitempty"`
	Via   string `json:"via,omitempty"` // the next hop: a gateway, or the destination itself
	Route string `json:"route,omitempty"`
}

// TraceResult is where a packet goes and, if it does not arrive, why.
type TraceResult struct {
	From    string              `json:"from"`
	To      string              `json:"to"`
	Proto   string              `json:"proto"`
	Forward []Hop               `json:"forward"`
	Reply   []Hop               `json:"reply,omitempty"`
	Reached bool                `json:"reached"`
	Reason  string              `json:"reason,omitempty"` // one line, naming the node
	Node    string              `json:"node,omitempty"`   // where it stops
	Events  []kernel.TraceEvent `json:"drops,omitempty"`
}

// tracer holds the namespaces a trace opens.
type tracer struct {
	t   *topology.Topology
	nss map[string]*kernel.NS
}

func (tr *tracer) ns(n *topology.Node) (*kernel.NS, error) {
	if ns, ok := tr.nss[n.Name]; ok {
		return ns, nil
	}
	var (
		ns  *kernel.NS
		err error
	)
	if n.Host {
		ns, err = kernel.Host()
	} else {
		ns, err = kernel.OpenNamed(n.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("node %s is not up: %w", n.Name, err)
	}
	tr.nss[n.Name] = ns
	return ns, nil
}

func (tr *tracer) close() {
	for _, ns := range tr.nss {
		ns.Close()
	}
}

// Trace follows a packet from a node to dst hop by hop, asking each
// namespace's kernel for its route and its forwarding settings, then the
// reply back; then it sends a real probe with nftables tracing on in every
// namespace on the way and reports the verdict that stopped it.
func Trace(ctx context.Context, t *topology.Topology, from *topology.Node, dst netip.Addr, proto string, port uint16, o Options) (*TraceResult, error) {
	if err := RequireRoot(); err != nil {
		return nil, err
	}
	tr := &tracer{t: t, nss: map[string]*kernel.NS{}}
	defer tr.close()
	res := &TraceResult{From: from.Name, To: dst.String(), Proto: proto}
	fwd, src, stop, why := tr.walk(from, netip.Addr{}, dst)
	res.Forward = fwd
	if why != "" {
		res.Node, res.Reason = stop, why
		return res, nil
	}
	if !natOnPath(t, fwd) {
		// Behind NAT the reply goes to the translated address, which the
		// lab's routes cannot know: there only the probe can tell.
		target := fwd[len(fwd)-1]
		back, _, stop, why := tr.walk(t.Node(target.Node), dst, src)
		res.Reply = back
		if why != "" {
			res.Node, res.Reason = stop, "no way back: "+why
			return res, nil
		}
	}
	return res, tr.probe(ctx, res, from, src, dst, proto, port)
}

// walk follows the kernel's routes from n to dst. It returns the hops, the
// source address the first node picks, and, if the packet cannot go on,
// where and why.
func (tr *tracer) walk(n *topology.Node, src, dst netip.Addr) ([]Hop, netip.Addr, string, string) {
	var hops []Hop
	in := ""
	for range 32 {
		if n.Owns(dst) {
			return append(hops, Hop{Node: n.Name, In: in}), src, "", ""
		}
		ns, err := tr.ns(n)
		if err != nil {
			return hops, src, n.Name, err.Error()
		}
		if in != "" {
			if why := forwardingOff(ns, n, dst); why != "" {
				return append(hops, Hop{Node: n.Name, In: in}), src, n.Name, why
			}
		}
		r, err := ns.RouteGet(dst, src, in)
		if err != nil {
			return append(hops, Hop{Node: n.Name, In: in}), src, n.Name, routeError(ns, n, dst, src, in, err)
		}
		if !src.IsValid() {
			src = r.Src
		}
		via := r.Gw
		if !via.IsValid() {
			via = dst
		}
		hop := Hop{Node: n.Name, In: in, Out: r.Dev, Via: via.String(), Route: fmt.Sprintf("table %d dev %s", r.Table, r.Dev)}
		hops = append(hops, hop)
		next := tr.t.Neighbour(n, r.Dev, via)
		if next == nil {
			return hops, src, n.Name, fmt.Sprintf("%s: no lab node holds %s on %s", n.Name, via, r.Dev)
		}
		in = tr.t.FacingDev(n, r.Dev, next)
		n = next
	}
	return hops, src, n.Name, "routing loop"
}

// rpFilterOn reports whether the reverse-path filter checks packets
// arriving on dev: the larger of the all and the interface setting counts.
func rpFilterOn(ns *kernel.NS, dev string) bool {
	for _, k := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf." + dev + ".rp_filter"} {
		if v, err := ns.Sysctl(k); err == nil && v != "0" {
			return true
		}
	}
	return false
}

// natOnPath reports whether a node on the path translates addresses.
func natOnPath(t *topology.Topology, hops []Hop) bool {
	for _, h := range hops {
		n := t.Node(h.Node)
		if n != nil && (n.NAT != nil || (t.Uplink != nil && t.Uplink.Node == n)) {
			return true
		}
	}
	return false
}

func forwardingOff(ns *kernel.NS, n *topology.Node, dst netip.Addr) string {
	key := "net.ipv4.ip_forward"
	if dst.Is6() {
		key = "net.ipv6.conf.all.forwarding"
	}
	if v, err := ns.Sysctl(key); err == nil && v == "0" {
		return fmt.Sprintf("forwarding is off at %s (%s = 0)", n.Name, key)
	}
	return ""
}

// routeError explains a failed lookup. For a packet coming in, the kernel
// also applies the reverse-path filter; EINVAL then means that check.
func routeError(ns *kernel.NS, n *topology.Node, dst, src netip.Addr, in string, err error) string {
	switch {
	case in != "" && (errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL)) && rpFilterOn(ns, in):
		return fmt.Sprintf("the reverse-path filter at %s drops packets from %s arriving on %s", n.Name, src, in)
	case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EHOSTUNREACH):
		return fmt.Sprintf("%s has no route to %s", n.Name, dst)
	}
	return fmt.Sprintf("%s: route lookup for %s: %v", n.Name, dst, err)
}

// probe sends the real packet with tracing on along both paths (and in the
// host, whose bridges the packet may cross) and explains a loss.
func (tr *tracer) probe(ctx context.Context, res *TraceResult, from *topology.Node, src, dst netip.Addr, proto string, port uint16) error {
	seen := map[string]bool{}
	var order []string
	var tracers []*kernel.Tracer
	nodes := append(append([]Hop{}, res.Forward...), res.Reply...)
	if h := tr.t.Node(topology.HostNode); h != nil {
		nodes = append(nodes, Hop{Node: h.Name})
	}
	for _, h := range nodes {
		if seen[h.Node] {
			continue
		}
		seen[h.Node] = true
		order = append(order, h.Node)
		ns, err := tr.ns(tr.t.Node(h.Node))
		if err != nil {
			return err
		}
		tcr, err := ns.StartTrace(h.Node, src, dst)
		if err != nil {
			return err
		}
		tracers = append(tracers, tcr)
	}
	reached, err := tr.send(ctx, from, dst, res, proto, port)
	var events []kernel.TraceEvent
	for _, tcr := range tracers {
		events = append(events, tcr.Stop()...)
	}
	if err != nil || reached {
		res.Reached = reached
		return err
	}
	seenEv := map[kernel.TraceEvent]bool{}
	for _, node := range order {
		for _, ev := range events {
			if ev.Node == node && ev.Drops() && !seenEv[ev] {
				seenEv[ev] = true
				res.Events = append(res.Events, ev)
			}
		}
	}
	if len(res.Events) > 0 {
		ev := res.Events[0]
		res.Node, res.Reason = ev.Node, dropReason(ev)
		return nil
	}
	res.Node, res.Reason = tr.neighbourFailure(res)
	return nil
}

func dropReason(ev kernel.TraceEvent) string {
	where := fmt.Sprintf("%s %s chain %s", ev.Family, ev.Table, ev.Chain)
	if ev.Type == "policy" {
		return fmt.Sprintf("dropped at %s by the policy of %s", ev.Node, where)
	}
	rule := ev.Rule
	if rule == "" {
		rule = fmt.Sprintf("handle %d", ev.Handle)
	}
	return fmt.Sprintf("dropped at %s by %s rule %q", ev.Node, where, rule)
}

// neighbourFailure looks for a gateway that did not answer ARP or
// neighbour discovery on the way.
func (tr *tracer) neighbourFailure(res *TraceResult) (string, string) {
	for _, h := range append(append([]Hop{}, res.Forward...), res.Reply...) {
		if h.Out == "" || h.Via == "" {
			continue
		}
		ns, err := tr.ns(tr.t.Node(h.Node))
		if err != nil {
			continue
		}
		via, _ := netip.ParseAddr(h.Via)
		if ns.NeighborFailed(h.Out, via) {
			return h.Node, fmt.Sprintf("%s does not answer ARP or neighbour discovery on %s of %s", via, h.Out, h.Node)
		}
	}
	return "", "no reply, and no firewall on the way reported a drop"
}

// send runs the probe: ICMP echo, or a TCP/UDP exchange with a listener
// the trace starts in the target node.
func (tr *tracer) send(ctx context.Context, from *topology.Node, dst netip.Addr, res *TraceResult, proto string, port uint16) (bool, error) {
	ns, err := tr.ns(from)
	if err != nil {
		return false, err
	}
	if proto == "" || proto == "icmp" {
		r, err := probe.Ping(ctx, ns, dst, probe.PingOptions{Count: 3, Timeout: 1500 * time.Millisecond})
		return r.Reply, err
	}
	target := tr.t.Node(res.Forward[len(res.Forward)-1].Node)
	tns, err := tr.ns(target)
	if err != nil {
		return false, err
	}
	if l, err := probe.Listen(tns, proto, port); err == nil {
		defer l.Close()
	}
	r, err := probe.Connect(ctx, ns, proto, netip.AddrPortFrom(dst, port), 1500*time.Millisecond)
	// A refusal came back from the target: the path works both ways.
	return r.Connected || r.Outcome == "refused", err
}
