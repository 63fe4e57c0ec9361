package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
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
	// Progress, when set, is told how many of the plan's lab nodes (the
	// host excluded) have all their steps done, each time one more has.
	// It runs under the executor's lock: it must not block.
	Progress func(done, total int)
	// Workers is the number of parallel workers; 0 means one per CPU, at
	// most 4.
	Workers int

	mu      sync.Mutex
	pos     map[*topology.Interface]int // index of each interface of a big node
	done    int
	left    map[*topology.Node]int // steps not finished, per lab node
	nodes   int                    // lab nodes with all their steps finished
	res     *Result
	fresh   map[string]bool // namespaces this run created: nothing to check in them
	birth   map[string]string
	birthMu sync.Once
	bridges map[string]int // NODE\x00BRIDGE: interface index, for bridge ports created fresh
}

// StepResult is what one step of the plan (same index) did.
type StepResult struct {
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
	e.fresh = map[string]bool{}
	e.pos = map[*topology.Interface]int{}
	e.left, e.nodes = map[*topology.Node]int{}, 0
	for _, s := range p.Steps {
		if !s.Node.Host {
			e.left[s.Node]++
		}
		if s.Kind == plan.CreateNamespace && len(s.Node.Interfaces) > bigNode {
			for k, i := range s.Node.Interfaces {
				e.pos[i] = k
			}
		}
	}
	for i, phase := range schedule(p) {
		start := time.Now()
		err := e.runPhase(ctx, p, phase)
		e.Log.Debug("phase", "n", i, "units", len(phase), "took", time.Since(start), "err", err)
		if err != nil {
			return e.res, err
		}
	}
	return e.res, e.settle(p)
}

// settle waits (two seconds at most) until every bridge port whose cable
// is up reports its carrier, so that the lab forwards when Apply returns.
func (e *Executor) settle(p *plan.Plan) error {
	deadline := time.Now().Add(2 * time.Second)
	for _, s := range p.Steps {
		if s.Kind != plan.CreateBridge && !(s.Kind == plan.CreateNamespace && len(s.Node.Bridges) > 0) {
			continue
		}
		if s.Kind == plan.CreateBridge && s.Node.Bridges[0].Name != s.Iface {
			continue // once per node
		}
		var ports []string
		for _, i := range s.Node.Interfaces {
			if i.Master != nil && !i.Down && !i.Peer().Down {
				ports = append(ports, i.Name)
			}
		}
		if len(ports) == 0 {
			continue
		}
		w := &worker{e: e}
		ns, err := w.ns(s.Node)
		if err != nil {
			return err
		}
		err = ns.WaitUp(ports, deadline)
		w.close()
		if err != nil {
			return err
		}
	}
	return nil
}

// unit is work that runs on one worker: step indexes, in plan order.
type unit []int

// schedule groups the plan into phases that must follow one another:
//
//  0. the namespaces of nodes that are not leaves (below), with their
//     settings and bridges, and the host's bridges and the lab's shared
//     hosts file: one unit per node;
//  1. leaves, one unit each: a leaf is a lab node with a single cable and
//     no bridge whose other end is not a leaf (a host of a star, a client
//     on a LAN); its unit makes its namespace and cable and configures
//     both ends, so a thousand hosts are built as a pipeline on every
//     worker, each namespace entered once;
//  2. the other cables, one unit each;
//  3. bridge MTUs, once the ports are attached;
//  4. the other nodes' addresses, links up, routes, rules, firewall and
//     hosts file, one unit per node; a node with many interfaces has one
//     unit per interface for addresses and links up, and the rest in
//  5. one unit per such node;
//  6. the host's rules in other programs' chains and the uplink, in order.
func schedule(p *plan.Plan) [][]unit {
	const phases = 7
	leaf := leaves(p)
	out := make([][]unit, phases)
	index := make([]map[string]int, phases)
	for i := range index {
		index[i] = map[string]int{}
	}
	for i, s := range p.Steps {
		ph, key := place(s, i, leaf)
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

// place returns a step's phase and the key of its unit in that phase.
func place(s plan.Step, i int, leaf map[string]*topology.Interface) (int, string) {
	n := s.Node.Name
	if s.Kind == plan.CreateVeth {
		for _, end := range []*topology.Interface{s.Veth.A, s.Veth.B} {
			if leaf[end.Node.Name] == end {
				return 1, end.Node.Name
			}
		}
		return 2, fmt.Sprint(i)
	}
	if leaf[n] != nil {
		return 1, n
	}
	if s.Kind == plan.AddAddress || s.Kind == plan.SetUp || s.Kind == plan.SetDown || s.Kind == plan.SetPacketSize {
		// The far end of a leaf's cable is configured with the leaf.
		if i := s.Node.Interface(s.Iface); i != nil && i.Link != nil && leaf[i.Peer().Node.Name] == i.Peer() {
			return 1, i.Peer().Node.Name
		}
	}
	big := len(s.Node.Interfaces) > bigNode
	switch s.Kind {
	case plan.CreateNamespace, plan.SetSysctl, plan.CreateBridge, plan.WriteSharedHosts:
		return 0, n
	case plan.SetMTU:
		return 3, n
	case plan.AddAddress, plan.SetUp, plan.SetDown, plan.SetPacketSize:
		if big {
			return 4, n + ":" + s.Iface
		}
		return 4, n
	case plan.AllowBridged, plan.SetUplink:
		return 6, "host"
	}
	if big {
		return 5, n
	}
	return 4, n
}

// leaves maps each leaf node to its single interface.
func leaves(p *plan.Plan) map[string]*topology.Interface {
	candidate := func(n *topology.Node) bool {
		return !n.Host && len(n.Interfaces) == 1 && len(n.Bridges) == 0
	}
	out := map[string]*topology.Interface{}
	for _, s := range p.Steps {
		if s.Kind != plan.CreateNamespace || !candidate(s.Node) {
			continue
		}
		i := s.Node.Interfaces[0]
		if i.Link != nil && !candidate(i.Peer().Node) {
			out[s.Node.Name] = i
		}
	}
	return out
}

// ifindexBase is where the interface indexes nsrouter chooses start, far
// above those the kernel hands out in a new namespace.
const ifindexBase = 100000

// ifindex chooses the interface index of an end on a big node.
func (e *Executor) ifindex(i *topology.Interface) int { return ifindexBase + e.pos[i] }

// bigNode is the number of interfaces past which a node's interfaces are
// configured in parallel.
const bigNode = 16

func (e *Executor) workers(n int) int {
	w := e.Workers
	if v, err := strconv.Atoi(os.Getenv("NSROUTER_WORKERS")); w == 0 && err == nil && v > 0 {
		w = v // a knob for benchmarks
	}
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
					if errors.Is(err, ErrTainted) {
						return // the thread must end with this goroutine
					}
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

// finish records a finished step of node and runs the hooks.
func (e *Executor) finish(i int, n *topology.Node, changed bool, note string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.res.Steps[i].Changed, e.res.Steps[i].Note = changed, note
	e.done++
	if !n.Host {
		if e.left[n]--; e.left[n] == 0 {
			e.nodes++
			if e.Progress != nil {
				e.Progress(e.nodes, len(e.left))
			}
		}
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
	e       *Executor
	nss     map[string]*NS
	order   []string
	creator *Creator // makes namespaces from the worker's own thread
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
	w.creator.Close()
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
		// The most recently used go last, so the handles closed first
		// are the least used: a star's router, used by every cable,
		// keeps its handle and what the handle has read (addrs6).
		if k := slices.Index(w.order, n.Name); k >= 0 && k < len(w.order)-1 {
			w.order = append(slices.Delete(w.order, k, k+1), n.Name)
		}
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
		if err := w.e.finish(i, s.Node, changed, note); err != nil {
			return err
		}
	}
	return nil
}

var errUnknownStep = errors.New("unknown step kind")
