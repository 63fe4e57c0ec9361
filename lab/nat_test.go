package lab_test

import (
	"context"
	"fmt"
	"net"
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

func upExample(t *testing.T, name string) *topology.Topology {
	t.Helper()
	top, src := loadExample(t, name)
	if _, err := lab.Up(ctx(t), top, src, lab.Options{}); err != nil {
		t.Fatalf("up %s: %v", name, err)
	}
	return top
}

func requirePass(t *testing.T, rep *lab.Report) {
	t.Helper()
	for _, r := range rep.Results {
		if !r.Pass {
			t.Errorf("%s -> %s (%s): %s", r.From, r.To, r.Proto, r.Detail)
		}
	}
}

// TestMasqueradeWitnessed: the internet namespace sees the router's
// address, LAN-to-LAN traffic keeps its source, and nft and conntrack
// show the translation.
func TestMasqueradeWitnessed(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := upExample(t, "lan-masquerade")
	requirePass(t, check(t, top))
	rules := witness.InNS(t, "gw", "nft", "list", "table", "inet", "nsrouter-lan-masquerade")
	if !strings.Contains(rules, `oifname "wan0" ip saddr 192.168.50.0/24 counter packets`) || !strings.Contains(rules, "masquerade") {
		t.Errorf("gw ruleset lacks the masquerade rule:\n%s", rules)
	}
	witness.InNS(t, "laptop", "ping", "-c", "1", "-W", "2", "203.0.113.1")
	ct := witness.InNS(t, "gw", "conntrack", "-L", "-p", "icmp")
	if !strings.Contains(ct, "src=192.168.50.10 dst=203.0.113.1") || !strings.Contains(ct, "dst=203.0.113.2") {
		t.Errorf("conntrack in gw does not show the translation:\n%s", ct)
	}
}

// TestPortForwardWitnessed checks the forwarded port from the internet,
// the router, the host and the server's own LAN (hairpin), and the DNAT
// rules as nft prints them.
func TestPortForwardWitnessed(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := upExample(t, "port-forward")
	rep := check(t, top)
	requirePass(t, rep)
	from := map[string]bool{}
	for _, r := range rep.Results {
		if r.Pass && r.Expect == "reach" {
			from[r.From] = true
		}
	}
	for _, f := range []string{"internet", "gw", "host", "pc"} {
		if !from[f] {
			t.Errorf("no passing port-forward expectation from %s", f)
		}
	}
	rules := witness.InNS(t, "gw", "nft", "list", "table", "inet", "nsrouter-port-forward")
	for _, want := range []string{
		"type nat hook prerouting priority dstnat",
		"meta nfproto ipv4 fib daddr type local tcp dport 8080 counter packets",
		"dnat ip to 192.168.10.10:80",
		"ct status dnat counter",
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("gw ruleset lacks %q:\n%s", want, rules)
		}
	}
}

// TestForwardDropWithAllow: the allowed flows pass, the others are
// dropped or rejected, and the accept rule's counter moved.
func TestForwardDropWithAllow(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := upExample(t, "firewall")
	requirePass(t, check(t, top))
	var rs struct {
		Nftables []struct {
			Rule *struct {
				Chain string `json:"chain"`
				Expr  []map[string]any
			} `json:"rule"`
		} `json:"nftables"`
	}
	witness.JSON(t, &rs, "ip", "netns", "exec", "fw", "nft", "-j", "list", "chain", "inet", "nsrouter-firewall", "forward")
	counted := 0
	for _, item := range rs.Nftables {
		if item.Rule == nil {
			continue
		}
		for _, e := range item.Rule.Expr {
			if c, ok := e["counter"].(map[string]any); ok && c["packets"].(float64) > 0 {
				counted++
			}
		}
	}
	if counted < 3 {
		t.Errorf("only %d forward rules counted packets, want the established, tcp 80 and icmp rules", counted)
	}
	out, ok := witness.Try("ip", "netns", "exec", "srv", "ping", "-c", "1", "-W", "1", "10.60.1.10")
	if ok {
		t.Errorf("srv reached desk through a forward policy of drop:\n%s", out)
	}
}

// udpFlow sends datagrams from a fixed source port, so every one belongs
// to the same conntrack entry, and returns the source the listener saw.
type udpFlow struct {
	conn net.Conn
}

func newUDPFlow(t *testing.T, node string, dst netip.AddrPort) *udpFlow {
	t.Helper()
	ns, err := kernel.OpenNamed(node)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var c net.Conn
	err = ns.Do(func() error {
		var err error
		d := net.Dialer{LocalAddr: &net.UDPAddr{Port: 40000}}
		c, err = d.Dial("udp", dst.String())
		return err
	})
	if err != nil {
		t.Fatalf("udp flow from %s: %v", node, err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpFlow{conn: c}
}

func (f *udpFlow) exchange(t *testing.T) string {
	t.Helper()
	f.conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := f.conn.Write([]byte("flow\n")); err != nil {
		return "error: " + err.Error()
	}
	buf := make([]byte, 200)
	n, err := f.conn.Read(buf)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(strings.TrimPrefix(string(buf[:n]), "nsrouter-seen "))
}

const snatLab = `name: snat-change
nodes:
  gw:
    forwarding: {ipv4: true}
    interfaces:
      lan0: {addresses: [10.70.0.1/24]}
      wan0: {addresses: [203.0.113.2/29, 203.0.113.3/29]}
    nat:
      snat:
        - {out: wan0, src: [10.70.0.0/24], to: %s}
  inet:
    interfaces:
      eth0: {addresses: [203.0.113.1/29]}
  pc:
    interfaces:
      eth0: {addresses: [10.70.0.10/24]}
    routes:
      - {to: default, via: 10.70.0.1}
links:
  - endpoints: [gw:lan0, pc:eth0]
  - endpoints: [gw:wan0, inet:eth0]
`

// TestLiveRuleChange keeps one UDP flow going while the SNAT address
// changes: the flow's next datagram must carry the new address, which
// only happens if the old conntrack entry is gone.
func TestLiveRuleChange(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	build := func(to string) {
		src := fmt.Sprintf(snatLab, to)
		top, err := topology.Parse("snat-change.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lab.Up(context.Background(), top, []byte(src), lab.Options{}); err != nil {
			t.Fatalf("up with snat to %s: %v", to, err)
		}
	}
	build("203.0.113.2")
	inet, err := kernel.OpenNamed("inet")
	if err != nil {
		t.Fatal(err)
	}
	defer inet.Close()
	l, err := probe.Listen(inet, "udp", 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	flow := newUDPFlow(t, "pc", netip.MustParseAddrPort("203.0.113.1:5000"))
	if got := flow.exchange(t); got != "203.0.113.2:40000" {
		t.Fatalf("before the change the listener saw %s, want 203.0.113.2:40000", got)
	}
	build("203.0.113.3")
	if got := flow.exchange(t); got != "203.0.113.3:40000" {
		t.Errorf("after the change the same flow was seen from %s, want 203.0.113.3:40000", got)
	}
}
