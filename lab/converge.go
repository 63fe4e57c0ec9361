package lab

import (
	"errors"
	"slices"
	"strings"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

// observation is what observe read, holding the namespace handles that
// its Delete functions use until Close.
type observation struct {
	facts []kernel.Observed
	open  []*kernel.NS
}

// Close releases the namespace handles.
func (o *observation) Close() {
	for _, ns := range o.open {
		ns.Close()
	}
	o.open = nil
}

// observe reads every object of the lab from the kernel: its namespaces
// and what they hold, its marked objects in the host, its hosts files.
// The caller closes the result once it has removed what it wanted.
func observe(lab string) (*observation, error) {
	obs := &observation{}
	facts, err := obs.read(lab)
	if err != nil {
		obs.Close()
		return nil, err
	}
	obs.facts = facts
	return obs, nil
}

func (obs *observation) read(lab string) ([]kernel.Observed, error) {
	host, err := kernel.Host()
	if err != nil {
		return nil, err
	}
	obs.open = append(obs.open, host)
	out, err := host.Observe(topology.HostNode, lab)
	if err != nil {
		return nil, err
	}
	names, err := kernel.ListNamed()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if got, _, err := kernel.NamespaceMark(name); err != nil || got != mark(lab) {
			continue
		}
		out = append(out, kernel.Observed{Fact: plan.Fact{Node: name, Kind: "namespace"},
			Delete: func() error { return kernel.DeleteNamed(name) }})
		ns, err := kernel.OpenNamed(name)
		if err != nil {
			return nil, err
		}
		facts, err := ns.Observe(name, lab)
		ns.Close() // Delete opens it again when it is needed
		if err != nil {
			return nil, err
		}
		out = append(out, facts...)
	}
	return append(out, kernel.ObserveHosts(lab)...), nil
}

func factsOf(obs []kernel.Observed) []plan.Fact {
	out := make([]plan.Fact, len(obs))
	for i, o := range obs {
		out[i] = o.Fact
	}
	return out
}

// difference compares the file with the kernel. Rules in other programs'
// chains exist only where such a chain drops: they are listed as missing
// only where the host asks the kernel finds them missing.
func (obs *observation) difference(t *topology.Topology) []plan.Change {
	want := plan.Facts(t, kernel.NodeRules)
	changes := plan.Diff(want, factsOf(obs.facts))
	missing := map[string]bool{}
	if h := t.Node(topology.HostNode); h != nil && len(obs.open) > 0 {
		var bridges []string
		for _, b := range h.Bridges {
			bridges = append(bridges, b.Name)
		}
		end := ""
		if t.Uplink != nil {
			end = t.Uplink.HostEnd.Name
		}
		for _, c := range obs.open[0].MissingForeign(t.Name, bridges, end) {
			missing["rule "+strings.TrimPrefix(c, mark(t.Name)+" ")] = true
		}
	}
	changes = slices.DeleteFunc(changes, func(c plan.Change) bool {
		if c.Op == '+' && c.Fact.Kind == "foreign-rule" {
			return !missing[c.Fact.Key]
		}
		return false
	})
	// A rule can be missing from one chain while a copy in another (say
	// ip6tables) makes the kernel report it present.
	for _, f := range want {
		if f.Kind == "foreign-rule" && missing[f.Key] && !slices.ContainsFunc(changes, func(c plan.Change) bool { return c.Fact == f }) {
			changes = append(changes, plan.Change{Op: '+', Fact: f})
		}
	}
	return changes
}

// pruneOrder removes dependants first: rules and routes before the links
// they use, links before their namespaces.
var pruneOrder = []string{"foreign-rule", "nftables", "rule", "route", "address", "hosts", "link", "namespace"}

// prune removes what the kernel has and the file no longer wants. In a
// namespace about to go, its contents go with it.
func prune(changes []plan.Change, have []kernel.Observed) error {
	del := map[plan.Fact]func() error{}
	for _, o := range have {
		del[o.Fact] = o.Delete
	}
	gone := map[string]bool{}
	for _, c := range changes {
		if c.Op == '-' && c.Fact.Kind == "namespace" {
			gone[c.Fact.Node] = true
		}
	}
	var errs []error
	for _, kind := range pruneOrder {
		for _, c := range changes {
			if c.Op != '-' || c.Fact.Kind != kind || (gone[c.Fact.Node] && kind != "namespace" && kind != "hosts") {
				continue
			}
			if f := del[c.Fact]; f != nil {
				errs = append(errs, f())
			}
		}
	}
	return errors.Join(errs...)
}
