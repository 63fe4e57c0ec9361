package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/nsrouter/nsrouter/topology"
)

func TestGraph(t *testing.T) {
	code, out, stderr := nsr(t, "", "graph")
	if code != exitOK || !strings.HasPrefix(out, `graph "classic" {`) {
		t.Errorf("graph: exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	code, out, stderr = nsr(t, string(topology.BuiltinYAML()), "graph", "-", "--format", "mermaid")
	if code != exitOK || !strings.HasPrefix(out, "flowchart TB\n") || !strings.Contains(out, "router-ns") {
		t.Errorf("graph - --format mermaid: exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	for _, args := range [][]string{{"graph", "--format", "png"}, {"graph", "a.yaml", "b.yaml"}} {
		if code, _, stderr := nsr(t, "", args...); code != exitUsage {
			t.Errorf("nsrouter %v: exit %d, want %d; stderr:\n%s", args, code, exitUsage, stderr)
		}
	}
}

func TestGraphSVG(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		t.Fatal("dot is not on PATH: the test needs it as a witness (apt-get install graphviz; .ci/run installs it)")
	}
	code, out, stderr := nsr(t, "", "graph", "--format", "svg")
	if code != exitOK || !strings.Contains(out, "<svg") || !strings.Contains(out, "10.12.0.3/24") {
		t.Errorf("graph --format svg: exit %d, stderr:\n%s\nstdout:\n%.300s", code, stderr, out)
	}
}

// TestGraphSVGWithoutDot hides Graphviz: exit 3 and one line saying what
// to install or use instead.
func TestGraphSVGWithoutDot(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	code, out, stderr := nsr(t, "", "graph", "--format", "svg")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != exitEnviron || out != "" || len(lines) != 1 ||
		!strings.Contains(lines[0], "apt-get install graphviz") || !strings.Contains(lines[0], "--format dot") {
		t.Errorf("graph --format svg without dot: exit %d, want %d; stdout %q; stderr:\n%s", code, exitEnviron, out, stderr)
	}
}
