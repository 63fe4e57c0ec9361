// Package witness asks independent programs (ip, nft, ping, /proc) what
// the kernel holds, so that tests do not trust nsrouter's own view.
package witness

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Run runs a command and returns its standard output; the test fails if
// the command does.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, msg)
	}
	return string(out)
}

// InNS runs a command inside a named namespace with `ip netns exec`.
func InNS(t testing.TB, ns string, name string, args ...string) string {
	t.Helper()
	return Run(t, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Try runs a command and reports whether it succeeded, with its output.
func Try(name string, args ...string) (string, bool) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err == nil
}

// JSON runs a command printing JSON and decodes it into v.
func JSON(t testing.TB, v any, name string, args ...string) {
	t.Helper()
	out := Run(t, name, args...)
	if strings.TrimSpace(out) == "" {
		out = "[]"
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s %s: decoding JSON: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// Sysctls the snapshot records; nsrouter may write any of them.
var Sysctls = []string{
	"net/ipv4/ip_forward",
	"net/ipv6/conf/all/forwarding",
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
}

// Snapshot renders the current namespace as ip, nft and /proc see it:
// links, addresses, routes of every table, rules, the nftables ruleset,
// sysctls, and the named namespaces.
func Snapshot(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	section := func(title, body string) { fmt.Fprintf(&b, "== %s\n%s\n", title, body) }
	section("links", Run(t, "ip", "-j", "link", "show"))
	section("addresses", Run(t, "ip", "-j", "addr", "show"))
	section("routes4", Run(t, "ip", "-j", "-4", "route", "show", "table", "all"))
	section("routes6", Run(t, "ip", "-j", "-6", "route", "show", "table", "all"))
	section("rules4", Run(t, "ip", "-j", "-4", "rule", "show"))
	section("rules6", Run(t, "ip", "-j", "-6", "rule", "show"))
	section("nftables", Run(t, "nft", "-j", "list", "ruleset"))
	section("netns", Run(t, "ip", "netns", "list"))
	section("iptables-legacy", Legacy(t, "iptables-legacy-save"))
	section("ip6tables-legacy", Legacy(t, "ip6tables-legacy-save"))
	for _, s := range Sysctls {
		v, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			v = []byte("absent")
		}
		section(s, strings.TrimSpace(string(v)))
	}
	return b.String()
}

// Legacy returns what iptables-legacy-save (or ip6tables-legacy-save)
// prints of the legacy tables, without the comment lines and counters that
// change with time and traffic; empty when no legacy table is loaded.
func Legacy(t testing.TB, save string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(Run(t, save), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, ":") { // ":FORWARD DROP [12:840]"
			if i := strings.LastIndex(line, " ["); i > 0 {
				line = line[:i]
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// Diff returns the lines of a and b that differ, for test messages.
func Diff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d:\n  before: %s\n  after:  %s", i+1, x, y))
		}
	}
	return strings.Join(out, "\n")
}

// FakeInternet gives the current namespace (a sandbox's host) a default
// route to a namespace inet-sim that plays the internet, at 198.18.0.1
// (the benchmarking range): uplinks then have somewhere to go, and nothing
// can leave the machine.
func FakeInternet(t testing.TB) {
	t.Helper()
	for _, cmd := range [][]string{
		{"ip", "netns", "add", "inet-sim"},
		{"ip", "link", "add", "wan-host", "type", "veth", "peer", "name", "eth0", "netns", "inet-sim"},
		{"ip", "addr", "add", "198.18.0.2/24", "dev", "wan-host"},
		{"ip", "link", "set", "wan-host", "up"},
		{"ip", "-n", "inet-sim", "addr", "add", "198.18.0.1/24", "dev", "eth0"},
		{"ip", "-n", "inet-sim", "link", "set", "eth0", "up"},
		{"ip", "-n", "inet-sim", "link", "set", "lo", "up"},
		{"ip", "route", "add", "default", "via", "198.18.0.1"},
	} {
		Run(t, cmd[0], cmd[1:]...)
	}
}

// Unchanged fails the test, naming what, unless a new Snapshot equals
// before: the check that a test's lab left nothing behind.
func Unchanged(t testing.TB, before, what string) {
	t.Helper()
	if after := Snapshot(t); after != before {
		t.Errorf("%s:\n%s", what, Diff(before, after))
	}
}
