package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsrouter/nsrouter/internal/sandbox"
)

func TestProgressLine(t *testing.T) {
	var w syncBuffer
	p := startProgress(&w, "up", "nodes", 0, 5*time.Millisecond)
	p.Update(3, 10)
	waitFor(t, "a drawn count", func() bool { return strings.Contains(w.String(), "up: 3/10 nodes (") })
	p.Stop()
	out := w.String()
	if !strings.Contains(out, "\r\033[Kup: 3/10 nodes (") || !strings.HasSuffix(out, "/s)\r\033[K") {
		t.Errorf("progress line %q: want a drawn count, then the line cleared", out)
	}

	// Work that ends before the threshold draws nothing, not even a clear.
	var quiet syncBuffer
	p = startProgress(&quiet, "down", "namespaces removed", time.Hour, time.Millisecond)
	p.Update(1, 2)
	time.Sleep(20 * time.Millisecond)
	p.Stop()
	if quiet.String() != "" {
		t.Errorf("short work drew %q", quiet.String())
	}
}

// blockingWriter stands for a terminal that is not being read (Ctrl-S, a
// stalled link): every Write waits until release is closed.
type blockingWriter struct {
	entered chan struct{}
	once    sync.Once
	release chan struct{}
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return len(p), nil
}

// TestProgressStalledTerminal: a terminal that takes no output must not
// hold up the work that reports to it, nor the end of the command.
func TestProgressStalledTerminal(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	p := startProgress(w, "up", "nodes", 0, time.Millisecond)
	p.Update(1, 100_000)
	select {
	case <-w.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the progress line never drew")
	}
	updated := make(chan struct{})
	go func() {
		for i := range 100_000 {
			p.Update(i+1, 100_000)
		}
		close(updated)
	}()
	select {
	case <-updated:
	case <-time.After(5 * time.Second):
		t.Error("Update waited for a stalled terminal")
	}
	stopped := make(chan struct{})
	go func() {
		p.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Error("Stop waited for a stalled terminal")
	}
	close(w.release)
}

// TestProgressOnTerminal builds a 2,000-host star, which takes over a
// second, with nsrouter's standard streams on a terminal (script(1) makes
// one) and not: up draws its progress in nodes only on a terminal and
// without --quiet, and leaves the line clear; down --quiet prints nothing.
func TestProgressOnTerminal(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	file := filepath.Join(t.TempDir(), "star.yaml")
	src := `name: progress
pools:
  p2p: {ipv4: 10.1.0.0/16}
nodes:
  r: {forwarding: {ipv4: true}}
groups:
  - {name: h, count: 2000, connect: r, pool: p2p, default-route: true}
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	piped := func(args ...string) (string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("nsrouter %v: %v\n%s%s", args, err, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	onTerminal := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		line := binary + " " + strings.Join(args, " ")
		out, err := exec.CommandContext(ctx, "script", "-qefc", line, "/dev/null").CombinedOutput()
		if err != nil {
			t.Fatalf("script -c %q (script(1) is in Debian's bsdutils): %v\n%s", line, err, out)
		}
		return string(out)
	}
	drew := func(out string) bool { return strings.Contains(out, " nodes (") }

	start := time.Now()
	if _, stderr := piped("up", file); drew(stderr) {
		t.Errorf("up with output to a pipe drew progress:\n%q", stderr)
	}
	took := time.Since(start)
	if out, _ := piped("down", "--quiet", file); out != "" {
		t.Errorf("down --quiet printed %q", out)
	}

	out := onTerminal("up", file)
	if took > 1500*time.Millisecond && !drew(out) {
		t.Errorf("up on a terminal (%v) drew no progress:\n%q", took, out)
	}
	if drew(out) && !strings.Contains(out, "\r\033[K") {
		t.Errorf("up on a terminal left its progress line:\n%q", out)
	}
	if want := "lab progress built: 2001 nodes"; !strings.Contains(out, want) {
		t.Errorf("up on a terminal: no %q in\n%q", want, out)
	}
	if out := onTerminal("down", file); !strings.Contains(out, "lab progress removed: 2001 namespaces") {
		t.Errorf("down on a terminal:\n%q", out)
	}
	if out := onTerminal("up", "--quiet", file); out != "" {
		t.Errorf("up --quiet on a terminal printed %q", out)
	}
	piped("down", file)
	t.Logf("up of 2,000 hosts took %v", took)
}
