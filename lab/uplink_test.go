package lab_test

import (
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
	if after := witness.Snapshot(t); after != before {
		t.Errorf("after down the host differs:\n%s", witness.Diff(before, after))
	}
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
		if after := witness.Snapshot(t); after != before {
			t.Errorf("a refused up changed the host:\n%s", witness.Diff(before, after))
		}
	}
}
