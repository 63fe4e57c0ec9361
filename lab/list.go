package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/topology"
)

// LabInfo is a lab found in the kernel by its marks.
type LabInfo struct {
	Name       string   `json:"name"`
	Namespaces []string `json:"namespaces"`
	HostLinks  []string `json:"host_interfaces"`
	HostRules  []string `json:"host_rules,omitempty"` // marked rules in other programs' chains
	State      string   `json:"state,omitempty"`      // the file it was built from, if the state is there
}

// List finds every lab whose marks are in the kernel or whose state is
// under the state folder.
func List(ctx context.Context, o Options) ([]LabInfo, error) {
	if err := RequireRoot(); err != nil {
		return nil, err
	}
	labs := map[string]*LabInfo{}
	get := func(name string) *LabInfo {
		if labs[name] == nil {
			labs[name] = &LabInfo{Name: name}
		}
		return labs[name]
	}
	names, err := kernel.ListNamed()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if m, _, _ := kernel.NamespaceMark(n); m != "" {
			if lab, ok := kernel.LabOfMark(m); ok && topology.ValidLabName(lab) {
				get(lab).Namespaces = append(get(lab).Namespaces, n)
			}
		}
	}
	host, err := kernel.Host()
	if err != nil {
		return nil, err
	}
	defer host.Close()
	links, err := host.Links()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if lab, ok := kernel.LabOfMark(l.Attrs().Alias); ok && topology.ValidLabName(lab) {
			get(lab).HostLinks = append(get(lab).HostLinks, l.Attrs().Name)
		}
	}
	for _, t := range tableLabs(host) {
		get(t)
	}
	for lab, rules := range host.ForeignRules() {
		if topology.ValidLabName(lab) {
			get(lab).HostRules = rules
		}
	}
	for _, lab := range hostsLabs() {
		get(lab)
	}
	entries, _ := os.ReadDir(o.stateDir())
	for _, e := range entries {
		if e.IsDir() && topology.ValidLabName(e.Name()) {
			get(e.Name()).State = filepath.Join(o.stateDir(), e.Name(), "topology.yaml")
		}
	}
	out := make([]LabInfo, 0, len(labs))
	for _, l := range labs {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// tableLabs names the labs with an nftables table in the host.
func tableLabs(host *kernel.NS) []string {
	names, _ := host.TableNames()
	var out []string
	for _, n := range names {
		_, table, _ := strings.Cut(n, " ")
		if lab, ok := strings.CutPrefix(table, "nsrouter-"); ok && topology.ValidLabName(lab) {
			out = append(out, lab)
		}
	}
	return out
}

// hostsLabs names the labs with hosts files under /etc/netns.
func hostsLabs() []string {
	dirs, _ := os.ReadDir(kernel.HostsDir)
	var out []string
	for _, d := range dirs {
		if lab := kernel.HostsLab(d.Name()); !strings.HasPrefix(d.Name(), ".") && topology.ValidLabName(lab) {
			out = append(out, lab)
		}
	}
	return out
}

// DownAll removes every lab List finds.
func DownAll(ctx context.Context, o Options) ([]*DownResult, error) {
	labs, err := List(ctx, o)
	if err != nil {
		return nil, err
	}
	var (
		out  []*DownResult
		errs []error
	)
	for _, l := range labs {
		res, err := Down(ctx, l.Name, o)
		if res != nil {
			out = append(out, res)
		}
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}
