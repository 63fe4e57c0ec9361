package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DownResult reports what Down removed.
type DownResult struct {
	Lab        string
	Namespaces []string
	Links      []string // host interfaces
	Tables     int
	Rules      int      // rules removed from other programs' chains
	Restored   []string // host sysctls put back
	// HandedOver are host sysctls left as they are because other labs
	// that set them too are still up: the last of them to go down puts
	// back the value this one found.
	HandedOver []Handover
}

// Handover is a host sysctl that down left to other labs.
type Handover struct {
	Key  string
	Labs []string
}

// Empty reports whether nothing of the lab was found.
func (r *DownResult) Empty() bool {
	return len(r.Namespaces)+len(r.Links)+r.Tables+r.Rules+len(r.Restored)+len(r.HandedOver) == 0
}

// Down removes everything the lab made. It finds the lab's objects by
// their marks in the kernel, so it works after the state folder is lost;
// it tries every removal and reports all failures together.
func Down(ctx context.Context, lab string, o Options) (*DownResult, error) {
	if err := RequireRoot(); err != nil {
		return nil, err
	}
	unlock, err := o.lock(ctx, lab)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return down(lab, o)
}

func down(lab string, o Options) (*DownResult, error) {
	res := &DownResult{Lab: lab}
	t0 := time.Now()
	took := func(what string) {
		o.log().Debug("down", "did", what, "took", time.Since(t0))
		t0 = time.Now()
	}
	m := mark(lab)
	var errs []error
	host, err := kernel.Host()
	if err != nil {
		return res, err
	}
	defer host.Close()

	// Rules in other programs' chains go first: they name the lab's
	// bridges and must not outlive them.
	n, err := host.RemoveForeignRules(lab)
	res.Rules += n
	errs = append(errs, err)
	if found, err := host.DeleteTable(lab); found {
		res.Tables++
	} else {
		errs = append(errs, err)
	}
	took("host rules and table")
	links, err := host.MarkedLinks(m)
	errs = append(errs, err)
	// Deleting a veth costs an RCU grace period (20 s for a thousand host
	// ends of a big LAN on a host bridge), while the kernel destroys a
	// dying namespace's cables, host ends included, in batches. So with
	// many, the host ends go with the namespaces, below.
	later := veths(links) > manyHostVeths
	if !later {
		errs = append(errs, deleteHostLinks(host, links, res))
	}
	took("host links")
	names, err := kernel.ListNamed()
	errs = append(errs, err)
	rec, _ := o.readRecord(lab)
	var known map[string]uint64
	if rec != nil {
		known = rec.Namespaces
	}
	prev, _, prevErr := topology.Load(filepath.Join(o.labDir(lab), "topology.yaml"), nil)
	if prevErr == nil {
		bigFirst(names, prev)
	}
	took("list namespaces, read state")
	var tick func(int)
	if o.Progress != nil {
		total := len(known)
		if prevErr == nil {
			total = len(prev.Namespaces())
		}
		tick = func(done int) { o.Progress(min(done, total), max(done, total)) }
	}
	gone, err := deleteNamespaces(names, m, known, tick)
	res.Namespaces = gone
	errs = append(errs, err)
	took("namespaces")
	if later {
		errs = append(errs, awaitHostLinks(host, m, links, res))
		took("host links, with the namespaces")
	}

	var nodes []*topology.Node
	if prevErr == nil {
		nodes = prev.Namespaces()
	}
	errs = append(errs, removeFiles(lab, nodes))
	took("stale files and hosts files")
	restored, handed, err := o.restoreHost(lab, host)
	res.Restored, res.HandedOver = restored, handed
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	if err := os.RemoveAll(o.labDir(lab)); err != nil {
		return res, fmt.Errorf("removing lab state: %w", err)
	}
	o.log().Info("lab down", "lab", lab, "namespaces", len(res.Namespaces), "links", len(res.Links))
	return res, nil
}

// removeFiles removes the lab's files: its hosts files, found by their
// first line like everything else, the shared copy they link to, and what
// interrupted runs leave for the nodes of the lab's last file: an empty
// /run/netns/NODE (a creation killed before its namespace was mounted) and
// an empty /etc/netns/NODE.
func removeFiles(lab string, nodes []*topology.Node) error {
	var errs []error
	for _, n := range nodes {
		kernel.RemoveStale(n.Name)
	}
	if dirs, err := os.ReadDir(kernel.HostsDir); err == nil {
		for _, d := range dirs {
			if strings.HasPrefix(d.Name(), ".") {
				continue // the shared copies, below
			}
			if _, err := kernel.RemoveHosts(d.Name(), plan.HostsMarker+lab+"\n"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, kernel.RemoveSharedHosts(lab))
	for _, n := range nodes {
		kernel.RemoveStaleHostsDir(n.Name)
	}
	return errors.Join(errs...)
}

// restoreHost puts back every host sysctl the lab recorded, or hands the
// old value over to a lab that still needs the setting.
func (o Options) restoreHost(lab string, host *kernel.NS) (restored []string, handed []Handover, err error) {
	rec, err := o.readRecord(lab)
	if err != nil {
		return nil, nil, err
	}
	return o.restoreRecorded(lab, host, rec)
}

// restoreRecorded is restoreHost for the sysctls in rec.
func (o Options) restoreRecorded(lab string, host *kernel.NS, rec *hostRecord) (restored []string, handed []Handover, err error) {
	keys := make([]string, 0, len(rec.Sysctls))
	for k := range rec.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if others := o.handOver(lab, host, k, rec.Sysctls[k]); others != nil {
			handed = append(handed, Handover{Key: k, Labs: others})
			continue
		}
		if _, _, err := host.SetSysctl(k, rec.Sysctls[k]); err != nil {
			errs = append(errs, err)
			continue
		}
		restored = append(restored, k+"="+rec.Sysctls[k])
	}
	return restored, handed, errors.Join(errs...)
}

// handOver checks whether another lab still relies on the host sysctl key:
// any lab that recorded it is up and set it too. If so the setting stays,
// and every such lab whose record holds the value the setting has now
// (it came up while this lab held it) takes old, the value this lab found,
// to put back when the last of them goes down. Two labs that came up at
// once may both have recorded the original value; neither then puts it
// back while the other is up. It returns the other labs' names, or nil
// when there are none and the caller puts old back itself.
func (o Options) handOver(lab string, host *kernel.NS, key, old string) []string {
	now, err := host.Sysctl(key)
	if err != nil {
		return nil
	}
	entries, _ := os.ReadDir(o.stateDir())
	var others []string
	for _, e := range entries {
		other := e.Name()
		if !e.IsDir() || other == lab {
			continue
		}
		if rec, err := o.readRecord(other); err != nil {
			continue
		} else if _, ok := rec.Sysctls[key]; !ok {
			continue
		}
		others = append(others, other)
		lo := o
		lo.LockTimeout, lo.Waiting = 10*time.Second, nil
		unlock, err := lo.lock(context.Background(), other)
		if err != nil {
			continue // it is busy; it keeps the value it recorded
		}
		if rec, err := o.readRecord(other); err == nil && rec.Sysctls[key] == now && now != old {
			rec.Sysctls[key] = old
			o.writeRecord(other, rec)
		}
		unlock()
	}
	return others
}

// manyHostVeths is the number of veth ends in the host past which down
// lets them go with their namespaces instead of deleting each.
const manyHostVeths = 16

func veths(links []netlink.Link) int {
	n := 0
	for _, l := range links {
		if l.Type() == "veth" {
			n++
		}
	}
	return n
}

// deleteHostLinks deletes the lab's links in the host, veth ends before
// bridges, so no port is left dangling on a bridge that is about to go.
func deleteHostLinks(host *kernel.NS, links []netlink.Link, res *DownResult) error {
	sort.SliceStable(links, func(i, j int) bool { return links[i].Type() != "bridge" && links[j].Type() == "bridge" })
	var errs []error
	for _, l := range links {
		if err := host.DeleteLink(l); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Links = append(res.Links, l.Attrs().Name)
	}
	return errors.Join(errs...)
}

// awaitHostLinks waits (30 s at most) for the host's veth ends to vanish
// with the namespaces of their peers, then deletes what is left: bridges,
// and ends whose peer was not in a lab namespace.
func awaitHostLinks(host *kernel.NS, m string, before []netlink.Link, res *DownResult) error {
	deadline := time.Now().Add(30 * time.Second)
	var left []netlink.Link
	for {
		now, err := host.MarkedLinks(m)
		if err != nil {
			return err
		}
		left = now
		if veths(now) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	still := map[string]bool{}
	for _, l := range left {
		still[l.Attrs().Name] = true
	}
	for _, l := range before {
		if !still[l.Attrs().Name] {
			res.Links = append(res.Links, l.Attrs().Name)
		}
	}
	return deleteHostLinks(host, left, res)
}

// bigFirst orders names so that the nodes with the most interfaces go
// first. When a namespace goes, the kernel destroys its veth ends and their
// peers; each peer destroyed in a router makes the kernel flush that
// router's routing table, so a star's hosts torn down before their router
// cost a walk of its whole table each, while the router torn down first
// takes all its cables with it at once and leaves the hosts nearly empty.
func bigFirst(names []string, t *topology.Topology) {
	ifaces := func(name string) int {
		if n := t.Node(name); n != nil {
			return len(n.Interfaces) + len(n.Bridges)
		}
		return 0
	}
	slices.SortStableFunc(names, func(a, b string) int { return ifaces(b) - ifaces(a) })
}

// heldLimit is how many namespaces deleteNamespaces may hold open: the
// open-file limit less a margin for everything else.
func heldLimit() int {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return max(0, int(l.Cur)-64)
}

// deleteNamespaces removes, on parallel workers, the named namespaces that
// carry mark. Unmounts wait for an RCU grace period each; in parallel they
// share them.
//
// The first namespace (the biggest, see bigFirst) goes at once; the others
// are held open until all are unmounted and then let go together. The
// kernel frees dead namespaces in batches on one worker, and each batch
// waits for grace periods of its own: hosts dying one by one while the
// router's teardown runs made a thousand-host star take 0.35 or 0.6 s to
// free by chance, held and let go together it takes 0.35 s every time.
// Only as many are held as open files allow.
//
// A namespace recorded by up with the same identity is the lab's without
// entering it to read its mark. progress, when set, is told the number
// removed after each; it must not block.
func deleteNamespaces(names []string, m string, known map[string]uint64, progress func(int)) ([]string, error) {
	var (
		mu   sync.Mutex
		gone []string
		errs []error
		wg   sync.WaitGroup
	)
	next := make(chan string)
	holdable := heldLimit()
	var held []int
	for range min(32, max(1, len(names))) { // unmounts mostly wait for RCU grace periods, which parallel ones share
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range next {
				if id, err := kernel.NamespaceID(name); err != nil || id == 0 || id != known[name] {
					got, _, err := kernel.NamespaceMark(name)
					if err != nil || got != m {
						continue
					}
				}
				fd := -1
				if name != names[0] {
					mu.Lock()
					if len(held) < holdable {
						fd, _ = unix.Open(filepath.Join(kernel.NetnsDir, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
						if fd >= 0 {
							held = append(held, fd)
						}
					}
					mu.Unlock()
				}
				err := kernel.DeleteNamed(name)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					gone = append(gone, name)
					if progress != nil {
						progress(len(gone))
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, n := range names {
		next <- n
	}
	close(next)
	wg.Wait()
	for _, fd := range held {
		unix.Close(fd)
	}
	sort.Strings(gone)
	return gone, errors.Join(errs...)
}
