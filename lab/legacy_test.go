package lab_test

import (
	"strings"
	"testing"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

// dockerLegacy gives the sandbox's host the FORWARD chain Docker leaves in
// iptables-legacy: policy DROP, jumps into chains of its own, a
// connection-state rule; and an IPv6 FORWARD policy of DROP.
func dockerLegacy(t *testing.T) {
	t.Helper()
	for _, args := range [][]string{
		{"-N", "DOCKER"},
		{"-N", "DOCKER-ISOLATION-STAGE-1"},
		{"-N", "DOCKER-USER"},
		{"-A", "FORWARD", "-j", "DOCKER-USER"},
		{"-A", "FORWARD", "-j", "DOCKER-ISOLATION-STAGE-1"},
		{"-A", "FORWARD", "-o", "docker0", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-o", "docker0", "-j", "DOCKER"},
		{"-A", "FORWARD", "-i", "docker0", "!", "-o", "docker0", "-j", "ACCEPT"},
		{"-A", "DOCKER-ISOLATION-STAGE-1", "-i", "docker0", "!", "-o", "docker0", "-j", "RETURN"},
		{"-A", "DOCKER-ISOLATION-STAGE-1", "-j", "RETURN"},
		{"-A", "DOCKER-USER", "-j", "RETURN"},
		{"-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"},
		{"-A", "OUTPUT", "-o", "lo", "-p", "icmp", "-j", "ACCEPT"},
		{"-P", "FORWARD", "DROP"},
	} {
		witness.Run(t, "iptables-legacy", args...)
	}
	witness.Run(t, "ip6tables-legacy", "-P", "FORWARD", "DROP")
}

// withoutLab drops the lines that carry the lab's mark.
func withoutLab(s, lab string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.Contains(line, kernel.Mark(lab)) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func countLines(s, sub string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

// TestUplinkLegacy: the host's firewall is iptables-legacy with Docker's
// FORWARD chain. The lab still reaches the internet namespace, the chain
// gets two rules at its head and keeps every other rule and jump, a second
// up adds nothing, and down leaves the tables as they were.
func TestUplinkLegacy(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	witness.FakeInternet(t)
	dockerLegacy(t)
	witness.Run(t, "ip", "link", "set", "lo", "up")
	witness.Run(t, "ping", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1")
	before := witness.Snapshot(t)
	legacyBefore := witness.Legacy(t, "iptables-legacy-save")
	top, src := loadExample(t, "uplink")
	res, err := lab.Up(ctx(t), top, src, lab.Options{})
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	found := false
	for _, c := range res.Foreign {
		found = found || (c.Legacy && c.Family == "ip" && c.Chain == "FORWARD")
	}
	if !found {
		t.Errorf("up did not report the legacy FORWARD chain: %+v", res.Foreign)
	}
	requirePass(t, check(t, top))
	witness.InNS(t, "pc", "ping", "-c", "1", "-W", "2", "198.18.0.1")

	out := witness.Run(t, "iptables-legacy", "-S", "FORWARD")
	lines := strings.Split(out, "\n")
	if len(lines) < 3 || lines[1] != `-A FORWARD -o nsr-uplink -m comment --comment "nsrouter:uplink uplink-out" -j ACCEPT` &&
		lines[1] != `-A FORWARD -i nsr-uplink -m comment --comment "nsrouter:uplink uplink-in" -j ACCEPT` {
		t.Errorf("iptables-legacy -S FORWARD does not start with the uplink's rules:\n%s", out)
	}
	if got := witness.Legacy(t, "iptables-legacy-save"); withoutLab(got, "uplink") != legacyBefore {
		t.Errorf("the lab changed more than its own rules:\n%s", witness.Diff(legacyBefore, withoutLab(got, "uplink")))
	}
	if _, err := lab.Up(ctx(t), top, src, lab.Options{}); err != nil {
		t.Fatalf("second up: %v", err)
	}
	// Replacing a legacy table resets its counters; they are added back.
	if out := witness.Run(t, "iptables-legacy", "-S", "OUTPUT", "-v"); !strings.Contains(out, "-A OUTPUT -o lo -p icmp -c 6 ") {
		t.Errorf("the ICMP counter on OUTPUT did not survive up (want 6 packets: 3 echo requests, 3 replies):\n%s", out)
	}
	if n := countLines(witness.Run(t, "iptables-legacy", "-S"), kernel.Mark("uplink")); n != 2 {
		t.Errorf("after a second up the legacy table holds %d lab rules, want 2", n)
	}
	if out := witness.Run(t, "ip6tables-legacy", "-S", "FORWARD"); strings.Contains(out, "nsrouter") {
		t.Errorf("the IPv4 uplink wrote to ip6tables-legacy:\n%s", out)
	}
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatalf("down: %v", err)
	}
	witness.Unchanged(t, before, "after down the host differs")
}

// TestDockerForwardDropLegacy: bridged frames meet a legacy FORWARD policy
// of DROP through br_netfilter, in IPv4 and IPv6; the built-in lab passes
// and down restores both tables.
func TestDockerForwardDropLegacy(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	dockerLegacy(t)
	before := witness.Snapshot(t)
	top := topology.Builtin()
	up(t, top)
	if rep := check(t, top); rep.Failed != 0 {
		t.Errorf("check with a legacy FORWARD DROP: %d failed: %+v", rep.Failed, rep.Results)
	}
	for _, cmd := range []string{"iptables-legacy", "ip6tables-legacy"} {
		out := witness.Run(t, cmd, "-S", "FORWARD")
		for _, br := range []string{"br0", "br1"} {
			want := `-A FORWARD -i ` + br + ` -o ` + br + ` -m comment --comment "nsrouter:classic ` + br + `" -j ACCEPT`
			if !strings.Contains(out, want) {
				t.Errorf("%s -S FORWARD lacks %q:\n%s", cmd, want, out)
			}
		}
	}
	st, err := lab.GetStatus(ctx(t), top, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.Name == "host" && strings.Join(n.ForeignRules, ",") != "nsrouter:classic br0,nsrouter:classic br1" {
			t.Errorf("status of host: foreign rules %q", n.ForeignRules)
		}
	}
	// A rule deleted by hand is a difference that --dry-run shows and up
	// puts back.
	witness.Run(t, "iptables-legacy", "-D", "FORWARD", "-i", "br1", "-o", "br1", "-m", "comment", "--comment", "nsrouter:classic br1", "-j", "ACCEPT")
	res, err := lab.Up(ctx(t), top, topology.BuiltinYAML(), lab.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 1 || res.Changes[0].String() != "+ host: foreign-rule rule br1" {
		t.Errorf("dry run after the rule was deleted: %v", res.Changes)
	}
	up(t, top)
	if out := witness.Run(t, "iptables-legacy", "-S", "FORWARD"); countLines(out, "nsrouter:classic br1") != 1 {
		t.Errorf("up did not put the deleted rule back:\n%s", out)
	}
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatalf("down: %v", err)
	}
	witness.Unchanged(t, before, "after down")
}

// TestLeftoverForeignRules: a marked rule left in another program's chain
// (nftables or legacy) with nothing else of its lab is still a lab to
// list and to take down.
func TestLeftoverForeignRules(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	witness.Run(t, "iptables-legacy", "-P", "FORWARD", "DROP")
	witness.Run(t, "iptables", "-P", "FORWARD", "DROP")
	before := witness.Snapshot(t)
	// As nsrouter writes them (an xt comment match in the legacy table, a
	// comment in the rule's user data in nftables) and as its script does
	// (an xt comment match through iptables-nft).
	witness.Run(t, "iptables-legacy", "-I", "FORWARD", "-i", "br9", "-o", "br9", "-m", "comment", "--comment", "nsrouter:ghost br9", "-j", "ACCEPT")
	witness.Run(t, "nft", "insert", "rule", "ip", "filter", "FORWARD", "iifname", "br9", "oifname", "br9", "counter", "accept", "comment", `"nsrouter:ghost br9"`)
	witness.Run(t, "iptables-nft", "-I", "FORWARD", "-o", "br9", "-m", "comment", "--comment", "nsrouter:ghost uplink-out", "-j", "ACCEPT")
	labs, err := lab.List(ctx(t), lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(labs) != 1 || labs[0].Name != "ghost" || len(labs[0].HostRules) != 2 {
		t.Fatalf("list: %+v, want lab ghost with two host rules", labs)
	}
	if _, err := lab.DownAll(ctx(t), lab.Options{}); err != nil {
		t.Fatal(err)
	}
	witness.Unchanged(t, before, "down --all left")
}
