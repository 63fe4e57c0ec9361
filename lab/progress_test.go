package lab_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

// progressCalls records what a run tells Options.Progress.
type progressCalls struct {
	mu          sync.Mutex
	done, total []int
}

func (p *progressCalls) record(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = append(p.done, done), append(p.total, total)
}

// check fails unless the run counted 1, 2, ... n out of n, once each.
func (p *progressCalls) check(t *testing.T, what string, n int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(p.done, want) {
		t.Errorf("%s: progress counted %v, want 1 to %d", what, p.done, n)
	}
	for _, tot := range p.total {
		if tot != n {
			t.Errorf("%s: progress total %d, want %d", what, tot, n)
			break
		}
	}
}

// TestProgress: up tells its progress in lab nodes whose steps are all
// done (the host, which gets the shared hosts file, is not one), and down
// in namespaces removed, each counting up to the lab's size.
func TestProgress(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	src := []byte(`name: progress
pools:
  p2p: {ipv4: 10.1.0.0/24}
nodes:
  r: {forwarding: {ipv4: true}}
groups:
  - {name: h, count: 30, connect: r, pool: p2p, default-route: true}
expect:
  - {from: h1, to: h30}
`)
	top, err := topology.Parse("progress.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	var up progressCalls
	if _, err := lab.Up(ctx(t), top, src, lab.Options{Progress: up.record}); err != nil {
		t.Fatal(err)
	}
	up.check(t, "up", 31)
	requirePass(t, check(t, top))
	var down progressCalls
	res, err := lab.Down(ctx(t), top.Name, lab.Options{Progress: down.record})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Namespaces) != 31 {
		t.Errorf("down removed %d namespaces, want 31", len(res.Namespaces))
	}
	down.check(t, "down", 31)

	// An up that fails half-way rolls back without counting backwards.
	var failed progressCalls
	o := lab.Options{Progress: failed.record, AfterStep: func(i int) error {
		if i == 150 {
			return errors.New("stop here")
		}
		return nil
	}}
	if _, err := lab.Up(ctx(t), top, src, o); err == nil {
		t.Fatal("up did not stop at its 151st step")
	}
	failed.mu.Lock()
	defer failed.mu.Unlock()
	if len(failed.done) == 0 || !slices.IsSorted(failed.done) {
		t.Errorf("progress of a failed up and its rollback: %v, want a count that only grows", failed.done)
	}
}
