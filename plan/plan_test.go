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
		AddRoute: 2, SetFirewall: 1, AllowBridged: 1, WriteSharedHosts: 1, WriteHosts: 3}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d %s steps, want %d", count[k], k, n)
		}
	}
	for _, order := range [][2]Kind{{CreateNamespace, CreateVeth}, {CreateBridge, CreateVeth}, {CreateVeth, AddAddress},
		{AddAddress, SetUp}, {SetUp, AddRoute}, {SetSysctl, CreateVeth}, {WriteSharedHosts, WriteHosts}} {
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

func noRules(string, *topology.Node, *topology.Firewall, *topology.NAT) []ChainText { return nil }

func TestScriptLines(t *testing.T) {
	var b bytes.Buffer
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

// TestFastProfileSteps: the fast profile gives every end of the lab's
// links, bridge ports included, a packet-size step before it comes up and
// a fact that says so; a link with profile default and the uplink get
// neither, and the script sets the sizes with ip.
func TestFastProfileSteps(t *testing.T) {
	src := strings.Replace(string(topology.BuiltinYAML()), "name: ", "profile: fast\nname: ", 1) + `uplink: {node: router-ns, subnet: 10.254.0.0/30, out: eth9}
`
	top, err := topology.Parse("fast.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	top.Links[1].Fast = false // as if the second link said profile: default
	p := Build(top)
	sized := map[string]int{}
	for i, s := range p.Steps {
		if s.Kind != SetPacketSize {
			continue
		}
		sized[s.Node.Name+":"+s.Iface] = i
		if s.Size != topology.FastPacketSize || s.Reason == "" {
			t.Errorf("step %s: size %d, reason %q", s, s.Size, s.Reason)
		}
		for j, u := range p.Steps {
			if u.Kind == SetUp && u.Node == s.Node && u.Iface == s.Iface && j < i {
				t.Errorf("%s comes after the interface is up", s)
			}
		}
	}
	facts := map[string]string{}
	for _, f := range Facts(top, nil) {
		if f.Kind == "link" {
			facts[f.Node+":"+f.Key] = f.Value
		}
	}
	for _, l := range top.Links {
		for _, i := range []*topology.Interface{l.A, l.B} {
			_, has := sized[i.String()]
			fast := strings.Contains(facts[i.String()], " fast")
			if want := l != top.Links[1] && l != top.Uplink.Iface.Link; has != want || fast != want {
				t.Errorf("%s: step %v, fact %q; want fast %v", i, has, facts[i.String()], want)
			}
		}
	}
	var buf bytes.Buffer
	p.Script(&buf, noRules)
	if n := strings.Count(buf.String(), "gso_ipv4_max_size 185000 gro_ipv4_max_size 185000"); n != len(sized) {
		t.Errorf("the script sets packet sizes %d times, want %d", n, len(sized))
	}
}
