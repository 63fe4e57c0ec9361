package topology

import (
	"net/netip"
	"slices"
	"strings"
)

func (r *resolver) firewall(n *Node, ff *FileFirewall) *Firewall {
	fw := &Firewall{}
	fw.Input = r.chain(n, ff.Input, "input")
	fw.Forward = r.chain(n, ff.Forward, "forward")
	fw.Output = r.chain(n, ff.Output, "output")
	return fw
}

func (r *resolver) chain(n *Node, fc *FileChain, hook string) *Chain {
	if fc == nil {
		return nil
	}
	what := "node " + n.Name + " firewall." + hook
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
		c.Rules = append(c.Rules, r.filter(n, &fc.Rules[i], what, hook))
	}
	return c
}

var states = []string{"new", "established", "related", "invalid"}

func (r *resolver) filter(n *Node, fr *FileFilter, what, hook string) Rule {
	rule := Rule{In: fr.In.Value, Out: fr.Out.Value, Log: fr.Log.Value}
	r.checkIf(fr.In, n, what)
	r.checkIf(fr.Out, n, what)
	if hook == "input" && fr.Out.Set {
		r.errs.add(fr.Out.Pos, "%s: input rules see no output interface; drop \"out\"", what)
	}
	if hook == "output" && fr.In.Set {
		r.errs.add(fr.In.Pos, "%s: output rules see no input interface; drop \"in\"", what)
	}
	rule.Src = r.network(fr.Src, what+" src")
	rule.Dst = r.network(fr.Dst, what+" dst")
	if rule.Src.IsValid() && rule.Dst.IsValid() && rule.Src.Addr().Is4() != rule.Dst.Addr().Is4() {
		r.errs.add(fr.Dst.Pos, "%s: src and dst are of different IP versions", what)
	}
	switch fr.Proto.Value {
	case "", "tcp", "udp", "icmp", "icmpv6":
		rule.Proto = fr.Proto.Value
	default:
		r.errs.add(fr.Proto.Pos, "%s: proto %q must be tcp, udp, icmp or icmpv6", what, fr.Proto.Value)
	}
	rule.SPort = r.portRange(fr.SPort, what+" sport")
	rule.DPort = r.portRange(fr.DPort, what+" dport")
	if (fr.SPort.Set || fr.DPort.Set) && rule.Proto != "tcp" && rule.Proto != "udp" {
		r.errs.add(fr.Pos, "%s: ports need proto tcp or udp", what)
	}
	for _, s := range fr.State {
		if !slices.Contains(states, s.Value) {
			r.errs.add(s.Pos, "%s: state %q must be one of %s", what, s.Value, strings.Join(states, ", "))
			continue
		}
		rule.States = append(rule.States, s.Value)
	}
	if len(rule.Log) > 127 || strings.ContainsAny(rule.Log, "\"\n\\") {
		r.errs.add(fr.Log.Pos, "%s: log prefix must be at most 127 bytes without quotes or newlines", what)
	}
	switch fr.Action.Value {
	case "accept", "drop", "reject":
		rule.Action = fr.Action.Value
	case "":
		r.errs.add(fr.Pos, "%s: rule needs an action (accept, drop or reject)", what)
	default:
		r.errs.add(fr.Action.Pos, "%s: action %q must be accept, drop or reject", what, fr.Action.Value)
	}
	return rule
}

func (r *resolver) nat(n *Node, fn *FileNAT) *NAT {
	what := "node " + n.Name + " nat"
	nat := &NAT{}
	for _, m := range fn.Masquerade {
		if ms, ok := r.masq(n, &m, what+".masquerade", false); ok {
			nat.Masquerade = append(nat.Masquerade, ms)
		}
	}
	for _, m := range fn.SNAT {
		if ms, ok := r.masq(n, &m, what+".snat", true); ok {
			nat.Masquerade = append(nat.Masquerade, ms)
		}
	}
	for i := range fn.PortForward {
		if pf, ok := r.portForward(n, &fn.PortForward[i], what+".port-forward"); ok {
			nat.Ports = append(nat.Ports, pf)
		}
	}
	return nat
}

func (r *resolver) masq(n *Node, fm *FileMasq, what string, snat bool) (Masquerade, bool) {
	m := Masquerade{Out: fm.Out.Value}
	ok := true
	if !fm.Out.Set {
		r.errs.add(fm.Pos, "%s: missing field \"out\": translation applies to one output interface", what)
		ok = false
	} else {
		ok = r.checkIf(fm.Out, n, what) && ok
	}
	if len(fm.Src) == 0 {
		r.errs.add(fm.Pos, "%s: missing field \"src\": list the source prefixes to translate, so traffic between internal networks keeps its addresses", what)
		ok = false
	}
	for _, s := range fm.Src {
		if p := r.network(s, what+" src"); p.IsValid() {
			m.Src = append(m.Src, p)
		} else {
			ok = false
		}
	}
	switch {
	case snat && !fm.To.Set:
		r.errs.add(fm.Pos, "%s: missing field \"to\": the source address to write", what)
		ok = false
	case !snat && fm.To.Set:
		r.errs.add(fm.To.Pos, "%s: masquerade takes the interface's address; use snat for a fixed one", what)
		ok = false
	case snat:
		a, err := netip.ParseAddr(fm.To.Value)
		if err != nil {
			r.errs.add(fm.To.Pos, "%s: to %q is not an IP address", what, fm.To.Value)
			ok = false
		}
		m.To = a
		for _, p := range m.Src {
			if err == nil && p.Addr().Is4() != a.Is4() {
				r.errs.add(fm.To.Pos, "%s: to %s and src %s are of different IP versions", what, a, p)
				ok = false
				break
			}
		}
	}
	return m, ok
}

func (r *resolver) portForward(n *Node, fp *FilePort, what string) (PortForward, bool) {
	pf := PortForward{Proto: fp.Proto.Value, In: fp.In.Value, Hairpin: true}
	ok := true
	if fp.Hairpin.Set {
		pf.Hairpin = fp.Hairpin.Value
	}
	if pf.Proto != "tcp" && pf.Proto != "udp" {
		r.errs.add(fp.Pos, "%s: proto must be tcp or udp", what)
		ok = false
	}
	if !fp.Port.Set {
		r.errs.add(fp.Pos, "%s: missing field \"port\"", what)
		ok = false
	}
	pf.Port = r.portRange(fp.Port, what)
	ok = r.checkIf(fp.In, n, what) && ok
	if fp.ToPort.Set && pf.Port.Lo != pf.Port.Hi {
		r.errs.add(fp.ToPort.Pos, "%s: a port range is forwarded to the same ports; drop to-port", what)
		ok = false
	}
	if fp.ToPort.Set {
		if fp.ToPort.Value < 1 || fp.ToPort.Value > 65535 {
			r.errs.add(fp.ToPort.Pos, "%s: to-port %d is not a port", what, fp.ToPort.Value)
			ok = false
		}
		pf.ToPort = uint16(fp.ToPort.Value)
	}
	if !fp.To.Set {
		r.errs.add(fp.Pos, "%s: missing field \"to\" (a node, node:interface or address)", what)
		return pf, false
	}
	a, _ := r.target(fp.To, what)
	if !a.IsValid() {
		return pf, false
	}
	if a.IsLoopback() {
		r.errs.add(fp.To.Pos, "%s: forwarding to %s is refused: a loopback address would open the node's local services to every client (route_localnet); forward to an address on a lab interface", what, a)
		return pf, false
	}
	pf.To = a
	return pf, ok
}
