package lab

import (
	"context"
	"fmt"
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
	Addr   string        `json:"address"`
	Expect string        `json:"expect"` // "reach" or "blocked"
	Reply  bool          `json:"reply"`
	Pass   bool          `json:"pass"`
	RTT    time.Duration `json:"rtt_ns"`
	TTL    int           `json:"ttl,omitempty"`
	Line   int           `json:"line,omitempty"`
	Detail string        `json:"detail,omitempty"`
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
	nss, err := openNodes(t)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, ns := range nss {
			ns.Close()
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
			rep.Results[i] = runExpectation(ctx, nss[e.From.Name], e)
		}()
	}
	wg.Wait()
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

// openNodes opens the handles of every node, failing with a clear message
// when the lab is not up.
func openNodes(t *topology.Topology) (map[string]*kernel.NS, error) {
	nss := map[string]*kernel.NS{}
	for _, n := range t.Nodes {
		var (
			ns  *kernel.NS
			err error
		)
		if n.Host {
			ns, err = kernel.Host()
		} else {
			got, exists, merr := kernel.NamespaceMark(n.Name)
			if merr != nil || !exists || got != mark(t.Name) {
				err = fmt.Errorf("node %s is not up (run nsrouter up first)", n.Name)
			} else {
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

func runExpectation(ctx context.Context, ns *kernel.NS, e *topology.Expectation) CheckResult {
	r := CheckResult{From: e.From.Name, To: e.To, Addr: e.Addr.String(), Expect: "reach", Line: e.Line}
	opt := probe.PingOptions{}
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
