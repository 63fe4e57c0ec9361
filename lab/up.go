package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

// UpResult reports what Up did.
type UpResult struct {
	// Changes is the difference between the file and the kernel that the
	// run found (and, unless DryRun, applied).
	Changes []plan.Change
	Lab     string
	Steps   int // steps in the plan
	Changed int // steps that changed the kernel
	New     bool
	// Foreign lists other programs' forward chains that got an accept rule
	// for the lab's bridges.
	Foreign []kernel.ForeignChain
}

// Up builds the topology, or brings an existing lab in line with it. src is
// the file's text, kept in the state folder for later commands. When a run
// on a new lab fails, everything it created is removed again.
func Up(ctx context.Context, t *topology.Topology, src []byte, o Options) (*UpResult, error) {
	if err := RequireRoot(); err != nil {
		return nil, err
	}
	unlock, err := o.lock(ctx, t.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()

	isNew, err := preflight(t)
	if err != nil {
		return nil, err
	}
	have, err := observe(t.Name)
	if err != nil {
		return nil, err
	}
	defer have.Close()
	out := &UpResult{Lab: t.Name, New: isNew, Changes: have.difference(t)}
	if o.DryRun {
		return out, nil
	}
	prev, _ := os.ReadFile(filepath.Join(o.labDir(t.Name), "topology.yaml"))
	err = o.apply(ctx, t, src, have, out)
	if err == nil {
		o.log().Info("lab up", "lab", t.Name, "steps", out.Steps, "changed", out.Changed)
		return out, nil
	}
	// Undoing is not progress: the caller's count must not run backwards.
	o.Progress = nil
	if isNew {
		o.log().Info("rolling back", "lab", t.Name, "cause", err)
		if _, derr := down(t.Name, o); derr != nil {
			err = errors.Join(err, fmt.Errorf("rolling back: %w", derr))
		}
		return out, err
	}
	if rerr := o.restore(ctx, prev); rerr != nil {
		err = errors.Join(err, fmt.Errorf("restoring the last good state: %w", rerr))
	}
	return out, err
}

// apply records the host's settings and the file, runs the plan and removes
// what the file no longer has.
func (o Options) apply(ctx context.Context, t *topology.Topology, src []byte, have *observation, out *UpResult) error {
	p := plan.Build(t)
	out.Steps = len(p.Steps)
	if err := o.recordHost(t.Name, p); err != nil {
		return fmt.Errorf("recording host settings: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(o.labDir(t.Name), "topology.yaml"), src); err != nil {
		return fmt.Errorf("saving lab state: %w", err)
	}
	ex := &kernel.Executor{Lab: t.Name, Log: o.log(), AfterStep: o.AfterStep, Progress: o.Progress}
	res, err := ex.Apply(ctx, p)
	if res != nil {
		out.Changed, out.Foreign = res.Changed(), res.Foreign
		if rerr := o.recordNamespaces(t.Name, res.Created); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return err
	}
	if err := prune(out.Changes, have.facts); err != nil {
		return fmt.Errorf("removing what the file no longer has: %w", err)
	}
	if err := o.releaseHost(t.Name, p); err != nil {
		return fmt.Errorf("putting back host settings the file no longer needs: %w", err)
	}
	for _, c := range out.Changes {
		if c.Op == '-' {
			out.Changed++
		}
	}
	return nil
}

// restore brings an existing lab back to the file it was last built from,
// after a failed run on an edited file.
func (o Options) restore(ctx context.Context, prev []byte) error {
	if prev == nil {
		return errors.New("no earlier file in the lab's state")
	}
	t, err := topology.Parse("<last good file>", prev)
	if err != nil {
		return err
	}
	have, err := observe(t.Name)
	if err != nil {
		return err
	}
	defer have.Close()
	o.AfterStep = nil
	return o.apply(ctx, t, prev, have, &UpResult{Changes: have.difference(t)})
}

// preflight checks, before anything is touched, that every name the lab
// needs is free or already the lab's, and reports whether nothing of the
// lab exists yet. Problems are returned all at once.
func preflight(t *topology.Topology) (isNew bool, err error) {
	m := mark(t.Name)
	isNew = true
	var errs []error
	for _, n := range t.Namespaces() {
		got, exists, err := kernel.NamespaceMark(n.Name)
		switch {
		case err != nil:
			errs = append(errs, err)
		case exists && got != m:
			errs = append(errs, &kernel.ClashError{Kind: "namespace", Name: n.Name, Owner: got})
		case exists:
			isNew = false
		}
	}
	host := t.Node(topology.HostNode)
	if host == nil {
		return isNew, errors.Join(errs...)
	}
	hns, err := kernel.Host()
	if err != nil {
		return false, err
	}
	defer hns.Close()
	names := []string{}
	for _, b := range host.Bridges {
		names = append(names, b.Name)
	}
	for _, i := range host.Interfaces {
		names = append(names, i.Name)
	}
	marked, err := hns.MarkedLinks(m)
	if err != nil {
		return false, err
	}
	if len(marked) > 0 {
		isNew = false
	}
	for _, name := range names {
		if err := hns.CheckFree(name, m); err != nil {
			errs = append(errs, err)
		}
	}
	if u := t.Uplink; u != nil {
		// Found out now, not after the lab is half built.
		if u.Out == "" {
			if _, err := hns.DefaultRouteDev(); err != nil {
				errs = append(errs, fmt.Errorf("uplink: %w", err))
			}
		} else if !hns.HasLink(u.Out) {
			errs = append(errs, fmt.Errorf("uplink: out: the host has no interface %q to masquerade towards", u.Out))
		}
	}
	return isNew, errors.Join(errs...)
}

// recordHost saves the current value of every host sysctl the plan will
// write, before it is written. A value recorded by an earlier run is kept:
// it is the one from before the lab existed.
func (o Options) recordHost(lab string, p *plan.Plan) error {
	rec, err := o.readRecord(lab)
	if err != nil {
		return err
	}
	var host *kernel.NS
	defer func() { host.Close() }()
	changed := false
	for _, s := range p.Steps {
		if s.Kind != plan.SetSysctl || !s.Node.Host {
			continue
		}
		if _, ok := rec.Sysctls[s.Key]; ok {
			continue
		}
		if host == nil {
			if host, err = kernel.Host(); err != nil {
				return err
			}
		}
		v, err := host.Sysctl(s.Key)
		if err != nil {
			return err
		}
		rec.Sysctls[s.Key] = v
		changed = true
	}
	if !changed {
		return nil
	}
	return o.writeRecord(lab, rec)
}

// releaseHost puts back (or hands over, see handOver) the host sysctls the
// lab recorded but its file no longer sets: an uplink edited out of a
// running lab leaves the host's forwarding as it found it.
func (o Options) releaseHost(lab string, p *plan.Plan) error {
	rec, err := o.readRecord(lab)
	if err != nil || len(rec.Sysctls) == 0 {
		return err
	}
	wanted := map[string]bool{}
	for _, s := range p.Steps {
		if s.Kind == plan.SetSysctl && s.Node.Host {
			wanted[s.Key] = true
		}
	}
	stale := &hostRecord{Sysctls: map[string]string{}}
	for k, v := range rec.Sysctls {
		if !wanted[k] {
			stale.Sysctls[k] = v
			delete(rec.Sysctls, k)
		}
	}
	if len(stale.Sysctls) == 0 {
		return nil
	}
	host, err := kernel.Host()
	if err != nil {
		return err
	}
	defer host.Close()
	if _, _, err := o.restoreRecorded(lab, host, stale); err != nil {
		return err
	}
	return o.writeRecord(lab, rec)
}

// recordNamespaces adds the namespaces a run created to the lab's record.
func (o Options) recordNamespaces(lab string, created map[string]uint64) error {
	if len(created) == 0 {
		return nil
	}
	rec, err := o.readRecord(lab)
	if err != nil {
		return err
	}
	if rec.Namespaces == nil {
		rec.Namespaces = map[string]uint64{}
	}
	for name, id := range created {
		rec.Namespaces[name] = id
	}
	return o.writeRecord(lab, rec)
}
