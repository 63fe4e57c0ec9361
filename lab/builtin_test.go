package lab_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// up builds t and fails the test on error.
func up(t *testing.T, top *topology.Topology) *lab.UpResult {
	t.Helper()
	res, err := lab.Up(ctx(t), top, topology.BuiltinYAML(), lab.Options{})
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	return res
}

func check(t *testing.T, top *topology.Topology) *lab.Report {
	t.Helper()
	rep, err := lab.Check(ctx(t), top, lab.Options{})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return rep
}

type ipLink struct {
	Name     string   `json:"ifname"`
	Kind     string   `json:"link_type"`
	Flags    []string `json:"flags"`
	Master   string   `json:"master"`
	Alias    string   `json:"ifalias"`
	AddrInfo []struct {
		Family string `json:"family"`
		Local  string `json:"local"`
		Prefix int    `json:"prefixlen"`
	} `json:"addr_info"`
}

func links(t *testing.T, ns string, args ...string) map[string]ipLink {
	t.Helper()
	var list []ipLink
	cmd := []string{"-j", "addr", "show"}
	if ns != "" {
		cmd = append([]string{"-n", ns}, cmd...)
	}
	witness.JSON(t, &list, "ip", append(cmd, args...)...)
	// ip addr shows no alias; ip link does.
	var aliases []ipLink
	witness.JSON(t, &aliases, "ip", append(append([]string{}, cmd[:len(cmd)-2]...), "link", "show")...)
	out := map[string]ipLink{}
	for _, l := range list {
		out[l.Name] = l
	}
	for _, l := range aliases {
		if x, ok := out[l.Name]; ok {
			x.Alias = l.Alias
			out[l.Name] = x
		}
	}
	return out
}

func addrs(l ipLink) []string {
	var out []string
	for _, a := range l.AddrInfo {
		if a.Family == "inet" {
			out = append(out, a.Local+"/"+strconv.Itoa(a.Prefix))
		}
	}
	return out
}

// TestBuiltinWitnessed builds the built-in lab and asks ip, nft and /proc,
// not nsrouter, whether each object is exactly as DESIGN.md describes it.
func TestBuiltinWitnessed(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := witness.Snapshot(t)
	top := topology.Builtin()
	up(t, top)

	if got := strings.Fields(witness.Run(t, "ip", "netns", "list")); !containsAll(got, "ns0", "ns1", "router-ns") {
		t.Errorf("ip netns list = %v, want ns0, ns1 and router-ns", got)
	}
	host := links(t, "")
	for br, addr := range map[string]string{"br0": "10.11.0.1/24", "br1": "10.12.0.1/24"} {
		l, ok := host[br]
		if !ok {
			t.Errorf("host has no %s", br)
			continue
		}
		if got := addrs(l); !slices.Equal(got, []string{addr}) {
			t.Errorf("%s addresses = %v, want [%s]", br, got, addr)
		}
		if !slices.Contains(l.Flags, "UP") {
			t.Errorf("%s is not up: %v", br, l.Flags)
		}
	}
	ports := map[string]string{"ns0-eth0": "br0", "router-ns-eth0": "br0", "ns1-eth0": "br1", "router-ns-eth1": "br1"}
	for port, br := range ports {
		if got := host[port].Master; got != br {
			t.Errorf("host port %s master = %q, want %s", port, got, br)
		}
		if got := host[port].Alias; got != "nsrouter:classic" {
			t.Errorf("host port %s alias = %q, want the lab's mark", port, got)
		}
	}
	want := map[string]map[string]string{
		"ns0":       {"eth0": "10.11.0.2/24"},
		"ns1":       {"eth0": "10.12.0.2/24"},
		"router-ns": {"eth0": "10.11.0.3/24", "eth1": "10.12.0.3/24"},
	}
	for ns, ifs := range want {
		got := links(t, ns)
		for name, addr := range ifs {
			if a := addrs(got[name]); !slices.Equal(a, []string{addr}) {
				t.Errorf("%s %s addresses = %v, want [%s]", ns, name, a, addr)
			}
			if !slices.Contains(got[name].Flags, "UP") {
				t.Errorf("%s %s is not up", ns, name)
			}
		}
		if !slices.Contains(got["lo"].Flags, "UP") {
			t.Errorf("%s lo is not up", ns)
		}
	}
	routes := map[string]string{"ns0": "10.12.0.0/24 via 10.11.0.3", "ns1": "10.11.0.0/24 via 10.12.0.3"}
	for ns, r := range routes {
		if out := witness.Run(t, "ip", "-n", ns, "route", "show"); !strings.Contains(out, r) {
			t.Errorf("%s routes:\n%s\nwant %s", ns, out, r)
		}
	}
	for ns, v := range map[string]string{"router-ns": "1", "ns0": "0", "ns1": "0"} {
		if got := strings.TrimSpace(witness.InNS(t, ns, "cat", "/proc/sys/net/ipv4/ip_forward")); got != v {
			t.Errorf("%s ip_forward = %s, want %s", ns, got, v)
		}
	}
	checkRouterRules(t)

	// ping(8) as a second witness of the path: across the router, TTL 63.
	out := witness.InNS(t, "ns0", "ping", "-c", "1", "-W", "2", "10.12.0.2")
	if !strings.Contains(out, "ttl=63") {
		t.Errorf("ping ns0 -> ns1:\n%s\nwant ttl=63", out)
	}
	rep := check(t, top)
	if rep.Failed != 0 {
		t.Errorf("check: %d failed: %+v", rep.Failed, rep.Results)
	}
	for _, r := range rep.Results {
		if r.From == "ns0" && r.To == "ns1" && r.TTL != 63 {
			t.Errorf("check ns0 -> ns1 TTL = %d, want 63", r.TTL)
		}
	}

	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatalf("down: %v", err)
	}
	witness.Unchanged(t, before, "after down the sandbox differs from before up")
}

func checkRouterRules(t *testing.T) {
	t.Helper()
	out := witness.Run(t, "ip", "netns", "exec", "router-ns", "nft", "list", "ruleset")
	for _, want := range []string{
		"table inet nsrouter-classic",
		"type filter hook forward priority filter; policy drop;",
		`iifname "eth0" oifname "eth1"`,
		`iifname "eth1" oifname "eth0"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("router-ns ruleset lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "accept comment"); n != 2 {
		t.Errorf("router-ns has %d accept rules, want 2:\n%s", n, out)
	}
}

func containsAll(list []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(list, w) {
			return false
		}
	}
	return true
}

// TestUpTwiceChangesNothing runs up again and compares every namespace's
// kernel state, as ip and nft print it, before and after.
func TestUpTwiceChangesNothing(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	snap := func() string {
		s := witness.Snapshot(t)
		for _, ns := range []string{"ns0", "ns1", "router-ns"} {
			s += witness.InNS(t, ns, "ip", "-j", "addr") + witness.InNS(t, ns, "ip", "-j", "route", "show", "table", "all") +
				witness.InNS(t, ns, "nft", "-j", "list", "ruleset")
		}
		return s
	}
	first := snap()
	res := up(t, top)
	if res.Changed != 0 {
		t.Errorf("second up changed %d steps, want 0", res.Changed)
	}
	if second := snap(); second != first {
		t.Errorf("second up changed the kernel:\n%s", witness.Diff(first, second))
	}
}

// TestForwardingOffBreaksCrossing switches the router's forwarding off by
// hand and expects check to see ns0 lose ns1 but keep its own LAN.
func TestForwardingOffBreaksCrossing(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	witness.InNS(t, "router-ns", "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
	rep := check(t, top)
	for _, r := range rep.Results {
		crosses := (r.From == "ns0" && (r.To == "ns1" || r.To == "host:br1")) || (r.From == "ns1" && r.To == "ns0")
		if crosses && r.Pass {
			t.Errorf("%s -> %s passed with forwarding off", r.From, r.To)
		}
		if !crosses && !r.Pass {
			t.Errorf("%s -> %s failed (%s); it does not cross the router", r.From, r.To, r.Detail)
		}
	}
}

// TestDockerForwardDrop sets the host's iptables FORWARD policy to DROP, as
// Docker does; bridged frames meet it through br_netfilter, and the lab
// must still pass, then leave the policy and chain as they were.
func TestDockerForwardDrop(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	witness.Run(t, "iptables", "-P", "FORWARD", "DROP")
	before := witness.Snapshot(t)
	top := topology.Builtin()
	res := up(t, top)
	if len(res.Foreign) == 0 {
		t.Errorf("up did not report the foreign FORWARD chain with policy drop")
	}
	if rep := check(t, top); rep.Failed != 0 {
		t.Errorf("check with FORWARD DROP: %d failed: %+v", rep.Failed, rep.Results)
	}
	if out := witness.Run(t, "iptables", "-S", "FORWARD"); !strings.Contains(out, "-P FORWARD DROP") ||
		!strings.Contains(out, `-A FORWARD -i br0 -o br0 -m comment --comment "nsrouter:classic br0" -j ACCEPT`) {
		t.Errorf("iptables -S FORWARD:\n%s", out)
	}
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatalf("down: %v", err)
	}
	witness.Unchanged(t, before, "after down")
}

// TestDownWithoutState removes the state folder and expects down to find
// the lab by its marks alone.
func TestDownWithoutState(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := witness.Snapshot(t)
	top := topology.Builtin()
	up(t, top)
	entries, err := os.ReadDir(lab.DefaultStateDir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("state folder after up: %v, %d entries", err, len(entries))
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(lab.DefaultStateDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatalf("down: %v", err)
	}
	witness.Unchanged(t, before, "after down without state")
}
