package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
)

// TestScriptBuildsTheSameNetwork runs `nsrouter script` for every example
// with sh, takes the kernel's state, removes it with `nsrouter down` (the
// script's objects carry the lab's marks), builds the same file with
// `nsrouter up`, and compares: links, addresses, routes, rules, sysctls,
// nftables rulesets and hosts files of every namespace must be equal.
func TestScriptBuildsTheSameNetwork(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			if !sandbox.Enter(t) {
				return
			}
			if name == "uplink" {
				witness.FakeInternet(t) // the uplink masquerades towards the default route
			}
			script := mustRun(t, "script", f)
			path := filepath.Join(t.TempDir(), "build.sh")
			if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("sh", path).CombinedOutput(); err != nil {
				t.Fatalf("the script failed: %v\n%s", err, out)
			}
			byScript := stable(t)
			mustRun(t, "down", f)
			if out := witness.Run(t, "sh", "-c", "ip netns list | grep -v '^inet-sim'; true"); strings.TrimSpace(out) != "" {
				t.Fatalf("down left namespaces of the script's lab: %s", out)
			}
			mustRun(t, "up", f)
			if byUp := stable(t); byUp != byScript {
				t.Errorf("the script and up build different networks:\n%s", witness.Diff(byScript, byUp))
			}
		})
	}
}

// stable takes snapshots until two in a row agree (five at most): the
// kernel finishes some work (carrier changes, IPv6 address routes) on its
// own queues, which on a loaded machine can take seconds.
func stable(t *testing.T) string {
	t.Helper()
	settle()
	prev := witness.Semantic(t)
	for range 4 {
		settle()
		cur := witness.Semantic(t)
		if cur == prev {
			return cur
		}
		prev = cur
	}
	return prev
}

// settle waits for the kernel's link watch, which reports carrier changes
// up to a second late, so both snapshots see settled link states.
func settle() { time.Sleep(1200 * time.Millisecond) }

// TestScriptOnDropHost: on a host whose iptables-legacy and iptables-nft
// FORWARD policies are DROP, the script of the uplink example inserts the
// same legacy rules as up, the lab reaches the internet namespace, and
// down removes the script's rules from both.
func TestScriptOnDropHost(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	witness.FakeInternet(t)
	witness.Run(t, "iptables-legacy", "-P", "FORWARD", "DROP")
	witness.Run(t, "iptables-nft", "-P", "FORWARD", "DROP")
	legacy := func() string { return witness.Run(t, "iptables-legacy", "-S", "FORWARD") }
	nft := func() string { return witness.Run(t, "iptables-nft", "-S", "FORWARD") }
	legacyBefore, nftBefore := legacy(), nft()
	f := "../../examples/uplink.yaml"
	path := filepath.Join(t.TempDir(), "build.sh")
	if err := os.WriteFile(path, []byte(mustRun(t, "script", f)), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", path).CombinedOutput(); err != nil {
		t.Fatalf("the script failed: %v\n%s", err, out)
	}
	witness.InNS(t, "pc", "ping", "-c", "1", "-W", "2", "198.18.0.1")
	byScript := legacy()
	if !strings.Contains(nft(), `--comment "nsrouter:uplink uplink-in"`) {
		t.Errorf("the script left iptables-nft's FORWARD without the uplink's rule:\n%s", nft())
	}
	mustRun(t, "down", f)
	if legacy() != legacyBefore || nft() != nftBefore {
		t.Errorf("down after the script left rules:\n%s\n%s", legacy(), nft())
	}
	mustRun(t, "up", f)
	if byUp := legacy(); byUp != byScript {
		t.Errorf("legacy FORWARD by the script:\n%s\nby up:\n%s", byScript, byUp)
	}
}
