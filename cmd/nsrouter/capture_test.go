package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

func TestCaptureUsage(t *testing.T) {
	for _, args := range [][]string{
		{"capture"},
		{"capture", "router-ns"},
		{"capture", "router-ns:"},
		{"capture", ":eth0"},
		{"capture", "a:b:c"},
		{"capture", "../x:eth0"},
		{"capture", "ns0:an-interface-name-too-long"},
		{"capture", "ns0:eth0", "ns1:eth0"},
		{"capture", "ns0:eth0", "-c", "-1"},
		{"capture", "ns0:eth0", "-c", "many"},
	} {
		if code, _, stderr := nsr(t, "", args...); code != exitUsage {
			t.Errorf("nsrouter %v: exit %d, want %d; stderr:\n%s", args, code, exitUsage, stderr)
		}
	}
}

// syncBuffer is a buffer that a command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until cond holds, for at most five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("waited 5s for %s", what)
}

// capturing is a capture command running in the background.
type capturing struct {
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan int
}

// startCapture runs nsrouter with args and returns once the socket is
// bound, which the command says on standard error.
func startCapture(t *testing.T, args ...string) *capturing {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c := &capturing{cancel: cancel, done: make(chan int, 1)}
	t.Cleanup(cancel)
	go func() { c.done <- run(ctx, args, strings.NewReader(""), &c.stdout, &c.stderr) }()
	waitFor(t, "capture to start", func() bool {
		return strings.Contains(c.stderr.String(), "capturing on") || strings.Contains(c.stderr.String(), "nsrouter:")
	})
	return c
}

// wait waits up to ten seconds for the command to stop by itself.
func (c *capturing) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c.done:
		return code
	case <-time.After(10 * time.Second):
		c.cancel()
		t.Fatalf("capture did not stop by itself; stderr:\n%s", c.stderr.String())
		return -1
	}
}

// ping sends count echoes from ns0 to dst.
func ping(t *testing.T, count, dst string) {
	t.Helper()
	witness.InNS(t, "ns0", "ping", "-c", count, "-i", "0.2", "-W", "2", dst)
}

// TestCapture builds the built-in lab, records router-ns:eth0 into a
// pcap file while ns0 pings ns1 across the router, and has tcpdump read
// the file back; then prints frames as text, stops on a cancelled
// context, and names missing nodes and interfaces.
func TestCapture(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := lab.Up(ctx, topology.Builtin(), topology.BuiltinYAML(), lab.Options{}); err != nil {
		t.Fatalf("up: %v", err)
	}
	ping(t, "1", "10.12.0.2") // settles ARP, so that the captures see the echoes first
	ping(t, "1", "10.11.0.1")
	t.Run("pcap", capturePcap)
	t.Run("text", captureText)
	t.Run("cancel", captureCancel)
	t.Run("missing", captureMissing)
}

func capturePcap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "router.pcap")
	c := startCapture(t, "capture", "router-ns:eth0", "-w", path, "-c", "6")
	witness.InNS(t, "ns0", "ping", "-c", "3", "-W", "2", "10.12.0.2")
	if code := c.wait(t); code != exitOK || !strings.Contains(c.stderr.String(), "6 frames captured") {
		t.Fatalf("capture -w -c 6: exit %d; stderr:\n%s", code, c.stderr.String())
	}
	out := witness.Run(t, "tcpdump", "-r", path, "-n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Errorf("tcpdump -r: %d frames, want 6:\n%s", len(lines), out)
	}
	for _, want := range []string{"IP 10.11.0.2 > 10.12.0.2: ICMP echo request", "IP 10.12.0.2 > 10.11.0.2: ICMP echo reply"} {
		if !strings.Contains(out, want) {
			t.Errorf("tcpdump -r lacks %q:\n%s", want, out)
		}
	}
}

// captureText prints the frames of three echoes on a router's interface,
// on a bridge port in the host and on the host's bridge itself. IPv6 may
// add frames of its own (router solicitations, listener reports), so six
// frames hold the first echo whatever comes between.
func captureText(t *testing.T) {
	for _, c := range []struct{ iface, dst, request, reply string }{
		{"router-ns:eth0", "10.12.0.2", "in  10.11.0.2 > 10.12.0.2 ICMP echo request", "out 10.12.0.2 > 10.11.0.2 ICMP echo reply"},
		{"host:ns0-eth0", "10.12.0.2", "in  10.11.0.2 > 10.12.0.2 ICMP echo request", "out 10.12.0.2 > 10.11.0.2 ICMP echo reply"},
		{"host:br0", "10.11.0.1", "in  10.11.0.2 > 10.11.0.1 ICMP echo request", "out 10.11.0.1 > 10.11.0.2 ICMP echo reply"},
	} {
		cmd := startCapture(t, "capture", c.iface, "-c", "6")
		ping(t, "3", c.dst)
		code := cmd.wait(t)
		out := cmd.stdout.String()
		if code != exitOK || strings.Count(out, "\n") != 6 {
			t.Errorf("capture %s -c 6: exit %d; stdout:\n%s\nstderr:\n%s", c.iface, code, out, cmd.stderr.String())
		}
		for _, want := range []string{c.request, c.reply, ", ttl 64, length 98\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("capture %s lacks %q:\n%s", c.iface, want, out)
			}
		}
	}
}

// captureCancel stops a capture without -c the way Ctrl-C does, and
// expects a complete file.
func captureCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cancel.pcap")
	c := startCapture(t, "capture", "router-ns:eth0", "-w", path)
	ping(t, "2", "10.12.0.2")
	waitFor(t, "4 frames in the file", func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() >= 24+4*(16+98)
	})
	c.cancel()
	if code := c.wait(t); code != exitOK {
		t.Fatalf("capture stopped by its context: exit %d; stderr:\n%s", code, c.stderr.String())
	}
	out := witness.Run(t, "tcpdump", "-r", path, "-n")
	if strings.Count(out, "ICMP echo re") < 4 {
		t.Errorf("tcpdump -r after cancel: want the 4 echo frames:\n%s", out)
	}
}

func captureMissing(t *testing.T) {
	for _, c := range []struct{ arg, want string }{
		{"ns9:eth0", "no node ns9"},
		{"ns0:eth9", "ns0:eth9: no such interface"},
		{"host:eth9", "host:eth9: no such interface"},
	} {
		code, _, stderr := nsr(t, "", "capture", c.arg, "-c", "1")
		if code != exitFailed || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("capture %s: exit %d, stderr %q; want exit 1 and one line with %q", c.arg, code, stderr, c.want)
		}
	}
}
