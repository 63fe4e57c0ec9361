package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

// Executor applies a plan's steps. Each step is idempotent: a step whose
// object already exists as the plan wants it changes nothing, so applying
// the same plan twice leaves the kernel as the first run did.
type Executor struct {
	Lab string
	Log *slog.Logger
	// AfterStep, when set, runs after each step with its index; an error
	// stops the run there. Tests use it to interrupt a run at every step.
	AfterStep func(i int) error
	// Progress, when set, is told after each step.
	Progress func(done, total int)

	nss   map[string]*NS
	order []string // node names in nss, least recently used first
}

// maxOpen bounds the namespace handles an executor keeps open (each holds
// a namespace descriptor and netlink sockets), so that a lab of any size
// fits in the process's file limit.
const maxOpen = 16

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

// Apply runs the plan's steps in order and stops at the first failure,
// returning what was done up to there.
func (e *Executor) Apply(ctx context.Context, p *plan.Plan) (*Result, error) {
	defer e.Close()
	res := &Result{}
	for i, s := range p.Steps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		changed, note, err := e.step(s, res)
		e.Log.Debug("step", "n", i, "step", s.String(), "changed", changed, "err", err)
		res.Steps = append(res.Steps, StepResult{Step: s, Changed: changed, Note: note})
		if err != nil {
			return res, fmt.Errorf("step %d (%s): %w", i+1, s, err)
		}
		if e.Progress != nil {
			e.Progress(i+1, len(p.Steps))
		}
		if e.AfterStep != nil {
			if err := e.AfterStep(i); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// Close releases the namespace handles the executor opened.
func (e *Executor) Close() {
	for _, ns := range e.nss {
		ns.Close()
	}
	e.nss, e.order = nil, nil
}

// keep caches a node's handles, closing the least recently used beyond
// maxOpen.
func (e *Executor) keep(name string, ns *NS) {
	if e.nss == nil {
		e.nss = map[string]*NS{}
	}
	e.nss[name] = ns
	e.touch(name)
	for len(e.order) > maxOpen {
		old := e.order[0]
		e.order = e.order[1:]
		e.nss[old].Close()
		delete(e.nss, old)
	}
}

func (e *Executor) touch(name string) {
	if i := slices.Index(e.order, name); i >= 0 {
		e.order = slices.Delete(e.order, i, i+1)
	}
	e.order = append(e.order, name)
}

// ns returns the handles for a node, opening them on first use.
func (e *Executor) ns(n *topology.Node) (*NS, error) {
	if ns, ok := e.nss[n.Name]; ok {
		e.touch(n.Name)
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
	e.keep(n.Name, ns)
	return ns, nil
}

func (e *Executor) step(s plan.Step, res *Result) (changed bool, note string, err error) {
	mark := Mark(e.Lab)
	if s.Kind == plan.CreateNamespace {
		return e.createNamespace(s.Node.Name)
	}
	ns, err := e.ns(s.Node)
	if err != nil {
		return false, "", err
	}
	switch s.Kind {
	case plan.SetSysctl:
		_, changed, err = ns.SetSysctl(s.Key, s.Value)
		if errors.Is(err, errNotExist) && isBridgeNF(s.Key) {
			return false, "br_netfilter absent: bridged frames skip IP hooks anyway", nil
		}
		return changed, "", err
	case plan.CreateBridge:
		changed, err = ns.EnsureBridge(s.Iface, mark)
		return changed, "", err
	case plan.CreateVeth:
		return e.createVeth(s.Veth, mark)
	case plan.AddAddress:
		changed, err = ns.EnsureAddr(s.Iface, s.Addr)
		return changed, "", err
	case plan.SetUp:
		changed, err = ns.SetUp(s.Iface)
		return changed, "", err
	case plan.AddRoute:
		r := s.Route
		changed, err = ns.EnsureRoute(RouteSpec{Dst: r.Dst, Via: r.Via, Dev: r.Dev, Metric: r.Metric, Table: r.Table})
		return changed, "", err
	case plan.AddRule:
		changed, err = ns.EnsureRule(netlinkRule(s.Rule), plan.RuleString(s.Rule))
		return changed, "", err
	case plan.SetFirewall:
		changed, err = ns.EnsureTable(NodeTable(e.Lab, s.Node, s.Chain, s.NAT), true)
		return changed, "", err
	case plan.AllowBridged:
		return e.allowBridged(ns, s.Bridges, res)
	case plan.SetMTU:
		changed, err = ns.EnsureMTU(s.Iface, s.MTU)
		return changed, "", err
	case plan.WriteHosts:
		changed, err = WriteHosts(s.Node.Name, s.Hosts, plan.HostsMarker)
		return changed, "", err
	case plan.SetUplink:
		return e.uplink(ns, s.Uplink, res)
	}
	return false, "", fmt.Errorf("unknown step kind %v", s.Kind)
}

func (e *Executor) createNamespace(name string) (bool, string, error) {
	mark, exists, err := NamespaceMark(name)
	if err != nil {
		return false, "", err
	}
	if exists {
		if mark != Mark(e.Lab) {
			return false, "", &ClashError{Kind: "namespace", Name: name, Owner: mark}
		}
		return false, "", nil
	}
	ns, err := CreateNamed(name, e.Lab)
	if err != nil {
		return false, "", err
	}
	e.keep(name, ns)
	return true, "", nil
}

// createVeth creates the pair through the namespace of the end that joins
// a bridge, if any, so that end is born attached to its bridge.
func (e *Executor) createVeth(l *topology.Link, mark string) (bool, string, error) {
	a, b := l.A, l.B
	if a.Master == nil && b.Master != nil {
		a, b = b, a
	}
	nsA, err := e.ns(a.Node)
	if err != nil {
		return false, "", err
	}
	nsB, err := e.ns(b.Node)
	if err != nil {
		return false, "", err
	}
	end := func(ns *NS, i *topology.Interface) VethEnd {
		v := VethEnd{NS: ns, Name: i.Name, MTU: i.MTU, MAC: i.MAC}
		if i.Master != nil {
			v.Master = i.Master.Name
		}
		return v
	}
	changed, err := EnsureVeth(end(nsA, a), end(nsB, b), mark)
	return changed, "", err
}

func (e *Executor) allowBridged(ns *NS, bridges []*topology.Bridge, res *Result) (bool, string, error) {
	var names []string
	for _, b := range bridges {
		names = append(names, b.Name)
	}
	chains, changed, err := ns.AllowBridged(e.Lab, names)
	res.Foreign = append(res.Foreign, chains...)
	note := ""
	if len(chains) > 0 {
		note = fmt.Sprintf("accept rules in %d foreign forward chains", len(chains))
	}
	if ns.LegacyFilterPresent() {
		e.Log.Warn("the host has an iptables-legacy filter table; nsrouter cannot add rules there. "+
			"If its FORWARD policy is DROP, frames across the lab bridges are dropped: "+
			"allow them with iptables-legacy -I FORWARD -i BRIDGE -o BRIDGE -j ACCEPT",
			"bridges", names)
	}
	return changed, note, err
}

// netlinkRule converts a policy rule to netlink's form.
func netlinkRule(r *topology.PolicyRule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V4
	if r.IPv6 {
		nr.Family = netlink.FAMILY_V6
	}
	nr.Table = r.Table
	nr.Priority = r.Priority
	if r.Priority == 0 {
		nr.Priority = -1
	}
	if r.From.IsValid() {
		nr.Src = ipNet(r.From)
	}
	if r.To.IsValid() {
		nr.Dst = ipNet(r.To)
	}
	nr.IifName, nr.OifName = r.IIF, r.OIF
	if r.FwMark != 0 {
		nr.Mark = r.FwMark
	}
	return nr
}

// uplink connects the lab to the host's network: the host masquerades the
// uplink's subnet towards its default-route interface (or the one named),
// and foreign forward drops let the uplink's traffic through.
func (e *Executor) uplink(host *NS, u *topology.Uplink, res *Result) (bool, string, error) {
	out := u.Out
	if out == "" {
		dev, err := host.DefaultRouteDev()
		if err != nil {
			return false, "", err
		}
		out = dev
	}
	spec := TableSpec{Family: nftables.TableFamilyIPv4, Name: TableName(e.Lab), Chains: []ChainSpec{{
		Name: "postrouting", Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource, Policy: nftables.ChainPolicyAccept,
		Rules: []RuleSpec{masqRule(topology.Masquerade{Out: out, Src: []netip.Prefix{u.Subnet}}, u.Subnet)},
	}}}
	changed, err := host.EnsureTable(spec, false)
	if err != nil {
		return changed, "", err
	}
	chains, c2, err := host.AllowUplink(e.Lab, u.HostEnd.Name)
	res.Foreign = append(res.Foreign, chains...)
	return changed || c2, "masquerade towards " + out, err
}
