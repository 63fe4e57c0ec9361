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
				fakeInternet(t) // the uplink masquerades towards the default route
			}
			script := mustRun(t, "script", f)
			path := filepath.Join(t.TempDir(), "build.sh")
			if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("sh", path).CombinedOutput(); err != nil {
				t.Fatalf("the script failed: %v\n%s", err, out)
			}
			settle()
			byScript := witness.Semantic(t)
			mustRun(t, "down", f)
			if out := witness.Run(t, "sh", "-c", "ip netns list | grep -v '^inet-sim'; true"); strings.TrimSpace(out) != "" {
				t.Fatalf("down left namespaces of the script's lab: %s", out)
			}
			mustRun(t, "up", f)
			settle()
			if byUp := witness.Semantic(t); byUp != byScript {
				t.Errorf("the script and up build different networks:\n%s", witness.Diff(byScript, byUp))
			}
		})
	}
}

// settle waits for the kernel's link watch, which reports carrier changes
// up to a second late, so both snapshots see settled link states.
func settle() { time.Sleep(1200 * time.Millisecond) }

// fakeInternet gives the sandbox's host a default route to a namespace
// that plays the internet (198.18.0.0/15 is the benchmarking range).
func fakeInternet(t *testing.T) {
	t.Helper()
	for _, cmd := range [][]string{
		{"ip", "netns", "add", "inet-sim"},
		{"ip", "link", "add", "wan-host", "type", "veth", "peer", "name", "eth0", "netns", "inet-sim"},
		{"ip", "addr", "add", "198.18.0.2/24", "dev", "wan-host"},
		{"ip", "link", "set", "wan-host", "up"},
		{"ip", "-n", "inet-sim", "addr", "add", "198.18.0.1/24", "dev", "eth0"},
		{"ip", "-n", "inet-sim", "link", "set", "eth0", "up"},
		{"ip", "route", "add", "default", "via", "198.18.0.1"},
	} {
		witness.Run(t, cmd[0], cmd[1:]...)
	}
}
