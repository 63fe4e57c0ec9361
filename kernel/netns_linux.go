// Package kernel applies plan steps to the running kernel over netlink and
// nftables netlink. It never runs ip, nft, iptables or sysctl.
package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named namespaces live, as with `ip netns`.
const NetnsDir = "/run/netns"

// Mark returns the ownership mark the tool puts on what it creates for lab:
// the alias of interfaces, the alias of lo in its namespaces, and the
// comment of rules it adds to chains it does not own.
func Mark(lab string) string { return "nsrouter:" + lab }

// LabOfMark returns the lab a mark names, and whether s is a mark at all.
func LabOfMark(s string) (string, bool) {
	const p = "nsrouter:"
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// NS is one network namespace with the handles bound to it: a netlink
// handle and an nftables connection. All link, address, route and rule
// work for the namespace goes through them, without switching threads.
type NS struct {
	Name string // node name; "" for the namespace the tool runs in
	fd   netns.NsHandle
	nl   *netlink.Handle
	nft  *nftables.Conn
	// links caches name lookups in namespaces this run created.
	links map[string]netlink.Link
	// addrs6 holds the namespace's IPv6 addresses by interface index, read
	// once by the first EnsureAddr that needs them (see relength6).
	addrs6 map[int][]netlink.Addr
}

// hostPath names the namespace the process started in. It is read through
// a descriptor opened at start-up: /proc/self/ns/net follows the main
// thread, and the main thread can be the one a locked goroutine moved
// into a lab namespace (Go parks such a main thread instead of ending it).
var hostPath = func() string {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "/proc/self/ns/net"
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd)
}()

// Host returns the namespace the process started in: the host of the lab.
func Host() (*NS, error) {
	fd, err := netns.GetFromPath(hostPath)
	if err != nil {
		return nil, fmt.Errorf("opening the host namespace: %w", err)
	}
	return bind("", fd)
}

// OpenNamed opens /run/netns/name.
func OpenNamed(name string) (*NS, error) {
	fd, err := netns.GetFromPath(filepath.Join(NetnsDir, name))
	if err != nil {
		return nil, &OpError{Op: "open namespace", Node: name, Err: err}
	}
	return bind(name, fd)
}

// bind opens the namespace's route socket. Other sockets (nftables,
// conntrack) are opened when first needed: most namespaces never need them.
func bind(name string, fd netns.NsHandle) (*NS, error) {
	h, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
	if err != nil {
		fd.Close()
		return nil, &OpError{Op: "open netlink socket", Node: name, Err: err}
	}
	return &NS{Name: name, fd: fd, nl: h}, nil
}

// conn returns the namespace's nftables connection, opening it on first
// use.
func (ns *NS) conn() *nftables.Conn {
	if ns.nft == nil {
		c, err := nftables.New(nftables.WithNetNSFd(int(ns.fd)))
		if err != nil {
			panic("nftables.New without options cannot fail: " + err.Error())
		}
		ns.nft = c
	}
	return ns.nft
}

// Close releases the namespace's handles; the namespace itself stays.
// The handles are cleared too: a closed netlink handle would otherwise
// quietly open new sockets in the caller's own namespace.
func (ns *NS) Close() {
	if ns == nil || ns.nl == nil {
		return
	}
	ns.nl.Close()
	ns.fd.Close()
	ns.nl, ns.nft = nil, nil
}

// Netlink returns the netlink handle bound to the namespace.
func (ns *NS) Netlink() *netlink.Handle { return ns.nl }

// Fd returns the namespace's file descriptor.
func (ns *NS) Fd() int { return int(ns.fd) }

// Do runs fn on a locked OS thread that has entered the namespace. The
// thread is never returned to the scheduler's pool: the goroutine exits
// with it locked, so Go discards it and no other goroutine can inherit the
// namespace, whatever fn did.
func (ns *NS) Do(fn func() error) error {
	return inThread(func() error {
		if err := unix.Setns(int(ns.fd), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering namespace %s: %w", ns.label(), err)
		}
		return fn()
	})
}

func inThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		done <- fn()
	}()
	return <-done
}

func (ns *NS) label() string {
	if ns.Name == "" {
		return "host"
	}
	return ns.Name
}

// CreateNamed makes a new network namespace mounted at /run/netns/name,
// with lo up and marked for lab. The mark is set before the namespace gets
// its name, so a namespace that carries the name always carries the mark.
func CreateNamed(name, lab string) (*NS, error) {
	target, err := prepareTarget(name)
	if err != nil {
		return nil, err
	}
	var ns *NS
	err = inThread(func() error {
		var err error
		ns, err = unshareHere(name, lab, target)
		return err
	})
	if err != nil {
		os.Remove(target)
		return nil, &OpError{Op: "create namespace", Node: name, Err: err}
	}
	return ns, nil
}

// prepareTarget makes the file a namespace is mounted on.
func prepareTarget(name string) (string, error) {
	if err := netnsDirOnce(); err != nil {
		return "", err
	}
	target := filepath.Join(NetnsDir, name)
	f, err := os.OpenFile(target, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if errors.Is(err, os.ErrExist) && IsStale(name) {
		f, err = os.Open(target) // an interrupted creation's empty file
	}
	if err != nil {
		return "", &OpError{Op: "create namespace", Node: name, Err: err}
	}
	f.Close()
	return target, nil
}

// unshareHere moves the calling (locked) thread into a new namespace,
// marks it, brings lo up and mounts it on target. The thread stays in the
// new namespace; the caller returns it or throws it away.
func unshareHere(name, lab, target string) (*NS, error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return nil, err
	}
	fd, err := netns.GetFromPath("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		fd.Close()
		return nil, err
	}
	ns := &NS{Name: name, fd: fd, nl: h}
	err = markAndUpLo(Mark(lab))
	if err == nil {
		err = unix.Mount("/proc/thread-self/ns/net", target, "none", unix.MS_BIND, "")
	}
	if err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// Creator makes namespaces from the calling goroutine's own locked thread,
// returning the thread home after each: a thread per namespace costs more
// than the switch back. If the switch back fails, the thread is tainted:
// Close leaves it locked, so it ends with the goroutine and is never
// reused.
type Creator struct {
	home    netns.NsHandle
	tainted bool
}

// ErrTainted says a Creator's thread could not return to its namespace;
// the goroutine that owns it must end.
var ErrTainted = errors.New("thread left in a lab namespace")

// NewCreator locks the calling goroutine to its thread.
func NewCreator() (*Creator, error) {
	runtime.LockOSThread()
	home, err := netns.GetFromPath("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	return &Creator{home: home}, nil
}

// Create makes the named namespace, as CreateNamed does.
func (c *Creator) Create(name, lab string) (*NS, error) {
	if c.tainted {
		return nil, ErrTainted
	}
	target, err := prepareTarget(name)
	if err != nil {
		return nil, err
	}
	ns, err := unshareHere(name, lab, target)
	if serr := unix.Setns(int(c.home), unix.CLONE_NEWNET); serr != nil {
		c.tainted = true
		return ns, fmt.Errorf("%w: %v", ErrTainted, serr)
	}
	if err != nil {
		os.Remove(target)
		return nil, &OpError{Op: "create namespace", Node: name, Err: err}
	}
	return ns, nil
}

// Close unlocks the thread, unless it is tainted.
func (c *Creator) Close() {
	if c == nil {
		return
	}
	c.home.Close()
	if !c.tainted {
		runtime.UnlockOSThread()
	}
}

// netnsDirOnce prepares /run/netns once per process.
var netnsDirOnce = sync.OnceValue(ensureNetnsDir)

// ensureNetnsDir makes /run/netns a shared mount point, as `ip netns add`
// does, so that namespaces mounted there are seen from other mount
// namespaces too.
func ensureNetnsDir() error {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", NetnsDir, err)
	}
	err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err = unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			err = unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
	if err != nil {
		return fmt.Errorf("making %s a shared mount: %w", NetnsDir, err)
	}
	return nil
}

// DeleteNamed unmounts and removes /run/netns/name. The kernel frees the
// namespace, and the interfaces in it, once nothing else holds it.
func DeleteNamed(name string) error {
	target := filepath.Join(NetnsDir, name)
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return &OpError{Op: "unmount namespace", Node: name, Err: err}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return &OpError{Op: "remove namespace", Node: name, Err: err}
	}
	return nil
}

// IsStale reports whether /run/netns/name is an empty file with no
// namespace mounted on it: what a creation interrupted between making the
// file and mounting the namespace leaves (ours or `ip netns add`'s). It is
// not a namespace, so it is no clash, and it is reused.
func IsStale(name string) bool {
	path := filepath.Join(NetnsDir, name)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		return false
	}
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type != unix.NSFS_MAGIC
}

// RemoveStale removes /run/netns/name if it is stale.
func RemoveStale(name string) bool {
	return IsStale(name) && os.Remove(filepath.Join(NetnsDir, name)) == nil
}

// NamespaceMark returns the mark on lo of the named namespace ("" when it
// carries none), and whether the namespace exists.
func NamespaceMark(name string) (string, bool, error) {
	if _, err := os.Lstat(filepath.Join(NetnsDir, name)); errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if IsStale(name) {
		return "", false, nil
	}
	ns, err := OpenNamed(name)
	if errors.Is(err, unix.EINVAL) {
		// A file that is not a namespace mount is someone else's.
		return "", true, nil
	}
	if err != nil {
		return "", true, err
	}
	defer ns.Close()
	lo, err := ns.nl.LinkByName("lo")
	if err != nil {
		return "", true, &OpError{Op: "read lo", Node: name, Err: err}
	}
	return lo.Attrs().Alias, true, nil
}

// ListNamed returns the names under /run/netns.
func ListNamed() ([]string, error) {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, nil
}

// NamespaceID returns the identity of the namespace mounted at
// /run/netns/name: the inode of its nsfs file, unique among living
// namespaces. It lets down recognise a namespace it recorded without
// entering it.
func NamespaceID(name string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(NetnsDir, name), &st); err != nil {
		return 0, err
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Join(NetnsDir, name), &fs); err != nil || fs.Type != unix.NSFS_MAGIC {
		return 0, errors.New("not a namespace")
	}
	return st.Ino, nil
}

// markAndUpLo sets lo's alias to mark and brings it up in one request, in
// the calling thread's namespace (`ip link set lo alias MARK up`): one trip
// under the kernel's rtnl lock per namespace instead of two. lo is always
// the first device of a new namespace.
func markAndUpLo(mark string) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = 1
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(mark)))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
