package topology

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

func (r *resolver) expectations(f *File) {
	for i := range f.Expect {
		fe := &f.Expect[i]
		what := fmt.Sprintf("expect[%d]", i)
		e := &Expectation{Line: fe.Pos.Line, To: fe.To.Value, Reach: true, TTL: fe.TTL.Value, Proto: "icmp"}
		if fe.Reach.Set {
			e.Reach = fe.Reach.Value
		}
		if !fe.From.Set {
			r.errs.add(fe.Pos, "%s: missing field \"from\"", what)
		} else {
			e.From = r.node(fe.From, what)
		}
		r.expectProto(fe, e, what)
		if !fe.To.Set {
			r.errs.add(fe.Pos, "%s: missing field \"to\"", what)
		} else {
			to := fe.To
			if e.Proto != "icmp" && !fe.Port.Set {
				to = r.splitPort(fe.To, e, what)
			}
			e.Addr, e.Target = r.targetFamily(to, fe.Family, what)
		}
		if fe.TTL.Set && (fe.TTL.Value < 1 || fe.TTL.Value > 255) {
			r.errs.add(fe.TTL.Pos, "%s: ttl %d must be between 1 and 255", what, fe.TTL.Value)
		}
		if fe.TTL.Set && e.Proto != "icmp" {
			r.errs.add(fe.TTL.Pos, "%s: ttl is measured on ICMP replies only", what)
		}
		if fe.Source.Set {
			a, err := netip.ParseAddr(fe.Source.Value)
			if err != nil {
				a, _ = r.target(fe.Source, what+" source")
			}
			e.Source = a
			if e.Proto == "icmp" {
				r.errs.add(fe.Source.Pos, "%s: source is seen by tcp and udp listeners only; set proto", what)
			}
		}
		r.server(fe, e, what)
		r.t.Expect = append(r.t.Expect, e)
	}
	r.wayBack(f.Expect)
}

// server decides where a tcp/udp expectation's listener runs.
func (r *resolver) server(fe *FileExpect, e *Expectation, what string) {
	if e.Proto == "icmp" {
		if fe.Server.Set {
			r.errs.add(fe.Server.Pos, "%s: server is for tcp and udp expectations", what)
		}
		return
	}
	e.Server, e.ServerPort = e.Target, e.Port
	if !fe.Server.Set {
		if e.Target == nil && e.Addr.IsValid() {
			r.errs.add(fe.To.Pos, "%s: no lab node has %s; say where the listener runs with server: NODE", what, e.Addr)
		}
		return
	}
	name, port, hasPort := strings.Cut(fe.Server.Value, ":")
	e.Server = r.node(String{Value: name, Pos: fe.Server.Pos}, what+" server")
	if hasPort {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			r.errs.add(fe.Server.Pos, "%s: server port %q is not a port", what, port)
		}
		e.ServerPort = uint16(p)
	}
}

func (r *resolver) expectProto(fe *FileExpect, e *Expectation, what string) {
	switch fe.Proto.Value {
	case "", "icmp":
	case "tcp", "udp":
		e.Proto = fe.Proto.Value
	default:
		r.errs.add(fe.Proto.Pos, "%s: proto %q must be icmp, tcp or udp", what, fe.Proto.Value)
	}
	if fe.Port.Set {
		if fe.Port.Value < 1 || fe.Port.Value > 65535 {
			r.errs.add(fe.Port.Pos, "%s: port %d is not a port", what, fe.Port.Value)
		}
		e.Port = uint16(fe.Port.Value)
		if e.Proto == "icmp" {
			r.errs.add(fe.Port.Pos, "%s: a port needs proto tcp or udp", what)
		}
	}
}

// splitPort takes the port off "target:PORT" (or "[v6]:PORT").
func (r *resolver) splitPort(s String, e *Expectation, what string) String {
	v := s.Value
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		r.errs.add(s.Pos, "%s: %s expectations need a port: to: NODE:PORT, or a port field", what, e.Proto)
		return s
	}
	port, err := strconv.ParseUint(v[i+1:], 10, 16)
	if err != nil || port == 0 {
		r.errs.add(s.Pos, "%s: %q does not end in a port", what, v)
		return s
	}
	e.Port = uint16(port)
	host := strings.TrimSuffix(strings.TrimPrefix(v[:i], "["), "]")
	return String{Value: host, Pos: s.Pos, Set: true}
}

// target resolves "to": an IP address, a node (its first address), or
// node:interface (that interface's first address).
func (r *resolver) target(s String, what string) (netip.Addr, *Node) {
	return r.targetFamily(s, String{}, what)
}

func (r *resolver) targetFamily(s String, fam String, what string) (netip.Addr, *Node) {
	want := 0
	switch fam.Value {
	case "":
	case "ipv4":
		want = 4
	case "ipv6":
		want = 6
	default:
		r.errs.add(fam.Pos, "%s: family %q must be ipv4 or ipv6", what, fam.Value)
	}
	if a, err := netip.ParseAddr(s.Value); err == nil {
		return a, r.owner(a)
	}
	nodeName, ifName, named := strings.Cut(s.Value, ":")
	n := r.node(String{Value: nodeName, Pos: s.Pos}, what)
	if n == nil {
		return netip.Addr{}, nil
	}
	fits := func(p netip.Prefix) bool {
		return want == 0 || (want == 4) == p.Addr().Is4()
	}
	for _, a := range n.connected() {
		if (!named || a.dev == ifName) && fits(a.prefix) {
			return a.prefix.Addr(), n
		}
	}
	if !named || ifName == "lo" {
		for _, p := range n.Loopback {
			if fits(p) {
				return p.Addr(), n
			}
		}
	}
	if named && ifName != "lo" && !r.hasInterface(n, ifName) {
		r.checkIf(String{Value: ifName, Pos: s.Pos, Set: true}, n, what)
	} else {
		r.errs.add(s.Pos, "%s: %s has no %saddress to send to", what, s.Value, map[int]string{0: "", 4: "IPv4 ", 6: "IPv6 "}[want])
	}
	return netip.Addr{}, nil
}

// owner returns the node that holds addr, or nil.
func (r *resolver) owner(a netip.Addr) *Node {
	for _, n := range r.t.Nodes {
		if n.owns(a) {
			return n
		}
	}
	return nil
}

// owns reports whether a is one of n's addresses.
func (n *Node) owns(a netip.Addr) bool {
	for _, c := range n.connected() {
		if c.prefix.Addr() == a {
			return true
		}
	}
	for _, p := range n.Loopback {
		if p.Addr() == a {
			return true
		}
	}
	return false
}
