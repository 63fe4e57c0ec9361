package lab

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/probe"
	"github.com/nsrouter/nsrouter/topology"
)

// CheckResult is the outcome of one expectation.
type CheckResult struct {
	From   string        `json:"from"`
	To     string        `json:"to"`
	Proto  string        `json:"proto"`
	Addr   string        `json:"address"`
	Expect string        `json:"expect"` // "reach" or "blocked"
	Reply  bool          `json:"reply"`
	Pass   bool          `json:"pass"`
	RTT    time.Duration `json:"rtt_ns"`
	TTL    int           `json:"ttl,omitempty"`
	Seen   string        `json:"seen_source,omitempty"` // tcp/udp: source the listener saw
	Line   int           `json:"line,omitempty"`
	Detail string        `json:"detail,omitempty"`
	// Why is the trace's one-line reason for an expected reach that failed.
	Why string `json:"why,omitempty"`
}

// Report is the outcome of Check.
type Report struct {
	Lab     string        `json:"lab"`
	Results []CheckResult `json:"results"`
	Passed  int           `json:"passed"`
	Failed  int           `json:"failed"`
}

// Check runs every expectation of t against the running lab, in parallel,
// sending ICMP echo from inside each source namespace.
func Check(ctx context.Context, t *topology.Topology, o Options) (*Report, error) {
	if err := RequireRoot(); err != nil {
		return nil, err
	}
	if len(t.Expect) == 0 {
		// "0 passed, 0 failed" would read as success, even for a lab
		// that is not up.
		return nil, fmt.Errorf("lab %s: the file has no expectations (expect:), so there is nothing to check", t.Name)
	}
	nss, err := openNodes(t)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, ns := range nss {
			ns.Close()
		}
	}()
	listeners, failed := startListeners(t, nss)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	rep := &Report{Lab: t.Name, Results: make([]CheckResult, len(t.Expect))}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, e := range t.Expect {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := failed[listenerKeyOf(e)]; err != nil {
				rep.Results[i] = CheckResult{From: e.From.Name, To: e.To, Proto: e.Proto, Addr: e.Addr.String(),
					Expect: "reach", Line: e.Line, Detail: err.Error()}
				return
			}
			rep.Results[i] = runExpectation(ctx, nss[e.From.Name], e)
		}()
	}
	wg.Wait()
	if o.Explain {
		explain(ctx, t, rep)
	}
	for _, r := range rep.Results {
		if r.Pass {
			rep.Passed++
		} else {
			rep.Failed++
		}
	}
	o.log().Debug("check done", "lab", t.Name, "passed", rep.Passed, "failed", rep.Failed)
	return rep, nil
}

// openNodes opens the handles of the nodes the expectations use, failing
// with a clear message when the lab is not up.
func openNodes(t *topology.Topology) (map[string]*kernel.NS, error) {
	nss := map[string]*kernel.NS{}
	var used []*topology.Node
	seen := map[*topology.Node]bool{}
	for _, e := range t.Expect {
		for _, n := range []*topology.Node{e.From, e.Server} {
			if n != nil && !seen[n] {
				seen[n] = true
				used = append(used, n)
			}
		}
	}
	for _, n := range used {
		var (
			ns  *kernel.NS
			err error
		)
		if n.Host {
			ns, err = kernel.Host()
		} else {
			got, exists, merr := kernel.NamespaceMark(n.Name)
			switch {
			case merr != nil:
				err = merr
			case !exists || got != mark(t.Name):
				err = fmt.Errorf("node %s is not up (run nsrouter up first)", n.Name)
			default:
				ns, err = kernel.OpenNamed(n.Name)
			}
		}
		if err != nil {
			for _, ns := range nss {
				ns.Close()
			}
			return nil, fmt.Errorf("lab %s: %w", t.Name, err)
		}
		nss[n.Name] = ns
	}
	return nss, nil
}

// listenerKey names one listener: several expectations may share it.
type listenerKey struct {
	node  string
	proto string
	port  uint16
}

func listenerKeyOf(e *topology.Expectation) listenerKey {
	if e.Proto == "icmp" || e.Server == nil {
		return listenerKey{}
	}
	return listenerKey{e.Server.Name, e.Proto, e.ServerPort}
}

// startListeners starts the tcp and udp listeners the expectations need,
// one per node, protocol and port. A listener that cannot start (the port
// is taken) fails only the expectations that need it.
func startListeners(t *topology.Topology, nss map[string]*kernel.NS) (map[listenerKey]*probe.Listener, map[listenerKey]error) {
	out := map[listenerKey]*probe.Listener{}
	failed := map[listenerKey]error{}
	for _, e := range t.Expect {
		k := listenerKeyOf(e)
		if k == (listenerKey{}) || out[k] != nil || failed[k] != nil {
			continue
		}
		l, err := probe.Listen(nss[k.node], k.proto, k.port)
		if err != nil {
			failed[k] = err
			continue
		}
		out[k] = l
	}
	return out, failed
}

func runExpectation(ctx context.Context, ns *kernel.NS, e *topology.Expectation) CheckResult {
	if e.Proto != "icmp" {
		return runConn(ctx, ns, e)
	}
	r := CheckResult{From: e.From.Name, To: e.To, Proto: e.Proto, Addr: e.Addr.String(), Expect: "reach", Line: e.Line}
	opt := probe.PingOptions{}
	if e.Addr.Is6() {
		// Neighbour discovery retries once a second, and on a busy machine
		// its first solicitations can go unanswered: give it two more.
		opt = probe.PingOptions{Count: 12, Timeout: 5 * time.Second}
	}
	if !e.Reach {
		r.Expect = "blocked"
		opt = probe.PingOptions{Count: 3, Timeout: time.Second}
	}
	res, err := probe.Ping(ctx, ns, e.Addr, opt)
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	r.Reply, r.RTT, r.TTL = res.Reply, res.RTT, res.TTL
	switch {
	case e.Reach && !res.Reply:
		r.Detail = "no reply"
		if res.Unreachable != "" {
			r.Detail = res.Unreachable
		}
	case !e.Reach && res.Reply:
		r.Detail = "a reply came back"
	case e.Reach && e.TTL != 0 && res.TTL != e.TTL:
		r.Detail = fmt.Sprintf("reply TTL %d, want %d", res.TTL, e.TTL)
	default:
		r.Pass = true
	}
	return r
}

// runConn runs a tcp or udp expectation against the listener.
func runConn(ctx context.Context, ns *kernel.NS, e *topology.Expectation) CheckResult {
	dst := netip.AddrPortFrom(e.Addr, e.Port)
	r := CheckResult{From: e.From.Name, To: e.To, Proto: e.Proto, Addr: dst.String(), Expect: "reach", Line: e.Line}
	timeout := 2 * time.Second
	if !e.Reach {
		r.Expect, timeout = "blocked", time.Second
	}
	res, err := probe.Connect(ctx, ns, e.Proto, dst, timeout)
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	r.Reply, r.RTT = res.Connected, res.RTT
	if res.Seen.IsValid() {
		r.Seen = res.Seen.String()
	}
	switch {
	case e.Reach && !res.Connected:
		r.Detail = res.Outcome
	case !e.Reach && res.Connected:
		r.Detail = "connected; seen from " + r.Seen
	case !e.Reach:
		r.Detail, r.Pass = res.Outcome, true
	case e.Source.IsValid() && res.Seen != e.Source:
		r.Detail = fmt.Sprintf("listener saw source %s, want %s", res.Seen, e.Source)
	default:
		r.Pass = true
		r.Detail = "seen from " + r.Seen
	}
	return r
}

// explain traces each expected reach that failed, one at a time (a trace
// owns a table in each namespace on its path), and records the reason.
func explain(ctx context.Context, t *topology.Topology, rep *Report) {
	for i, r := range rep.Results {
		e := t.Expect[i]
		if r.Pass || !e.Reach || e.From == nil {
			continue
		}
		tr, err := Trace(ctx, t, e.From, e.Addr, e.Proto, e.Port, Options{})
		switch {
		case err != nil:
			rep.Results[i].Why = "trace: " + err.Error()
		case tr.Reason != "":
			rep.Results[i].Why = tr.Reason
		case tr.Reached:
			rep.Results[i].Why = "the trace's probe got through: the failure is intermittent or in the listener"
		}
	}
}
