package lab_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

func trace(t *testing.T, top *topology.Topology, from, to string) *lab.TraceResult {
	t.Helper()
	res, err := lab.Trace(ctx(t), top, top.Node(from), netip.MustParseAddr(to), "icmp", 0, lab.Options{})
	if err != nil {
		t.Fatalf("trace %s -> %s: %v", from, to, err)
	}
	return res
}

// TestTraceWorkingPath compares each hop with what `ip route get` says.
func TestTraceWorkingPath(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	res := trace(t, top, "ns0", "10.12.0.2")
	if !res.Reached || res.Reason != "" {
		t.Fatalf("trace ns0 -> ns1: reached %v, reason %q", res.Reached, res.Reason)
	}
	var nodes []string
	for _, h := range res.Forward {
		nodes = append(nodes, h.Node)
	}
	if got := strings.Join(nodes, " "); got != "ns0 router-ns ns1" {
		t.Errorf("forward path %q, want ns0 router-ns ns1", got)
	}
	for _, h := range res.Forward[:2] {
		args := []string{"-n", h.Node, "route", "get", "10.12.0.2"}
		if h.In != "" {
			args = append(args, "from", "10.11.0.2", "iif", h.In)
		}
		out := witness.Run(t, "ip", args...)
		if !strings.Contains(out, "dev "+h.Out) {
			t.Errorf("%s: trace says out %s, ip route get says:\n%s", h.Node, h.Out, out)
		}
		if h.Via != "10.12.0.2" && !strings.Contains(out, "via "+h.Via) {
			t.Errorf("%s: trace says via %s, ip route get says:\n%s", h.Node, h.Via, out)
		}
	}
	if len(res.Reply) != 3 || res.Reply[1].Node != "router-ns" || res.Reply[1].Out != "eth0" {
		t.Errorf("reply path: %+v", res.Reply)
	}
}

// TestTraceReasons breaks one thing at a time in the built-in lab and
// expects the trace to name it and the node.
func TestTraceReasons(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	cases := []struct {
		name        string
		breakIt     [][]string
		repair      [][]string
		node, wants string
	}{
		{"no route",
			[][]string{{"ip", "-n", "ns0", "route", "del", "10.12.0.0/24"}},
			[][]string{{"ip", "-n", "ns0", "route", "add", "10.12.0.0/24", "via", "10.11.0.3", "proto", "73"}},
			"ns0", "ns0 has no route to 10.12.0.2"},
		{"gateway silent",
			[][]string{{"ip", "-n", "router-ns", "link", "set", "eth0", "arp", "off"}, {"ip", "-n", "ns0", "neigh", "flush", "all"}},
			[][]string{{"ip", "-n", "router-ns", "link", "set", "eth0", "arp", "on"}},
			"ns0", "10.11.0.3 does not answer ARP"},
		{"forwarding off",
			[][]string{{"ip", "netns", "exec", "router-ns", "sysctl", "-qw", "net.ipv4.ip_forward=0"}},
			[][]string{{"ip", "netns", "exec", "router-ns", "sysctl", "-qw", "net.ipv4.ip_forward=1"}},
			"router-ns", "forwarding is off at router-ns"},
		{"reverse-path filter",
			[][]string{{"ip", "netns", "exec", "router-ns", "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"},
				{"ip", "-n", "router-ns", "route", "add", "10.11.0.2/32", "dev", "eth1"}},
			[][]string{{"ip", "netns", "exec", "router-ns", "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"},
				{"ip", "-n", "router-ns", "route", "del", "10.11.0.2/32", "dev", "eth1"}},
			"router-ns", "reverse-path filter at router-ns"},
		{"own firewall rule",
			[][]string{{"ip", "netns", "exec", "router-ns", "nft", "insert", "rule", "inet", "nsrouter-classic", "forward",
				"icmp", "type", "echo-request", "drop", "comment", `"no pings"`}},
			nil, "router-ns", `inet nsrouter-classic chain forward rule "no pings"`},
		{"own forward policy",
			[][]string{{"ip", "netns", "exec", "router-ns", "nft", "flush", "chain", "inet", "nsrouter-classic", "forward"}},
			nil, "router-ns", "by the policy of inet nsrouter-classic chain forward"},
		{"docker forward drop",
			[][]string{{"iptables", "-P", "FORWARD", "DROP"}},
			[][]string{{"iptables", "-P", "FORWARD", "ACCEPT"}},
			"host", "by the policy of ip filter chain FORWARD"},
		{"no return route",
			[][]string{{"ip", "-n", "ns1", "route", "del", "10.11.0.0/24"}},
			[][]string{{"ip", "-n", "ns1", "route", "add", "10.11.0.0/24", "via", "10.12.0.3", "proto", "73"}},
			"ns1", "no way back: ns1 has no route to 10.11.0.2"},
	}
	for _, c := range cases {
		for _, cmd := range c.breakIt {
			witness.Run(t, cmd[0], cmd[1:]...)
		}
		res := trace(t, top, "ns0", "10.12.0.2")
		if res.Reached || res.Node != c.node || !strings.Contains(res.Reason, c.wants) {
			t.Errorf("%s: reached %v, node %q, reason %q; want node %s and %q", c.name, res.Reached, res.Node, res.Reason, c.node, c.wants)
		}
		for _, cmd := range c.repair {
			witness.Run(t, cmd[0], cmd[1:]...)
		}
		up(t, top) // puts the router's rules back
		if res := trace(t, top, "ns0", "10.12.0.2"); !res.Reached {
			t.Fatalf("%s: not repaired: %s", c.name, res.Reason)
		}
	}
}

// TestCheckExplains: a failing expectation carries the trace's reason.
func TestCheckExplains(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	witness.Run(t, "ip", "netns", "exec", "router-ns", "sysctl", "-qw", "net.ipv4.ip_forward=0")
	rep, err := lab.Check(ctx(t), top, lab.Options{Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.From == "ns0" && r.To == "ns1" && !strings.Contains(r.Why, "forwarding is off at router-ns") {
			t.Errorf("check ns0 -> ns1: why %q", r.Why)
		}
	}
}
