package lab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

type ipAddrInfo struct {
	Name  string `json:"ifname"`
	Addrs []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
	GenMode string `json:"inet6_addr_gen_mode"`
}

// link6 returns the IPv6 addresses on a node's interface.
func link6(t *testing.T, node, iface string) []string {
	t.Helper()
	var links []ipAddrInfo
	witness.JSON(t, &links, "ip", "-n", node, "-j", "addr", "show", "dev", iface)
	var out []string
	for _, l := range links {
		for _, a := range l.Addrs {
			if a.Family == "inet6" {
				out = append(out, a.Local)
			}
		}
	}
	return out
}

// replaceInBuiltin returns the built-in file with its first old replaced by
// new, parsed.
func replaceInBuiltin(t *testing.T, old, new string) (*topology.Topology, []byte) {
	t.Helper()
	base := string(topology.BuiltinYAML())
	src := strings.Replace(base, old, new, 1)
	if src == base {
		t.Fatalf("the built-in file has no %q to edit", old)
	}
	top, err := topology.Parse("edited.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return top, []byte(src)
}

// TestNoLinkLocalWithoutIPv6: a node with no IPv6 address brings its links
// up without an fe80:: address (nothing for a bridge to flood), while a
// dual-stack node keeps link-local addresses, and IPv6 between such nodes
// still works.
func TestNoLinkLocalWithoutIPv6(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	for _, node := range []string{"ns0", "ns1"} {
		if got := link6(t, node, "eth0"); len(got) != 0 {
			t.Errorf("%s eth0 has IPv6 addresses %v; the node has no IPv6 address in the file", node, got)
		}
	}
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatal(err)
	}

	ds := upExample(t, "dual-stack")
	requirePass(t, check(t, ds))
	got := link6(t, "left", "eth0")
	ll := false
	for _, a := range got {
		ll = ll || strings.HasPrefix(a, "fe80:")
	}
	if !ll {
		t.Errorf("dual-stack node left has no link-local address on eth0: %v", got)
	}
}

type ipBridge struct {
	Name string `json:"ifname"`
	Info struct {
		Data struct {
			Snooping *int `json:"mcast_snooping"`
		} `json:"info_data"`
	} `json:"linkinfo"`
}

func snooping(t *testing.T, node, br string) int {
	t.Helper()
	var links []ipBridge
	args := []string{"-j", "-d", "link", "show", "dev", br}
	if node != "" {
		args = append([]string{"-n", node}, args...)
	}
	witness.JSON(t, &links, "ip", args...)
	if len(links) != 1 || links[0].Info.Data.Snooping == nil {
		t.Fatalf("ip link show %s in %q: %+v", br, node, links)
	}
	return *links[0].Info.Data.Snooping
}

// TestBridgeSnooping: lab bridges flood multicast like a plain switch
// unless the file asks for IGMP/MLD snooping, and a change of that setting
// on a running lab is a change of the bridge, not a new one.
func TestBridgeSnooping(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	if got := snooping(t, "", "br0"); got != 0 {
		t.Errorf("br0 mcast_snooping = %d, want 0 by default", got)
	}
	edited, src := replaceInBuiltin(t, "br0: {", "br0: {multicast-snooping: true, ")
	res, err := lab.Up(ctx(t), edited, src, lab.Options{})
	if err != nil {
		t.Fatalf("up with snooping: %v", err)
	}
	var changes []string
	for _, c := range res.Changes {
		changes = append(changes, c.String())
	}
	if len(changes) != 1 || changes[0] != "~ host: link br0 (bridge -> bridge multicast-snooping)" {
		t.Errorf("changes = %q, want one change of br0", changes)
	}
	if got := snooping(t, "", "br0"); got != 1 {
		t.Errorf("br0 mcast_snooping = %d after asking for it", got)
	}
	if rep := check(t, edited); rep.Failed != 0 {
		t.Errorf("check: %+v", rep.Results)
	}
}

// TestLinkLocalEdits: a node that gains an IPv6 address on a running lab
// gets link-local addresses on its links, as a fresh build gives it, and a
// link-local address named in the file is a fact like any other: seen when
// there, added when missing, removed when the file drops it.
func TestLinkLocalEdits(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	hasLL := func(node string) bool {
		for _, a := range link6(t, node, "eth0") {
			if strings.HasPrefix(a, "fe80:") {
				return true
			}
		}
		return false
	}

	// ns0 becomes dual-stack.
	v6, src := replaceInBuiltin(t, "addresses: [10.11.0.2/24]", `addresses: [10.11.0.2/24, "fd00:11::2/64"]`)
	if _, err := lab.Up(ctx(t), v6, src, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	if !hasLL("ns0") {
		t.Errorf("ns0 gained IPv6 but has no link-local address: %v", link6(t, "ns0", "eth0"))
	}
	if got := witness.InNS(t, "ns0", "cat", "/proc/sys/net/ipv6/conf/eth0/accept_dad"); strings.TrimSpace(got) != "0" {
		t.Errorf("ns0 eth0 accept_dad = %q, want 0 as on a fresh build", got)
	}

	// A link-local address in the file.
	ll, src := replaceInBuiltin(t, "addresses: [10.11.0.2/24]", `addresses: [10.11.0.2/24, "fe80::1/64"]`)
	if _, err := lab.Up(ctx(t), ll, src, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	res, err := lab.Up(ctx(t), ll, src, lab.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 0 {
		t.Errorf("dry run after up of the same file: %v", res.Changes)
	}
	if _, err := lab.Up(ctx(t), top, topology.BuiltinYAML(), lab.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, a := range link6(t, "ns0", "eth0") {
		if a == "fe80::1" {
			t.Errorf("fe80::1 stayed on ns0 eth0 after the file dropped it")
		}
	}
}

// TestDownManyHostEnds: a LAN of many hosts on a bridge in the host goes
// down with its veth ends removed by the kernel along with the namespaces
// (not one by one), and the host ends up as it was.
func TestDownManyHostEnds(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := witness.Snapshot(t)
	src := []byte(`name: hostlan
pools:
  lan: {ipv4: 10.2.0.0/24}
nodes:
  host:
    bridges:
      hbr0: {pool: lan}
groups:
  - {name: h, count: 40, connect: "host:hbr0"}
expect:
  - {from: h1, to: h40}
`)
	top, err := topology.Parse("hostlan.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Up(ctx(t), top, src, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	requirePass(t, check(t, top))
	res, err := lab.Down(ctx(t), top.Name, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Links) != 41 || len(res.Namespaces) != 40 {
		t.Errorf("down removed %d host interfaces and %d namespaces, want 41 and 40", len(res.Links), len(res.Namespaces))
	}
	witness.Unchanged(t, before, "after down")
}

// TestDownAfterKilledHostsWrite: an up killed while writing a hosts file
// leaves an empty /etc/netns/NODE, or one holding the temporary file; down
// removes both, and leaves alone an empty folder of a node not in the lab.
func TestDownAfterKilledHostsWrite(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	for _, d := range []string{"ns0", "ns1", "not-ours"} {
		if err := os.MkdirAll(filepath.Join(kernel.HostsDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(kernel.HostsDir, "ns0", "hosts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(kernel.HostsDir, "ns1", "hosts"), filepath.Join(kernel.HostsDir, "ns1", "hosts.nsrouter")); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(kernel.HostsDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "not-ours" {
		t.Errorf("/etc/netns after down holds %v, want only not-ours", names)
	}
}

// TestHostsFilesShared: every node's /etc/netns/NODE/hosts is one file
// (hard links to the lab's shared copy, so a big lab does not write the
// same list once per node), ip netns exec resolves names through it, and
// down removes the links and the shared copy.
func TestHostsFilesShared(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := witness.Snapshot(t)
	top := topology.Builtin()
	up(t, top)
	inodes := map[string]bool{}
	for _, node := range []string{"ns0", "ns1", "router-ns"} {
		inodes[witness.Run(t, "stat", "-c", "%i %h", "/etc/netns/"+node+"/hosts")] = true
	}
	if len(inodes) != 1 {
		t.Errorf("the nodes' hosts files are %d files (inode, links: %v), want one", len(inodes), inodes)
	}
	if got := witness.Run(t, "ip", "netns", "exec", "ns0", "getent", "hosts", "ns1"); !strings.HasPrefix(got, "10.12.0.2 ") {
		t.Errorf("getent hosts ns1 in ns0: %q", got)
	}
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir("/etc/netns"); len(entries) != 0 {
		t.Errorf("/etc/netns after down: %v", entries)
	}
	witness.Unchanged(t, before, "after down")
}

// TestAddressEdits: up adds an address first and looks only when the
// kernel refuses it. The same file twice changes nothing, IPv6 included
// (the kernel refuses a known IPv6 address whatever its length), and a new
// prefix length of the same IPv6 address replaces the old one.
func TestAddressEdits(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	prefixes := func() []string {
		var links []ipAddrInfo
		witness.JSON(t, &links, "ip", "-n", "ns0", "-j", "addr", "show", "dev", "eth0")
		var out []string
		for _, l := range links {
			for _, a := range l.Addrs {
				if !strings.HasPrefix(a.Local, "fe80:") {
					out = append(out, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
				}
			}
		}
		slices.Sort(out)
		return out
	}
	v6, src := replaceInBuiltin(t, "addresses: [10.11.0.2/24]", `addresses: [10.11.0.2/24, "fd00:11::2/64"]`)
	for range 2 {
		if _, err := lab.Up(ctx(t), v6, src, lab.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := lab.Up(ctx(t), v6, src, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed != 0 {
		t.Errorf("the same dual-stack file again changed %d steps, want 0", res.Changed)
	}
	if got, want := prefixes(), []string{"10.11.0.2/24", "fd00:11::2/64"}; !slices.Equal(got, want) {
		t.Errorf("ns0 eth0 has %v, want %v", got, want)
	}
	v120, src := replaceInBuiltin(t, "addresses: [10.11.0.2/24]", `addresses: [10.11.0.2/24, "fd00:11::2/120"]`)
	if _, err := lab.Up(ctx(t), v120, src, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	if got, want := prefixes(), []string{"10.11.0.2/24", "fd00:11::2/120"}; !slices.Equal(got, want) {
		t.Errorf("after the length edit ns0 eth0 has %v, want %v", got, want)
	}
}
