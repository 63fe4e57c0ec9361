package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

// Executor applies a plan's steps. Each step is idempotent: a step whose
// object already exists as the plan wants it changes nothing, so applying
// the same plan twice leaves the kernel as the first run did.
//
// Steps run in phases (see schedule), and within a phase, units of work on
// different nodes or cables run on parallel workers. The kernel serialises
// most of this work on its rtnl lock, so a few workers are enough: more
// only spin on the lock.
type Executor struct {
	Lab string
	Log *slog.Logger
	// AfterStep, when set, runs after each finished step with the number
	// of steps finished before it; an error stops the run. Tests use it
	// to interrupt a run after every step in turn.
	AfterStep func(i int) error
	// Progress, when set, is told after each step.
	Progress func(done, total int)
	// Workers is the number of parallel workers; 0 means one per CPU, at
	// most 4.
	Workers int

	mu      sync.Mutex
	done    int
	res     *Result
	fresh   map[string]bool // namespaces this run created: nothing to check in them
	birth   map[string]string
	birthMu sync.Once
}

// StepResult is what one step did.
type StepResult struct {
	Step    plan.Step
	Changed bool
	Note    string
}

// Result is what a run did.
type Result struct {
	Steps []StepResult
	// Foreign lists other programs' forward chains that got a rule of ours.
	Foreign []ForeignChain
	// Created maps each namespace this run created to its NamespaceID.
	Created map[string]uint64
}

// Changed counts the steps that changed the kernel.
func (r *Result) Changed() int {
	n := 0
	for _, s := range r.Steps {
		if s.Changed {
			n++
		}
	}
	return n
}

// Apply runs the plan and stops at the first failure, returning what was
// done up to there.
func (e *Executor) Apply(ctx context.Context, p *plan.Plan) (*Result, error) {
	e.res = &Result{Steps: make([]StepResult, len(p.Steps)), Created: map[string]uint64{}}
	for i, s := range p.Steps {
		e.res.Steps[i].Step = s
	}
	e.fresh = map[string]bool{}
	for i, phase := range schedule(p) {
		start := time.Now()
		err := e.runPhase(ctx, p, phase)
		e.Log.Debug("phase", "n", i, "units", len(phase), "took", time.Since(start), "err", err)
		if err != nil {
			return e.res, err
		}
	}
	return e.res, nil
}

// unit is work that runs on one worker: step indexes, in plan order.
type unit []int

// schedule groups the plan into phases that must follow one another:
//
//  0. namespaces with their settings and bridges, one unit per node;
//  1. cables, one unit each;
//  2. bridge MTUs, once the ports are attached;
//  3. each node's addresses, links up, routes, rules, firewall and hosts
//     file, one unit per node; but a node with many interfaces (a router
//     with a thousand hosts) has one unit per interface for addresses and
//     links up, spread over all workers, and the rest in
//  4. one unit per such node;
//  5. the host's rules in other programs' chains and the uplink, in order.
func schedule(p *plan.Plan) [][]unit {
	phaseOf := map[plan.Kind]int{
		plan.CreateNamespace: 0, plan.SetSysctl: 0, plan.CreateBridge: 0,
		plan.CreateVeth: 1, plan.SetMTU: 2, plan.AddAddress: 3, plan.SetUp: 3,
		plan.AddRoute: 4, plan.AddRule: 4, plan.SetFirewall: 4, plan.WriteHosts: 4,
		plan.AllowBridged: 5, plan.SetUplink: 5,
	}
	const phases = 6
	out := make([][]unit, phases)
	index := make([]map[string]int, phases)
	for i := range index {
		index[i] = map[string]int{}
	}
	for i, s := range p.Steps {
		ph := phaseOf[s.Kind]
		key := s.Node.Name
		big := len(s.Node.Interfaces) > bigNode
		switch {
		case ph == 1:
			key = fmt.Sprint(i)
		case ph == 3 && big:
			key += ":" + s.Iface
		case ph == 4 && !big:
			ph = 3
		case ph == 5:
			key = "host"
		}
		k, ok := index[ph][key]
		if !ok {
			k = len(out[ph])
			index[ph][key] = k
			out[ph] = append(out[ph], nil)
		}
		out[ph][k] = append(out[ph][k], i)
	}
	return out
}

// bigNode is the number of interfaces past which a node's interfaces are
// configured in parallel.
const bigNode = 16

func (e *Executor) workers(n int) int {
	w := e.Workers
	if w == 0 {
		w = min(runtime.NumCPU(), 4)
	}
	return max(1, min(w, n))
}

// runPhase runs a phase's units on the workers; the first error stops
// them all.
func (e *Executor) runPhase(ctx context.Context, p *plan.Plan, units []unit) error {
	if len(units) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan unit)
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range e.workers(len(units)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{e: e}
			defer w.close()
			for u := range next {
				if err := w.run(ctx, p, u); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					cancel()
				}
			}
		}()
	}
feed:
	for _, u := range units {
		select {
		case next <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// finish records a finished step and runs the hooks.
func (e *Executor) finish(i int, changed bool, note string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.res.Steps[i].Changed, e.res.Steps[i].Note = changed, note
	e.done++
	if e.Progress != nil {
		e.Progress(e.done, len(e.res.Steps))
	}
	if e.AfterStep != nil {
		return e.AfterStep(e.done - 1)
	}
	return nil
}

func (e *Executor) isFresh(node string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fresh[node]
}

func (e *Executor) addForeign(chains []ForeignChain) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.res.Foreign = append(e.res.Foreign, chains...)
}

// worker runs units with a small cache of namespace handles of its own
// (netlink handles are not shared between goroutines).
type worker struct {
	e     *Executor
	nss   map[string]*NS
	order []string
}

// maxOpen bounds the namespace handles one worker keeps open (each holds
// a namespace descriptor and netlink sockets), so that a lab of any size
// fits in the process's file limit.
const maxOpen = 8

func (w *worker) close() {
	for _, ns := range w.nss {
		ns.Close()
	}
	w.nss = nil
}

func (w *worker) keep(name string, ns *NS) {
	if w.nss == nil {
		w.nss = map[string]*NS{}
	}
	w.nss[name] = ns
	w.order = append(w.order, name)
	if len(w.order) > maxOpen {
		old := w.order[0]
		w.order = w.order[1:]
		w.nss[old].Close()
		delete(w.nss, old)
	}
}

// ns returns the handles for a node, opening them on first use.
func (w *worker) ns(n *topology.Node) (*NS, error) {
	if ns, ok := w.nss[n.Name]; ok {
		return ns, nil
	}
	var (
		ns  *NS
		err error
	)
	if n.Host {
		ns, err = Host()
	} else {
		ns, err = OpenNamed(n.Name)
	}
	if err != nil {
		return nil, err
	}
	w.keep(n.Name, ns)
	return ns, nil
}

func (w *worker) run(ctx context.Context, p *plan.Plan, u unit) error {
	for _, i := range u {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := p.Steps[i]
		changed, note, err := w.step(s)
		w.e.Log.Debug("step", "n", i, "step", s.String(), "changed", changed, "err", err)
		if err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, s, err)
		}
		if err := w.e.finish(i, changed, note); err != nil {
			return err
		}
	}
	return nil
}

var errUnknownStep = errors.New("unknown step kind")
