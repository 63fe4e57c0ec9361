package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

// runBinary runs the nsrouter binary with extra environment and returns
// its exit status and combined output.
func runBinary(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal()), string(out)
		}
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("nsrouter %v: %v", args, err)
	}
	return 0, string(out)
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out := runBinary(t, nil, args...)
	if code != 0 {
		t.Fatalf("nsrouter %v: exit %d\n%s", args, code, out)
	}
	return out
}

// TestKillAtEveryStep kills `nsrouter up` with SIGKILL right after each
// step of the built-in plan; after each kill, down must leave the sandbox
// exactly as it was, and up + check must then pass.
func TestKillAtEveryStep(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := witness.Snapshot(t)
	steps := len(plan.Build(topology.Builtin()).Steps)
	for k := 0; k < steps; k++ {
		code, out := runBinary(t, []string{fmt.Sprintf("%s=%d", envKillAfterStep, k)}, "up")
		if code != 128+int(syscall.SIGKILL) {
			t.Fatalf("step %d: up exited %d, want killed\n%s", k, code, out)
		}
		mustRun(t, "down")
		if after := witness.Snapshot(t); after != before {
			t.Fatalf("after a kill at step %d, down left:\n%s", k, witness.Diff(before, after))
		}
	}
	// A kill leaves a partial lab; up must build it whole from there.
	runBinary(t, []string{envKillAfterStep + "=12"}, "up")
	mustRun(t, "up")
	if out := mustRun(t, "check"); !strings.Contains(out, "11 passed, 0 failed") {
		t.Errorf("check after up over a killed run:\n%s", out)
	}
	mustRun(t, "down")
}

// TestRandomSIGKILL kills up and down of a 200-host lab at random moments
// (a bounded number of times); down afterwards must restore the sandbox.
func TestRandomSIGKILL(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	file := "../../examples/star.yaml"
	before := witness.Snapshot(t)
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	for round := range 8 {
		args := []string{"up", file}
		if round%2 == 1 {
			mustRun(t, "up", file)
			args = []string{"down", file}
		}
		cmd := exec.Command(binary, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.IntN(600)) * time.Millisecond
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		mustRun(t, "down", file)
		if after := witness.Snapshot(t); after != before {
			t.Fatalf("round %d (%v killed after %v): down left:\n%s", round, args[0], delay, witness.Diff(before, after))
		}
		if entries, _ := os.ReadDir("/etc/netns"); len(entries) != 0 {
			t.Fatalf("round %d: /etc/netns keeps %d entries", round, len(entries))
		}
	}
}

// TestHostileInput feeds broken and hostile files to validate and up:
// each gives exit status 2 with its error and builds nothing.
func TestHostileInput(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	dir := t.TempDir()
	deep := "name: x\nnodes: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n"
	// Every node is the same alias, every route list the same alias: 1,500
	// nodes of 1,500 routes, 2.25 million routes from a file of 30 kB.
	bomb := "name: bomb\nnodes:\n  n0: &n\n    routes:\n      - &r {to: 10.0.0.0/8, via: 10.0.0.1}\n" +
		strings.Repeat("      - *r\n", 1499)
	for i := 1; i < 1500; i++ {
		bomb += fmt.Sprintf("  n%d: *n\n", i)
	}
	cases := []struct {
		name, body, want string
	}{
		{"slash", "name: x\nnodes:\n  a/b: {}\n", `node name "a/b"`},
		{"dotdot", "name: x\nnodes:\n  ..: {}\n", `node name ".."`},
		{"space", "name: x\nnodes:\n  \"a b\": {}\n", `node name "a b"`},
		{"shell", "name: x\nnodes:\n  \"$(reboot)\": {}\n", `node name "$(reboot)"`},
		{"semicolon-iface", "name: x\nnodes:\n  a: {}\n  b: {}\nlinks:\n  - endpoints: [\"a:e;rm\", b:eth0]\n", `"e;rm" is not a usable interface name`},
		{"non-utf8", "name: x\nnodes:\n  a\xff: {}\n", "not UTF-8"},
		{"empty", "", "the file is empty"},
		{"binary", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00", "not"},
		{"bomb", bomb, "refusing it"},
		{"deep", deep, "exceeded max depth"},
	}
	before := witness.Snapshot(t)
	for _, c := range cases {
		path := filepath.Join(dir, c.name+".yaml")
		if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"validate", "up"} {
			start := time.Now()
			code, out := runBinary(t, nil, cmd, path)
			if code != exitUsage || !strings.Contains(out, c.want) || !strings.Contains(out, path) {
				t.Errorf("%s %s: exit %d, output:\n%s\nwant exit 2 naming the file and %q", cmd, c.name, code, out, c.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("%s %s took %v", cmd, c.name, d)
			}
		}
	}
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("# padding padding padding padding padding padding padding padding\n"), 16384)
	for written := 0; written < 100<<20; written += len(chunk) {
		f.Write(chunk)
	}
	f.Close()
	if code, out := runBinary(t, nil, "up", big); code != exitUsage || !strings.Contains(out, "MiB") {
		t.Errorf("up of a 100 MB file: exit %d\n%s", code, out)
	}
	witness.Unchanged(t, before, "hostile input changed the sandbox")
}
