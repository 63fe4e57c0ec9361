package lab_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

// fastLab is a router between three dual-stack hosts. The lab's links
// have the fast profile except c's, which asks for the default.
const fastLab = `name: fast
profile: fast
nodes:
  r:
    forwarding: {ipv4: true, ipv6: true}
    interfaces:
      to-a: {addresses: [10.61.1.1/24, "fd61:1::1/64"]}
      to-b: {addresses: [10.61.2.1/24, "fd61:2::1/64"]}
      to-c: {addresses: [10.61.3.1/24, "fd61:3::1/64"]}
  a:
    interfaces:
      eth0: {addresses: [10.61.1.2/24, "fd61:1::2/64"]}
    routes: [{to: default, via: 10.61.1.1}, {to: "::/0", via: "fd61:1::1"}]
  b:
    interfaces:
      eth0: {addresses: [10.61.2.2/24, "fd61:2::2/64"]}
    routes: [{to: default, via: 10.61.2.1}, {to: "::/0", via: "fd61:2::1"}]
  c:
    interfaces:
      eth0: {addresses: [10.61.3.2/24, "fd61:3::2/64"]}
    routes: [{to: default, via: 10.61.3.1}, {to: "::/0", via: "fd61:3::1"}]
links:
  - endpoints: [a:eth0, r:to-a]
  - endpoints: [b:eth0, r:to-b]
  - endpoints: [c:eth0, r:to-c]
    profile: default
`

type ipLinkSizes struct {
	Name string `json:"ifname"`
	GSO  int    `json:"gso_max_size"`
	GRO  int    `json:"gro_max_size"`
	// ip -s adds the counters.
	Stats struct {
		RX, TX counts
	} `json:"stats64"`
}

type counts struct {
	Bytes   int64 `json:"bytes"`
	Packets int64 `json:"packets"`
}

func linkSizes(t *testing.T, node, iface string) ipLinkSizes {
	t.Helper()
	var l []ipLinkSizes
	witness.JSON(t, &l, "ip", "-n", node, "-d", "-s", "-j", "link", "show", "dev", iface)
	if len(l) != 1 {
		t.Fatalf("ip link show dev %s in %s: %d links", iface, node, len(l))
	}
	return l[0]
}

// ipv4Sizes reads an interface's IPv4 GSO and GRO limits over netlink.
func ipv4Sizes(t *testing.T, node, iface string) (gso, gro int) {
	t.Helper()
	ns, err := kernel.OpenNamed(node)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	l, err := ns.Netlink().LinkByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	return int(l.Attrs().GSOIPv4MaxSize), int(l.Attrs().GROIPv4MaxSize)
}

// sink accepts one TCP connection in node on port and reads it to the end.
func sink(t *testing.T, node string, port int) <-chan int64 {
	t.Helper()
	l := listenIn(t, node, port)
	got := make(chan int64, 1)
	go func() {
		defer l.Close() // the next transfer listens on the same port
		l.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
		c, err := l.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	return got
}

// transfer is a TCP transfer from node from to addr (a sink in node to),
// watched at one interface of a node on the way: what it receives, or,
// with out, what it sends.
type transfer struct {
	from, to, addr string
	at, via        string
	out            bool
}

// averagePacket sends size bytes as x says and returns the average size
// of the packets the watched interface saw meanwhile: the data packets,
// as the stack passed them along.
func averagePacket(t *testing.T, x transfer, size int64) int64 {
	t.Helper()
	from, to, addr := x.from, x.to, x.addr
	done := sink(t, to, 5601)
	stats := func() counts {
		st := linkSizes(t, x.at, x.via).Stats
		if x.out {
			return st.TX
		}
		return st.RX
	}
	before := stats()
	c := dialFrom(t, from, net.JoinHostPort(addr, "5601"))
	c.SetDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 1<<20)
	for sent := int64(0); sent < size; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("%s -> %s: %v", from, addr, err)
		}
	}
	c.Close()
	select {
	case n := <-done:
		if n != size {
			t.Fatalf("%s -> %s: %d of %d bytes arrived", from, addr, n, size)
		}
	case <-time.After(25 * time.Second):
		t.Fatalf("%s -> %s: the transfer did not end", from, addr)
	}
	after := stats()
	return (after.Bytes - before.Bytes) / max(1, after.Packets-before.Packets)
}

// TestFastProfile: with profile fast the lab's veth ends take IPv4 packets
// of up to 185,000 bytes, TCP over IPv4 crosses the router in packets
// bigger than the kernel's 64 KiB default, IPv6 keeps its default and
// still crosses, a link with profile default keeps the default, dropping
// the profile from the file puts the defaults back, and down leaves
// nothing.
func TestFastProfile(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := witness.Snapshot(t)
	top, err := topology.Parse("fast.yaml", []byte(fastLab))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Up(ctx(t), top, []byte(fastLab), lab.Options{}); err != nil {
		t.Fatal(err)
	}
	// ip (iproute2 6.1) shows the IPv6 sizes only, which stay at the
	// default; the IPv4 ones are read over netlink, then witnessed by the
	// traffic itself.
	for _, e := range []struct {
		node, iface string
		want        int
	}{{"a", "eth0", topology.FastPacketSize}, {"r", "to-a", topology.FastPacketSize},
		{"r", "to-b", topology.FastPacketSize}, {"b", "eth0", topology.FastPacketSize},
		{"r", "to-c", 65536}, {"c", "eth0", 65536}} {
		if l := linkSizes(t, e.node, e.iface); l.GSO != 65536 || l.GRO != 65536 {
			t.Errorf("%s:%s: gso_max_size %d, gro_max_size %d; IPv6 sizes stay at 65536", e.node, e.iface, l.GSO, l.GRO)
		}
		if gso, gro := ipv4Sizes(t, e.node, e.iface); gso != e.want || gro != e.want {
			t.Errorf("%s:%s: gso_ipv4_max_size %d, gro_ipv4_max_size %d; want %d", e.node, e.iface, gso, gro, e.want)
		}
	}
	st, err := lab.GetStatus(ctx(t), top, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		for _, i := range n.Interfaces {
			if want := map[bool]string{true: "fast"}[n.Name != "c" && i.Name != "to-c" && i.Kind == "veth"]; i.Profile != want {
				t.Errorf("status: %s:%s has profile %q, want %q", n.Name, i.Name, i.Profile, want)
			}
		}
	}
	const size = 48 << 20
	if avg := averagePacket(t, transfer{"a", "b", "10.61.2.2", "r", "to-a", false}, size); avg <= 65536 {
		t.Errorf("fast: a -> b over IPv4: packets through the router average %d bytes; want more than 64 KiB", avg)
	} else {
		t.Logf("fast: a -> b over IPv4: %d bytes per packet through the router", avg)
	}
	if avg := averagePacket(t, transfer{"a", "b", "fd61:2::2", "r", "to-a", false}, size); avg > 65536 {
		t.Errorf("fast: a -> b over IPv6: packets average %d bytes, more than 64 KiB", avg)
	}
	if avg := averagePacket(t, transfer{"c", "b", "10.61.2.2", "r", "to-c", false}, size); avg > 65536 {
		t.Errorf("default: c -> b: packets average %d bytes, more than the kernel's 64 KiB", avg)
	}
	// What the warning about mixed profiles says: from a fast link out of
	// a default one, the router cuts the packets to the MTU. (The first
	// packets of a connection are small enough to pass whole, so the
	// average is a few KB, not 1,500 bytes; with no profile it is about
	// 49 KB.)
	if avg := averagePacket(t, transfer{"a", "c", "10.61.3.2", "r", "to-c", true}, size); avg > 16384 {
		t.Errorf("fast into default: a -> c: packets out of r:to-c average %d bytes; want them cut to the MTU", avg)
	}
	if len(top.Warnings) != 1 || !strings.Contains(top.Warnings[0].Msg, "router r routes packets from r:to-a (profile fast) to r:to-c") {
		t.Errorf("warnings: %v; want one about r's mixed profiles", top.Warnings)
	}

	plain := strings.Replace(fastLab, "profile: fast\n", "", 1)
	top2, err := topology.Parse("fast.yaml", []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	res, err := lab.Up(ctx(t), top2, []byte(plain), lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Changes); n != 4 {
		t.Errorf("dropping the profile: %d changes, want the 4 fast ends: %v", n, res.Changes)
	}
	for _, e := range [][2]string{{"a", "eth0"}, {"r", "to-a"}} {
		if gso, gro := ipv4Sizes(t, e[0], e[1]); gso != 65536 || gro != 65536 {
			t.Errorf("after dropping the profile, %s:%s: gso_ipv4_max_size %d, gro_ipv4_max_size %d; want 65536", e[0], e[1], gso, gro)
		}
	}
	if avg := averagePacket(t, transfer{"a", "b", "10.61.2.2", "r", "to-a", false}, size); avg > 65536 {
		t.Errorf("after dropping the profile: a -> b: packets average %d bytes", avg)
	}
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	witness.Unchanged(t, before, "down left something behind")
}

// fastLAN is a router between a far node and a LAN bridge, all fast.
const fastLAN = `name: fastlan
profile: fast
nodes:
  gw:
    forwarding: {ipv4: true}
    bridges:
      lan0: {addresses: [10.62.1.1/24]}
    interfaces:
      wan: {addresses: [10.62.0.1/30]}
  far:
    interfaces:
      eth0: {addresses: [10.62.0.2/30]}
    routes: [{to: 10.62.1.0/24, via: 10.62.0.1}]
  h1:
    interfaces:
      eth0: {addresses: [10.62.1.10/24]}
    routes: [{to: default, via: 10.62.1.1}]
  h2:
    interfaces:
      eth0: {addresses: [10.62.1.11/24]}
    routes: [{to: default, via: 10.62.1.1}]
links:
  - endpoints: [far:eth0, gw:wan]
  - endpoints: [h1:eth0, gw:lan0]
  - endpoints: [h2:eth0, gw:lan0]
`

// TestFastProfileBridge: a bridge whose ports are all fast takes the fast
// sizes too, so what the router routes into the LAN reaches the host in
// big packets instead of being cut to the MTU at the bridge; with one
// port on profile default the bridge keeps the default, and the file
// gets a warning.
func TestFastProfileBridge(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top, err := topology.Parse("fastlan.yaml", []byte(fastLAN))
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Warnings) != 0 {
		t.Errorf("warnings for an all-fast lab: %v", top.Warnings)
	}
	if _, err := lab.Up(ctx(t), top, []byte(fastLAN), lab.Options{}); err != nil {
		t.Fatal(err)
	}
	if gso, gro := ipv4Sizes(t, "gw", "lan0"); gso != topology.FastPacketSize || gro != topology.FastPacketSize {
		t.Errorf("gw:lan0: gso_ipv4_max_size %d, gro_ipv4_max_size %d; want %d", gso, gro, topology.FastPacketSize)
	}
	const size = 48 << 20
	if avg := averagePacket(t, transfer{"far", "h1", "10.62.1.10", "gw", "h1-eth0", true}, size); avg <= 65536 {
		t.Errorf("far -> h1: packets into the LAN average %d bytes; want more than 64 KiB", avg)
	}

	mixed := fastLAN + "    profile: default\n"
	top2, err := topology.Parse("fastlan.yaml", []byte(mixed))
	if err != nil {
		t.Fatal(err)
	}
	if w := fmt.Sprint(top2.Warnings); len(top2.Warnings) != 2 || !strings.Contains(w, "bridge gw:lan0 joins links of profile fast") ||
		!strings.Contains(w, "router gw routes packets from gw:wan (profile fast) to gw:lan0") {
		t.Errorf("warnings with h2 on profile default: %v; want the bridge's and the router's", top2.Warnings)
	}
	if _, err := lab.Up(ctx(t), top2, []byte(mixed), lab.Options{}); err != nil {
		t.Fatal(err)
	}
	if gso, _ := ipv4Sizes(t, "gw", "lan0"); gso != 65536 {
		t.Errorf("gw:lan0 with a default port: gso_ipv4_max_size %d, want 65536", gso)
	}
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatal(err)
	}
}
