package lab_test

import (
	"strings"
	"testing"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

// A lab that uses the rest of the language: computed routes over two
// routers, a loopback address, per-link MTU, a fixed MAC, a link left
// down, a node sysctl, and a pool.
const languageLab = `name: language
pools:
  p2p: {ipv4: 10.90.0.0/24}
nodes:
  r1:
    forwarding: {ipv4: true}
    auto-routes: true
    sysctls: {net.ipv4.conf.all.accept_local: 1}
    interfaces:
      to-a: {addresses: [10.91.0.1/24]}
  r2:
    forwarding: {ipv4: true}
    auto-routes: true
    loopback: [10.255.0.2/32]
    interfaces:
      to-b: {addresses: [10.92.0.1/24]}
      spare: {addresses: [10.93.0.1/24], state: down}
  a:
    auto-routes: true
    interfaces:
      eth0: {addresses: [10.91.0.10/24], mac: "02:00:00:00:00:0a"}
  b:
    auto-routes: true
    interfaces:
      eth0: {addresses: [10.92.0.10/24]}
  c:
    interfaces:
      eth0: {addresses: [10.93.0.10/24]}
links:
  - {endpoints: [r1:to-r2, r2:to-r1], pool: p2p, mtu: 1400}
  - endpoints: [r1:to-a, a:eth0]
  - endpoints: [r2:to-b, b:eth0]
  - endpoints: [r2:spare, c:eth0]
expect:
  - {from: a, to: b, ttl: 62}
  - {from: b, to: a, ttl: 62}
  - {from: a, to: r2:lo}
  - {from: a, to: c, reach: false}
`

func TestLanguageFeatures(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top, err := topology.Parse("language.yaml", []byte(languageLab))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Up(ctx(t), top, []byte(languageLab), lab.Options{}); err != nil {
		t.Fatalf("up: %v", err)
	}
	requirePass(t, check(t, top))
	for _, w := range []struct{ ns, dev, want string }{
		{"r1", "to-r2", "mtu 1400"}, {"r2", "to-r1", "mtu 1400"},
		{"a", "eth0", "link/ether 02:00:00:00:00:0a"},
		{"r2", "spare", "state DOWN"},
	} {
		if out := witness.Run(t, "ip", "-n", w.ns, "link", "show", w.dev); !strings.Contains(out, w.want) {
			t.Errorf("%s %s: want %q in\n%s", w.ns, w.dev, w.want, out)
		}
	}
	if out := witness.Run(t, "ip", "-n", "r1", "-br", "addr", "show", "to-r2"); !strings.Contains(out, "10.90.0.0/31") {
		t.Errorf("r1 to-r2 did not get the pool's first /31:\n%s", out)
	}
	if out := witness.Run(t, "ip", "-n", "a", "route"); !strings.Contains(out, "10.92.0.0/24 via 10.91.0.1") ||
		!strings.Contains(out, "10.255.0.2 via 10.91.0.1") {
		t.Errorf("a's computed routes:\n%s", out)
	}
	if got := strings.TrimSpace(witness.InNS(t, "r1", "cat", "/proc/sys/net/ipv4/conf/all/accept_local")); got != "1" {
		t.Errorf("r1 accept_local = %s, want 1", got)
	}
	if out := witness.InNS(t, "a", "ping", "-c", "1", "-W", "2", "b"); !strings.Contains(out, "(10.92.0.10)") {
		t.Errorf("a could not ping b by name:\n%s", out)
	}
	if out := witness.Run(t, "cat", "/etc/netns/a/hosts"); !strings.Contains(out, "10.92.0.10\tb b-eth0") {
		t.Errorf("/etc/netns/a/hosts:\n%s", out)
	}
}

// TestListAndDownAll builds two labs, loses the state of one, and expects
// list to show both and down --all to remove both.
func TestListAndDownAll(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := witness.Snapshot(t)
	up(t, topology.Builtin())
	upExample(t, "p2p-star")
	labs, err := lab.List(ctx(t), lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range labs {
		names = append(names, l.Name)
	}
	if strings.Join(names, " ") != "classic p2p-star" {
		t.Errorf("list = %v, want classic and p2p-star", names)
	}
	witness.Run(t, "sh", "-c", "rm -rf /run/nsrouter/*")
	if _, err := lab.DownAll(ctx(t), lab.Options{}); err != nil {
		t.Fatalf("down --all: %v", err)
	}
	witness.Unchanged(t, before, "after down --all")
}
