package lab_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

// loadExample parses examples/NAME.yaml and fails the test on error.
func loadExample(t *testing.T, name string) (*topology.Topology, []byte) {
	t.Helper()
	top, src, err := topology.Load(filepath.Join("..", "examples", name+".yaml"), nil)
	if err != nil {
		t.Fatalf("loading example %s: %v", name, err)
	}
	return top, src
}

// TestExamples builds every example in a sandbox of its own, runs its
// expectations, tears it down and compares the sandbox with its state
// before. The uplink example needs a host with a default route and has a
// test of its own.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("examples: %v, %d files", err, len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if name == "uplink" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if !sandbox.Enter(t) {
				return
			}
			top, src := loadExample(t, name)
			before := witness.Snapshot(t)
			if _, err := lab.Up(ctx(t), top, src, lab.Options{}); err != nil {
				t.Fatalf("up: %v", err)
			}
			rep := check(t, top)
			for _, r := range rep.Results {
				if !r.Pass {
					t.Errorf("%s -> %s (%s, line %d): %s", r.From, r.To, r.Proto, r.Line, r.Detail)
				}
			}
			if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
				t.Fatalf("down: %v", err)
			}
			witness.Unchanged(t, before, "after down")
			if entries, _ := os.ReadDir("/etc/netns"); len(entries) != 0 {
				t.Errorf("/etc/netns still holds %d entries after down", len(entries))
			}
		})
	}
}
