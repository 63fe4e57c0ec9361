package plan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nsrouter/nsrouter/topology"
)

// TestBuildBuiltin checks the built-in plan's steps: how many of each
// kind, and that every kind comes after what it needs.
func TestBuildBuiltin(t *testing.T) {
	p := Build(topology.Builtin())
	count := map[Kind]int{}
	first, last := map[Kind]int{}, map[Kind]int{}
	for i, s := range p.Steps {
		if _, ok := first[s.Kind]; !ok {
			first[s.Kind] = i
		}
		last[s.Kind] = i
		count[s.Kind]++
		if s.Reason == "" {
			t.Errorf("step %d (%s) has no reason", i, s)
		}
	}
	want := map[Kind]int{CreateNamespace: 3, CreateBridge: 2, CreateVeth: 4, AddAddress: 6, SetUp: 8,
		AddRoute: 2, SetFirewall: 1, AllowBridged: 1, WriteHosts: 3}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d %s steps, want %d", count[k], k, n)
		}
	}
	for _, order := range [][2]Kind{{CreateNamespace, CreateVeth}, {CreateBridge, CreateVeth}, {CreateVeth, AddAddress},
		{AddAddress, SetUp}, {SetUp, AddRoute}, {SetSysctl, CreateVeth}} {
		if last[order[0]] > first[order[1]] {
			t.Errorf("a %s step comes after a %s step", order[0], order[1])
		}
	}
}

// TestSysctlsOnlyWhereNeeded: every lab node's forwarding is explicit;
// rp_filter only on routers and multi-homed nodes.
func TestSysctlsOnlyWhereNeeded(t *testing.T) {
	keys := map[string][]string{}
	for _, s := range Build(topology.Builtin()).Steps {
		if s.Kind == SetSysctl {
			keys[s.Node.Name] = append(keys[s.Node.Name], s.Key+"="+s.Value)
		}
	}
	if got := strings.Join(keys["router-ns"], " "); !strings.Contains(got, "net.ipv4.ip_forward=1") ||
		!strings.Contains(got, "net.ipv4.conf.all.rp_filter=0") {
		t.Errorf("router-ns sysctls: %s", got)
	}
	if got := strings.Join(keys["ns0"], " "); !strings.Contains(got, "net.ipv4.ip_forward=0") || strings.Contains(got, "rp_filter") {
		t.Errorf("ns0 sysctls: %s", got)
	}
	if len(keys["host"]) != 0 {
		t.Errorf("the host gets sysctls it did not ask for: %v", keys["host"])
	}
}

func TestDiff(t *testing.T) {
	want := []Fact{{Node: "a", Kind: "link", Key: "eth0", Value: "veth"}, {Node: "a", Kind: "route", Key: "default via 10.0.0.1"}}
	have := []Fact{{Node: "a", Kind: "link", Key: "eth0", Value: "veth master br0"}, {Node: "a", Kind: "route", Key: "10.1.0.0/24 via 10.0.0.1"}}
	var got []string
	for _, c := range Diff(want, have) {
		got = append(got, c.String())
	}
	wantLines := []string{
		"~ a: link eth0 (veth master br0 -> veth)",
		"- a: route 10.1.0.0/24 via 10.0.0.1",
		"+ a: route default via 10.0.0.1",
	}
	if strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("diff:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	if d := Diff(Facts(topology.Builtin(), nil), Facts(topology.Builtin(), nil)); len(d) != 0 {
		t.Errorf("a topology differs from itself: %v", d)
	}
}

func TestScriptLines(t *testing.T) {
	var b bytes.Buffer
	noRules := func(string, *topology.Node, *topology.Firewall, *topology.NAT) []ChainText { return nil }
	Build(topology.Builtin()).Script(&b, noRules)
	for _, want := range []string{
		"ip netns add ns0",
		"ip -n ns0 link set lo alias nsrouter:classic",
		"ip link add br0 address " + BridgeMAC("classic", "host", "br0").String() + " type bridge",
		"ip link add eth0 netns ns0 type veth peer name ns0-eth0",
		"ip link set ns0-eth0 master br0",
		"ip -n ns0 addr add 10.11.0.2/24 dev eth0",
		"ip -n ns0 -4 route replace 10.12.0.0/24 via 10.11.0.3 proto 73",
		"ip netns exec router-ns sysctl -qw net.ipv4.ip_forward=1",
		"# a router forwards IPv4 only when this is 1",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the script lacks %q", want)
		}
	}
}
