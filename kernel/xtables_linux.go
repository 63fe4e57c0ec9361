package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket options of ip_tables and ip6_tables (same numbers in both).
const (
	xtSoGetInfo     = 64 // IPT_SO_GET_INFO
	xtSoGetEntries  = 65 // IPT_SO_GET_ENTRIES
	xtSoSetReplace  = 64 // IPT_SO_SET_REPLACE
	xtSoAddCounters = 65 // IPT_SO_SET_ADD_COUNTERS
	xtTableNameLen  = 32
	xtCounterSize   = 16 // struct xt_counters
)

// legacyFamily is one of the two legacy tables the tool may edit.
type legacyFamily struct {
	layout  xtLayout
	family  string // as in ForeignChain
	domain  int
	level   int
	names   string // which tables are loaded
	bridged string // sysctl that sends bridged frames through it
}

var (
	legacyIPv4 = legacyFamily{xtIPv4, "ip", unix.AF_INET, unix.SOL_IP, "ip_tables_names", "net.bridge.bridge-nf-call-iptables"}
	legacyIPv6 = legacyFamily{xtIPv6, "ip6", unix.AF_INET6, unix.SOL_IPV6, "ip6_tables_names", "net.bridge.bridge-nf-call-ip6tables"}
)

// loaded reports whether the family's filter table exists in the calling
// thread's namespace. Asking the kernel for a table that is not there
// would load it, so the list in /proc is read instead.
func (f legacyFamily) loaded() bool {
	b, err := os.ReadFile("/proc/thread-self/net/" + f.names)
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if string(line) == "filter" {
			return true
		}
	}
	return false
}

func (f legacyFamily) chain() ForeignChain {
	return ForeignChain{Family: f.family, Table: "filter", Chain: "FORWARD", Legacy: true}
}

// xtLock takes the lock iptables-legacy holds while it changes a table
// (XTABLES_LOCKFILE, or /run/xtables.lock), so the two never write over
// each other. It waits up to ten seconds.
func xtLock() (unlock func(), err error) {
	path := os.Getenv("XTABLES_LOCKFILE")
	if path == "" {
		path = "/run/xtables.lock"
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("xtables lock %s: %w", path, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("xtables lock %s: %w", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getsockopt(fd, level, opt int, buf []byte) (int, error) {
	n := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func setsockopt(fd, level, opt int, buf []byte) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// read fetches the filter table over sock.
func (f legacyFamily) read(sock int) (*xtTable, error) {
	info := make([]byte, 84) // struct ipt_getinfo
	copy(info, "filter")
	if _, err := getsockopt(sock, f.level, xtSoGetInfo, info); err != nil {
		return nil, fmt.Errorf("get info: %w", err)
	}
	ne := binary.NativeEndian
	t := &xtTable{layout: f.layout, validHooks: ne.Uint32(info[32:])}
	for h := 0; h < xtHooks; h++ {
		t.hookEntry[h] = ne.Uint32(info[36+4*h:])
		t.underflow[h] = ne.Uint32(info[56+4*h:])
	}
	num, size := ne.Uint32(info[76:]), ne.Uint32(info[80:])
	buf := make([]byte, 40+int(size)) // struct ipt_get_entries
	copy(buf, "filter")
	ne.PutUint32(buf[32:], size)
	if _, err := getsockopt(sock, f.level, xtSoGetEntries, buf); err != nil {
		return nil, fmt.Errorf("get entries: %w", err)
	}
	entries, err := parseXT(f.layout, buf[40:])
	if err != nil {
		return nil, err
	}
	if len(entries) != int(num) {
		return nil, fmt.Errorf("table changed while read: %d entries, expected %d", len(entries), num)
	}
	t.entries = entries
	return t, nil
}

// readOnly fetches the filter table, to look at, without the lock.
func (f legacyFamily) readOnly() (*xtTable, error) {
	sock, err := unix.Socket(f.domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, err
	}
	defer unix.Close(sock)
	return f.read(sock)
}

// write replaces the table with ed and carries every old entry's counters
// over to its new place, as iptables-legacy does.
func (f legacyFamily) write(sock int, t *xtTable, ed xtEdit) error {
	ne := binary.NativeEndian
	old := make([]byte, xtCounterSize*len(t.entries))
	var pin runtime.Pinner
	pin.Pin(&old[0])
	defer pin.Unpin()
	repl := make([]byte, 96+len(ed.blob)) // struct ipt_replace
	copy(repl, "filter")
	ne.PutUint32(repl[32:], t.validHooks)
	ne.PutUint32(repl[36:], uint32(len(ed.from)))
	ne.PutUint32(repl[40:], uint32(len(ed.blob)))
	for h := 0; h < xtHooks; h++ {
		ne.PutUint32(repl[44+4*h:], ed.hookEntry[h])
		ne.PutUint32(repl[64+4*h:], ed.underflow[h])
	}
	ne.PutUint32(repl[84:], uint32(len(t.entries)))
	ne.PutUint64(repl[88:], uint64(uintptr(unsafe.Pointer(&old[0]))))
	copy(repl[96:], ed.blob)
	if err := setsockopt(sock, f.level, xtSoSetReplace, repl); err != nil {
		return fmt.Errorf("replace table: %w", err)
	}
	add := make([]byte, 40+xtCounterSize*len(ed.from)) // struct xt_counters_info
	copy(add, "filter")
	ne.PutUint32(add[32:], uint32(len(ed.from)))
	for i, from := range ed.from {
		if from >= 0 {
			copy(add[40+xtCounterSize*i:], old[xtCounterSize*from:xtCounterSize*(from+1)])
		}
	}
	if err := setsockopt(sock, f.level, xtSoAddCounters, add); err != nil {
		return fmt.Errorf("restore counters: %w", err)
	}
	return nil
}

// edit reads the filter table, lets change rebuild it, and writes it back
// if change says so. A table changed by someone else between the read and
// the write (EAGAIN) is read again, a few times.
func (f legacyFamily) edit(change func(*xtTable) (xtEdit, bool)) (bool, error) {
	unlock, err := xtLock()
	if err != nil {
		return false, err
	}
	defer unlock()
	sock, err := unix.Socket(f.domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return false, err
	}
	defer unix.Close(sock)
	for try := 0; ; try++ {
		t, err := f.read(sock)
		if err != nil {
			return false, err
		}
		ed, ok := change(t)
		if !ok {
			return false, nil
		}
		err = f.write(sock, t, ed)
		if errors.Is(err, unix.EAGAIN) && try < 5 {
			continue
		}
		return err == nil, err
	}
}

// legacyEnsure puts rules at the head of the legacy FORWARD chains whose
// policy is DROP and which see the traffic: routed traffic always,
// bridged frames only where br_netfilter sends them.
func (ns *NS) legacyEnsure(rules []xtRule, routed bool) (chains []ForeignChain, changed bool, err error) {
	var errs []error
	err = ns.Do(func() error {
		for _, f := range legacySeeing(routed) {
			drops := false
			c, err := f.edit(func(t *xtTable) (xtEdit, bool) {
				if drops = t.forwardDrops(); !drops {
					return xtEdit{}, false
				}
				return t.ensure(rules)
			})
			if drops {
				chains = append(chains, f.chain())
			}
			changed = changed || c
			if err != nil {
				errs = append(errs, fmt.Errorf("%s filter FORWARD: %w", f.layout.tool, err))
			}
		}
		return nil
	})
	if err == nil {
		err = errors.Join(errs...)
	}
	if err != nil {
		err = &OpError{Op: "add rules to legacy forward chains", Node: ns.Name, Err: err}
	}
	return chains, changed, err
}

// legacySeeing returns, in the calling thread's namespace, the legacy
// families whose filter table is loaded and sees the traffic: routed
// traffic (the uplink's, IPv4 only) always, bridged frames only where
// br_netfilter sends them.
func legacySeeing(routed bool) []legacyFamily {
	var out []legacyFamily
	for _, f := range []legacyFamily{legacyIPv4, legacyIPv6} {
		if !f.loaded() || (routed && f.family != "ip") {
			continue
		}
		if v, _ := readSysctl(f.bridged); !routed && v != "1" {
			continue
		}
		out = append(out, f)
	}
	return out
}

// legacyRemove deletes the lab's entries from both legacy filter tables.
func (ns *NS) legacyRemove(mark string) (int, error) {
	return ns.legacyRemoveIf(markedBy(mark))
}

// legacyRemoveIf deletes the entries whose comment matches from both
// legacy filter tables.
func (ns *NS) legacyRemoveIf(match func(string) bool) (int, error) {
	n := 0
	var errs []error
	err := ns.Do(func() error {
		for _, f := range []legacyFamily{legacyIPv4, legacyIPv6} {
			if !f.loaded() {
				continue
			}
			k := 0
			_, err := f.edit(func(t *xtTable) (ed xtEdit, ok bool) {
				ed, k = t.removeIf(match)
				return ed, k > 0
			})
			if err == nil {
				n += k
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s filter: %w", f.layout.tool, err))
			}
		}
		return nil
	})
	if err == nil {
		err = errors.Join(errs...)
	}
	if err != nil {
		return n, &OpError{Op: "remove rules from legacy tables", Node: ns.Name, Err: err}
	}
	return n, nil
}

// legacyComments lists the comments in the legacy filter tables that
// start with prefix followed by a space (or, for a prefix ending in a
// colon, by anything), each once.
func (ns *NS) legacyComments(prefix string) []string {
	want := prefix + " "
	if strings.HasSuffix(prefix, ":") {
		want = prefix
	}
	var out []string
	seen := map[string]bool{}
	_ = ns.Do(func() error {
		for _, f := range []legacyFamily{legacyIPv4, legacyIPv6} {
			if !f.loaded() {
				continue
			}
			t, err := f.readOnly()
			if err != nil {
				continue
			}
			for _, e := range t.entries {
				c := f.layout.comment(e.b)
				if strings.HasPrefix(c, want) && !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
		}
		return nil
	})
	return out
}

// legacyMissing returns the comments of rules that legacyEnsure would add.
func (ns *NS) legacyMissing(rules []xtRule, routed bool) []string {
	var out []string
	_ = ns.Do(func() error {
		for _, f := range legacySeeing(routed) {
			t, err := f.readOnly()
			if err != nil || !t.forwardDrops() {
				continue
			}
			for _, r := range t.missing(rules) {
				out = append(out, r.Comment)
			}
		}
		return nil
	})
	return out
}
