// Package sandbox runs integration tests in throwaway network and mount
// namespaces, so they never touch the machine's own network and never see
// each other.
//
// A test calls Enter first:
//
//	func TestSomething(t *testing.T) {
//		if !sandbox.Enter(t) {
//			return // ran in a sandbox child; its outcome is reported there
//		}
//		... // runs inside the sandbox
//	}
//
// In the test process, Enter re-executes the test binary for that one test
// in new network and mount namespaces and reports the child's outcome. In
// the child it prepares the sandbox: private mounts, tmpfs on /run/netns,
// /etc/netns and /run/nsrouter, a fresh /sys, and lo up.
package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// envInside names the test a child process runs for.
const envInside = "NSROUTER_SANDBOX_TEST"

// envParent+"net" and envParent+"mnt" carry the parent's namespaces.
const envParent = "NSROUTER_SANDBOX_PARENT_"

// Dirs are mounted as empty tmpfs inside every sandbox.
var Dirs = []string{"/run/netns", "/etc/netns", "/run/nsrouter"}

var setupOnce struct {
	sync.Once
	err error
}

// Inside reports whether the process is a sandbox child.
func Inside() bool { return os.Getenv(envInside) != "" }

// Enter makes t run in a sandbox of its own; see the package comment. It
// returns true when the caller is inside the sandbox and should go on.
func Enter(t *testing.T) bool {
	t.Helper()
	if Inside() {
		setupOnce.Do(func() { setupOnce.err = setup() })
		if setupOnce.err != nil {
			t.Fatalf("preparing sandbox: %v", setupOnce.err)
		}
		return true
	}
	RequireRoot(t)
	runChild(t)
	return false
}

// RequireRoot fails the test (under CI=true) or skips it (elsewhere) when
// the process cannot make namespaces.
func RequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("integration tests need root to make network namespaces; CI must run them as root")
	}
	t.Skip("integration test: needs root to make network namespaces (run the suite as root)")
}

func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func runChild(t *testing.T) {
	t.Helper()
	args := []string{"-test.run", runPattern(t.Name()), "-test.count=1", "-test.v"}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout", time.Until(d).Round(time.Second).String())
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envInside+"="+t.Name())
	for _, kind := range []string{"net", "mnt"} {
		self, err := os.Readlink("/proc/self/ns/" + kind)
		if err != nil {
			t.Fatalf("reading own %s namespace: %v", kind, err)
		}
		cmd.Env = append(cmd.Env, envParent+kind+"="+self)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	if err != nil {
		t.Errorf("sandboxed run of %s failed: %v\n%s", t.Name(), err, indent(text))
		return
	}
	if !strings.Contains(text, "--- PASS: "+t.Name()) && !strings.Contains(text, "--- SKIP: "+t.Name()) {
		t.Errorf("sandboxed run of %s did not report a pass:\n%s", t.Name(), indent(text))
		return
	}
	if strings.Contains(text, "--- SKIP: "+t.Name()) {
		t.Skipf("skipped in the sandbox:\n%s", indent(text))
	}
	if testing.Verbose() {
		t.Logf("sandbox output:\n%s", indent(text))
	}
}

func indent(s string) string {
	return "    | " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    | ")
}

// setup prepares the child's namespaces. The process was born in them, so
// every thread is already inside; nothing here can reach the machine's own
// network or mounts.
func setup() error {
	// The parent passed its own namespaces; being in either means the
	// child was not cloned into new ones, and mounting here would hide the
	// machine's real /run/netns.
	for _, kind := range []string{"net", "mnt"} {
		self, err := os.Readlink("/proc/self/ns/" + kind)
		parent := os.Getenv(envParent + kind)
		if err != nil || parent == "" || self == parent {
			return fmt.Errorf("refusing to prepare a sandbox in the parent's %s namespace", kind)
		}
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	for _, dir := range Dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
			return fmt.Errorf("mounting tmpfs on %s: %w", dir, err)
		}
	}
	if err := unix.Mount("sysfs", "/sys", "sysfs", 0, ""); err != nil {
		return fmt.Errorf("mounting /sys: %w", err)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}
