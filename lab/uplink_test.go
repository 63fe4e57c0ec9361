package lab_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/probe"
	"github.com/nsrouter/nsrouter/topology"
)

// TestUplink: with the host's forward policy set to drop (Docker's), the
// lab reaches the internet namespace through the host, masqueraded twice;
// after down the host's ruleset and sysctls equal their snapshot. The host
// does not send bridged frames to iptables (bridge-nf-call-iptables=0):
// routed traffic meets the forward hook all the same.
func TestUplink(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	witness.FakeInternet(t)
	witness.Run(t, "iptables", "-P", "FORWARD", "DROP")
	witness.Run(t, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")
	before := witness.Snapshot(t)
	top := upExample(t, "uplink")
	requirePass(t, check(t, top))
	if got := witness.Run(t, "cat", "/proc/sys/net/ipv4/ip_forward"); got != "1\n" {
		t.Errorf("host ip_forward = %q during the lab, want 1", got)
	}
	witness.InNS(t, "pc", "ping", "-c", "1", "-W", "2", "198.18.0.1")
	if out := witness.Run(t, "iptables", "-S", "FORWARD"); !strings.Contains(out, `-A FORWARD -i nsr-uplink -m comment --comment "nsrouter:uplink uplink-in" -j ACCEPT`) {
		t.Errorf("iptables cannot read the FORWARD chain with the uplink's rules:\n%s", out)
	}
	if out := witness.Run(t, "nft", "list", "table", "ip", "nsrouter-uplink"); !strings.Contains(out, `oifname "wan-host" ip saddr 10.254.7.0/30`) {
		t.Errorf("the host's uplink table:\n%s", out)
	}

	inet, err := kernel.OpenNamed("inet-sim")
	if err != nil {
		t.Fatal(err)
	}
	defer inet.Close()
	l, err := probe.Listen(inet, "tcp", 8443)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pc, err := kernel.OpenNamed("pc")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	res, err := probe.Connect(ctx(t), pc, "tcp", netip.MustParseAddrPort("198.18.0.1:8443"), 2*time.Second)
	if err != nil || !res.Connected || res.Seen.String() != "198.18.0.2" {
		t.Errorf("pc -> internet: %+v, %v; want a connection seen from the host's address 198.18.0.2", res, err)
	}

	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatalf("down: %v", err)
	}
	witness.Unchanged(t, before, "after down the host differs")
}

// TestUplinkPreflight: an uplink towards an interface the host lacks, or
// without out on a host with no default route, is refused before anything
// is built.
func TestUplinkPreflight(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := witness.Snapshot(t)
	_, src := loadExample(t, "uplink")
	for _, c := range []struct{ edit, want string }{
		{"  subnet: 10.254.7.0/30\n", `uplink: out: the host has no interface "nosuch0"`},
		{"", "uplink: the host has no IPv4 default route"},
	} {
		s := string(src)
		if c.edit != "" {
			s = strings.Replace(s, c.edit, c.edit+"  out: nosuch0\n", 1)
		}
		top, err := topology.Parse("uplink.yaml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		_, err = lab.Up(ctx(t), top, []byte(s), lab.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("up: %v, want an error saying %q", err, c.want)
		}
		witness.Unchanged(t, before, "a refused up changed the host")
	}
}

// internetForwardingOff gives the sandbox an internet namespace and turns
// its forwarding off, and returns its snapshot.
func internetForwardingOff(t *testing.T) string {
	t.Helper()
	witness.FakeInternet(t)
	witness.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	return witness.Snapshot(t)
}

// upSource builds top from src, failing the test on error.
func upSource(t *testing.T, top *topology.Topology, src []byte) {
	t.Helper()
	if _, err := lab.Up(ctx(t), top, src, lab.Options{}); err != nil {
		t.Fatalf("up %s: %v", top.Name, err)
	}
}

// TestTwoUplinks: two labs with uplinks share the host's ip_forward. The
// first turns it on; the second finds it on. When the first goes down, the
// second still needs it: it stays 1, the second lab's uplink still works,
// and the second lab's down puts back the 0 the first one found.
func TestTwoUplinks(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := internetForwardingOff(t)
	first, firstSrc := loadExample(t, "uplink")
	upSource(t, first, firstSrc)
	src := strings.NewReplacer("name: uplink", "name: uplink2", "pc", "pc2", "  r:", "  r2:", "node: r", "node: r2",
		"r:lan", "r2:lan", "172.31.7.", "172.31.8.", "10.254.7.0", "10.254.8.0").Replace(string(firstSrc))
	second, err := topology.Parse("uplink2.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	upSource(t, second, []byte(src))
	res, err := lab.Down(ctx(t), first.Name, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Restored) != 0 || len(res.HandedOver) != 1 || res.HandedOver[0].Key != "net.ipv4.ip_forward" || fmt.Sprint(res.HandedOver[0].Labs) != "[uplink2]" {
		t.Errorf("first lab's down: restored %v, handed over %v; want ip_forward handed over to uplink2", res.Restored, res.HandedOver)
	}
	if got := witness.Run(t, "cat", "/proc/sys/net/ipv4/ip_forward"); got != "1\n" {
		t.Errorf("host ip_forward = %q while uplink2 is up, want 1", got)
	}
	requirePass(t, check(t, second))
	if _, err := lab.Down(ctx(t), second.Name, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	witness.Unchanged(t, before, "after both downs the host differs")

	// Both labs may record the original 0: two ups at once, or forwarding
	// turned off by hand in between. The first down must still leave it on.
	upSource(t, first, firstSrc)
	witness.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	upSource(t, second, []byte(src))
	if res, err = lab.Down(ctx(t), first.Name, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	if len(res.Restored) != 0 || len(res.HandedOver) != 1 {
		t.Errorf("both recorded 0: first lab's down restored %v, handed over %v; want it left to uplink2", res.Restored, res.HandedOver)
	}
	requirePass(t, check(t, second))
	if _, err := lab.Down(ctx(t), second.Name, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	witness.Unchanged(t, before, "after the second pair of downs the host differs")
}

// TestUplinkEditedOut: removing the uplink from a running lab's file puts
// the host's forwarding back as the lab found it, at that up.
func TestUplinkEditedOut(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := internetForwardingOff(t)
	top, src := loadExample(t, "uplink")
	upSource(t, top, src)
	cut := string(src)
	cut = cut[:strings.Index(cut, "uplink:\n")] + cut[strings.Index(cut, "expect:"):]
	cut = strings.Replace(cut, "  - {from: pc, to: host}\n", "  - {from: pc, to: r}\n", 1)
	edited, err := topology.Parse("edited.yaml", []byte(cut))
	if err != nil {
		t.Fatal(err)
	}
	upSource(t, edited, []byte(cut))
	if got := witness.Run(t, "cat", "/proc/sys/net/ipv4/ip_forward"); got != "0\n" {
		t.Errorf("host ip_forward = %q after the uplink was edited out, want 0 as before", got)
	}
	requirePass(t, check(t, edited))
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatal(err)
	}
	witness.Unchanged(t, before, "after down the host differs")
}
