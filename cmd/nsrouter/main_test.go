package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/lab"
)

// binary is the nsrouter command built once for the tests that need a
// separate process (another user, a real exit status).
var binary string

func TestMain(m *testing.M) {
	if p := os.Getenv("NSROUTER_TEST_BINARY"); p != "" {
		binary = p
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "nsrouter-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "nsrouter")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("building nsrouter: " + err.Error() + "\n" + string(out))
	}
	os.Chmod(dir, 0o755)
	os.Setenv("NSROUTER_TEST_BINARY", binary) // sandbox children reuse it
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// nsr runs the command in-process and returns its exit status and output.
func nsr(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"up", "a.yaml", "b.yaml"},
		{"exec", "ns0"},
		{"exec", "ns0", "ls"},
		{"validate"},
		{"check", "--bogus"},
		{"down", "-l", "x", "file.yaml"},
		{"down", "-l", "../../tmp"},
		{"down", "-l", "a b;c"},
	} {
		code, _, stderr := nsr(t, "", args...)
		if code != exitUsage {
			t.Errorf("nsrouter %v: exit %d, want %d; stderr:\n%s", args, code, exitUsage, stderr)
		}
	}
}

func TestValidate(t *testing.T) {
	code, out, stderr := nsr(t, "", "validate", "../../examples/builtin.yaml")
	if code != 0 || !strings.Contains(out, "valid: lab classic") {
		t.Errorf("validate builtin: exit %d\n%s%s", code, out, stderr)
	}
	bad := "name: Bad Name\nnodes:\n  ns0:\n    routes:\n      - {to: 10.1.0.1/24, via: 10.9.9.9}\n    rutes: []\n"
	code, _, stderr = nsr(t, bad, "validate", "-")
	if code != exitUsage {
		t.Fatalf("validate bad: exit %d, want 2", code)
	}
	want := []string{
		`<stdin>:1:7: name "Bad Name": a lab name is 1 to 32 lowercase letters, digits and '-', starting with a letter or digit`,
		`<stdin>:5:14: node ns0 route: 10.1.0.1/24 has host bits set; did you mean 10.1.0.0/24?`,
		`<stdin>:6:5: unknown field "rutes" in nodes.ns0; did you mean "routes"?`,
	}
	if got := strings.Split(strings.TrimSpace(stderr), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("validate bad: stderr\n%s\nwant\n%s", stderr, strings.Join(want, "\n"))
	}
}

// TestNotRoot runs the binary as nobody: exit 3 and one line saying what
// is needed, for every command that touches the kernel.
func TestNotRoot(t *testing.T) {
	sandbox.RequireRoot(t)
	for _, args := range [][]string{{"up"}, {"down"}, {"check"}, {"status"}, {"exec", "ns0", "--", "true"}} {
		cmd := exec.Command(binary, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != exitEnviron {
			t.Errorf("%v as nobody: %v, want exit 3; stderr: %s", args, err, stderr.String())
			continue
		}
		if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "root") {
			t.Errorf("%v as nobody: stderr %q, want one line naming root", args, stderr.String())
		}
	}
}

// TestCheckExitStatus builds the built-in lab, expects check to pass with
// a table, then breaks the router and expects exit 1 and FAIL rows.
func TestCheckExitStatus(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	if code, out, errs := nsr(t, "", "up"); code != 0 {
		t.Fatalf("up: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := nsr(t, "", "check")
	if code != 0 || !strings.Contains(out, "11 passed, 0 failed") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errs)
	}
	witness.InNS(t, "router-ns", "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
	code, out, _ = nsr(t, "", "check", "--json")
	if code != exitFailed {
		t.Errorf("check with forwarding off: exit %d, want 1", code)
	}
	var rep lab.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	for _, r := range rep.Results {
		if r.From == "ns0" && r.To == "ns1" && r.Pass {
			t.Errorf("ns0 -> ns1 passed with the router's forwarding off")
		}
	}
	if code, out, errs := nsr(t, "", "down"); code != 0 {
		t.Fatalf("down: exit %d\n%s%s", code, out, errs)
	}
	if out := witness.Run(t, "ip", "netns", "list"); strings.TrimSpace(out) != "" {
		t.Errorf("namespaces left after down: %s", out)
	}
}

// TestClash puts a foreign br0 in the host, then a foreign namespace ns0:
// up must exit 1 naming the clash and create nothing.
func TestClash(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	for _, c := range []struct {
		make, undo []string
		want       string
	}{
		{[]string{"ip", "link", "add", "br0", "type", "bridge"}, []string{"ip", "link", "del", "br0"},
			"interface br0 in host already exists and not made by nsrouter"},
		{[]string{"ip", "netns", "add", "ns0"}, []string{"ip", "netns", "del", "ns0"},
			"namespace ns0 already exists and not made by nsrouter"},
	} {
		witness.Run(t, c.make[0], c.make[1:]...)
		before := witness.Snapshot(t)
		code, _, stderr := nsr(t, "", "up")
		if code != exitFailed || !strings.Contains(stderr, c.want) {
			t.Errorf("up with %v: exit %d, stderr:\n%s\nwant exit 1 and %q", c.make, code, stderr, c.want)
		}
		if after := witness.Snapshot(t); after != before {
			t.Errorf("up with %v changed the sandbox:\n%s", c.make, witness.Diff(before, after))
		}
		witness.Run(t, c.undo[0], c.undo[1:]...)
	}
}

// TestExecAndStatus runs a command inside a node through the real binary
// and reads status as JSON.
func TestExecAndStatus(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	if code, out, errs := nsr(t, "", "up", "--quiet"); code != 0 || out != "" {
		t.Fatalf("up --quiet: exit %d, stdout %q\n%s", code, out, errs)
	}
	out, err := exec.Command(binary, "exec", "ns0", "--", "ip", "-br", "addr", "show", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10.11.0.2/24") {
		t.Errorf("exec ns0 ip addr: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "exec", "ns0", "--", "ping", "-c", "1", "-W", "2", "ns1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "(10.12.0.2)") {
		t.Errorf("exec ns0 ping ns1 by name: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "exec", "ns0", "--", "sh", "-c", "exit 7").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("exec exit status: %v, want 7\n%s", err, out)
	}
	code, sout, _ := nsr(t, "", "status", "--json")
	var st lab.Status
	if err := json.Unmarshal([]byte(sout), &st); code != 0 || err != nil || !st.Up || len(st.Nodes) != 4 {
		t.Errorf("status --json: exit %d, %v, %+v", code, err, st)
	}
	code, sout, _ = nsr(t, "", "status")
	if code != 0 || !strings.Contains(sout, "router-ns  eth1") && !strings.Contains(sout, "router-ns") {
		t.Errorf("status: exit %d\n%s", code, sout)
	}
}

// TestStatusCounters sends pings across the router and expects status
// --json to count them, and --watch to refresh until interrupted.
func TestStatusCounters(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	nsr(t, "", "up", "--quiet")
	witness.InNS(t, "ns0", "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.12.0.2")
	_, out, _ := nsr(t, "", "status", "--json")
	var st lab.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	var fwd uint64
	for _, n := range st.Nodes {
		for _, i := range n.Interfaces {
			if n.Name == "router-ns" && i.Name == "eth1" {
				fwd = i.Counters.TxPackets
			}
		}
	}
	if fwd < 3 {
		t.Errorf("router-ns eth1 sent %d packets; the three pings crossed it", fwd)
	}
	cmd := exec.Command(binary, "status", "--watch", "--interval", "200ms")
	var buf bytes.Buffer
	cmd.Stdout = &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(900 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("status --watch after SIGINT: %v", err)
	}
	if n := strings.Count(buf.String(), "lab classic: up"); n < 3 {
		t.Errorf("status --watch printed %d tables in 0.9 s at 200ms; want at least 3", n)
	}
}

// TestCheckWithoutExpectations: a file with nothing to check is an error,
// not "0 passed, 0 failed" (which read as success even for a lab that was
// not up).
func TestCheckWithoutExpectations(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bare.yaml")
	if err := os.WriteFile(file, []byte("name: bare\nnodes:\n  a: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := nsr(t, "", "check", file)
	if code != 1 || out != "" || !strings.Contains(stderr, "lab bare: the file has no expectations (expect:)") {
		t.Errorf("check without expectations: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}
