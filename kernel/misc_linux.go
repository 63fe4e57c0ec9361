package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

// EnsureMTU sets the interface's MTU (`ip link set NAME mtu N`) unless it
// has it.
func (ns *NS) EnsureMTU(name string, mtu int) (bool, error) {
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		return false, &OpError{Op: "look up link", Node: ns.Name, Iface: name, Err: err}
	}
	if l.Attrs().MTU == mtu {
		return false, nil
	}
	if err := ns.nl.LinkSetMTU(l, mtu); err != nil {
		return false, &OpError{Op: "set mtu", Node: ns.Name, Iface: name, Err: err}
	}
	return true, nil
}

// ensureLinkAttrs brings an existing interface's MTU and MAC address to
// the wanted values (zero values are left alone). With resetSizes, its
// GSO/GRO packet sizes go back to the kernel's defaults: a veth end that
// has lost the fast profile (whose own step sets the fast sizes).
func (ns *NS) ensureLinkAttrs(l netlink.Link, mtu int, mac net.HardwareAddr, resetSizes bool) (bool, error) {
	changed := false
	if resetSizes && packetSizeSuffix(l.Attrs()) != "" {
		if _, _, err := ns.setPacketSizes(l, false); err != nil {
			return false, err
		}
		changed = true
	}
	if mtu != 0 && l.Attrs().MTU != mtu {
		if err := ns.nl.LinkSetMTU(l, mtu); err != nil {
			return changed, &OpError{Op: "set mtu", Node: ns.Name, Iface: l.Attrs().Name, Err: err}
		}
		changed = true
	}
	if mac != nil && !bytes.Equal(l.Attrs().HardwareAddr, mac) {
		if err := ns.nl.LinkSetHardwareAddr(l, mac); err != nil {
			return changed, &OpError{Op: "set mac", Node: ns.Name, Iface: l.Attrs().Name, Err: err}
		}
		changed = true
	}
	return changed, nil
}

// EnsureRule adds the policy routing rule (`ip rule add ...`) unless an
// identical one is there.
func (ns *NS) EnsureRule(r *netlink.Rule, text string) (bool, error) {
	have, err := dump(func() ([]netlink.Rule, error) { return ns.nl.RuleList(r.Family) })
	if err != nil {
		return false, &OpError{Op: "list rules", Node: ns.Name, Err: err}
	}
	for _, h := range have {
		if sameRule(h, *r) {
			return false, nil
		}
	}
	if err := ns.nl.RuleAdd(r); err != nil {
		return false, &OpError{Op: "add rule " + text, Node: ns.Name, Err: err}
	}
	return true, nil
}

func sameRule(a, b netlink.Rule) bool {
	netStr := func(n *net.IPNet) string {
		if n == nil {
			return ""
		}
		return n.String()
	}
	return a.Priority == b.Priority && a.Table == b.Table && a.Mark == b.Mark &&
		netStr(a.Src) == netStr(b.Src) && netStr(a.Dst) == netStr(b.Dst) &&
		a.IifName == b.IifName && a.OifName == b.OifName
}

// HostsDir is where `ip netns exec` finds per-namespace files.
const HostsDir = "/etc/netns"

// WriteSharedHosts writes the lab's hosts file (plan.SharedHostsPath)
// unless it holds content. The nodes' files are hard links to it: a
// thousand-node lab would otherwise write a thousand copies of 60 KB.
func WriteSharedHosts(path string, content []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, &OpError{Op: "write shared hosts file", Err: err}
	}
	tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		return false, &OpError{Op: "write shared hosts file", Err: err}
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, &OpError{Op: "write shared hosts file", Err: err}
	}
	return true, nil
}

// LinkHosts makes /etc/netns/NODE/hosts a hard link to shared, the lab's
// hosts file holding content, unless it is one already. An existing file
// that does not start with marker is someone else's. changed is false
// when only the link was new, not the content.
func LinkHosts(node, shared string, content []byte, marker string) (changed bool, err error) {
	path := filepath.Join(HostsDir, node, "hosts")
	if sameFile(path, shared) {
		return false, nil
	}
	changed = true
	if old, err := os.ReadFile(path); err == nil {
		if !bytes.HasPrefix(old, []byte(marker)) {
			return false, &ClashError{Kind: "file", Node: node, Name: path}
		}
		changed = !bytes.Equal(old, content)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, &OpError{Op: "write hosts", Node: node, Err: err}
	}
	tmp := path + ".nsrouter"
	os.Remove(tmp) // a link left by an interrupted run
	if err := os.Link(shared, tmp); err != nil {
		return false, &OpError{Op: "write hosts", Node: node, Err: err}
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, &OpError{Op: "write hosts", Node: node, Err: err}
	}
	return changed, nil
}

// sameFile reports whether a and b are the same file (hard links).
func sameFile(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Ino == sb.Ino && sa.Dev == sb.Dev
}

// RemoveSharedHosts removes the lab's shared hosts files (what the nodes'
// links point to, and any an interrupted write left), and the folder once
// no lab has one.
func RemoveSharedHosts(lab string) error {
	files, _ := filepath.Glob(filepath.Join(plan.SharedHostsDir, lab+"-*"))
	var errs []error
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	os.Remove(plan.SharedHostsDir) // only succeeds when empty
	return errors.Join(errs...)
}

// RemoveHosts removes /etc/netns/NODE/hosts if it starts with marker, and
// the folder if that leaves it empty.
func RemoveHosts(node, marker string) (bool, error) {
	dir := filepath.Join(HostsDir, node)
	path := filepath.Join(dir, "hosts")
	ours, err := startsWith(path, marker)
	if errors.Is(err, os.ErrNotExist) {
		removeHostsLeftover(dir, marker)
		return false, nil
	}
	if err != nil || !ours {
		return false, err
	}
	if err := os.Remove(path); err != nil {
		return false, &OpError{Op: "remove hosts", Node: node, Err: err}
	}
	os.Remove(dir) // only succeeds when empty
	return true, nil
}

// startsWith reports whether the file begins with prefix, reading no more
// than that: a big lab's hosts files hold a line per address.
func startsWith(path, prefix string) (bool, error) {
	head, err := readHead(path, len(prefix))
	return err == nil && string(head) == prefix, err
}

// readHead reads at most n bytes from the start of a file.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := io.ReadFull(f, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:k], err
}

// HostsLab names the lab whose marker (plan.HostsMarker) starts
// /etc/netns/NODE/hosts, or "" when none does.
func HostsLab(node string) string {
	head, err := readHead(filepath.Join(HostsDir, node, "hosts"), 256)
	if err != nil {
		return ""
	}
	first, _, _ := bytes.Cut(head, []byte("\n"))
	lab, _ := strings.CutPrefix(string(first), plan.HostsMarker)
	if lab == string(first) {
		return ""
	}
	return lab
}

// removeHostsLeftover cleans up after a LinkHosts that was killed before
// its rename: the temporary file, if it is the lab's, and then the folder
// if that leaves it empty. A folder that was empty already is left alone
// unless the caller knows the node is the lab's (RemoveStaleHostsDir).
func removeHostsLeftover(dir, marker string) {
	tmp := filepath.Join(dir, "hosts.nsrouter")
	if ours, _ := startsWith(tmp, marker); ours {
		os.Remove(tmp)
		os.Remove(dir) // only succeeds when empty
	}
}

// RemoveStaleHostsDir removes /etc/netns/NODE when it is empty: what a
// LinkHosts killed between making the folder and linking the file leaves.
// The caller names only nodes of the lab being removed.
func RemoveStaleHostsDir(node string) {
	dir := filepath.Join(HostsDir, node)
	if entries, err := os.ReadDir(dir); err == nil && len(entries) == 0 {
		os.Remove(dir)
	}
}

// DefaultRouteDev returns the interface of the namespace's IPv4 default
// route.
func (ns *NS) DefaultRouteDev() (string, error) {
	routes, err := dump(func() ([]netlink.Route, error) {
		return ns.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return "", &OpError{Op: "list routes", Node: ns.Name, Err: err}
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask) {
			l, err := ns.nl.LinkByIndex(r.LinkIndex)
			if err != nil {
				return "", &OpError{Op: "look up default route link", Node: ns.Name, Err: err}
			}
			return l.Attrs().Name, nil
		}
	}
	return "", errors.New("the host has no IPv4 default route; name the uplink's out interface")
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

// HasLink reports whether ns has an interface called name.
func (ns *NS) HasLink(name string) bool {
	_, err := ns.nl.LinkByName(name)
	return err == nil
}

// packetSizes are a link's largest GSO and GRO packets, IPv6 (which the
// kernel also applies to IPv4 up to 64 KiB) and IPv4, each with its
// setter. A size the kernel does not report (0) is one it does not have:
// GRO sizes came with Linux 5.19, the IPv4 ones with 6.3.
func packetSizes(h *netlink.Handle, a *netlink.LinkAttrs) []packetSize {
	return []packetSize{
		{"gso_max_size", false, a.GSOMaxSize, h.LinkSetGSOMaxSize},
		{"gro_max_size", false, a.GROMaxSize, h.LinkSetGROMaxSize},
		{"gso_ipv4_max_size", true, a.GSOIPv4MaxSize, h.LinkSetGSOIPv4MaxSize},
		{"gro_ipv4_max_size", true, a.GROIPv4MaxSize, h.LinkSetGROIPv4MaxSize},
	}
}

type packetSize struct {
	name string
	ipv4 bool
	have uint32
	set  func(netlink.Link, int) error
}

// want is the size a link with or without the fast profile should have.
// The profile raises the IPv4 sizes only: on Linux 6.18, IPv6 packets
// above 64 KiB (IPv6 BIG TCP) did not cross a lab router: TCP fell to
// almost nothing, with thousands of retransmissions.
func (p packetSize) want(fast bool) uint32 {
	if fast && p.ipv4 {
		return topology.FastPacketSize
	}
	return defaultPacketSize
}

// defaultPacketSize is the kernel's GSO and GRO limit on a new link.
const defaultPacketSize = 65536

// EnsurePacketSize gives the interface the fast profile's packet sizes
// (`ip link set NAME gso_ipv4_max_size N gro_ipv4_max_size N`). On a
// kernel without them it says so in note.
func (ns *NS) EnsurePacketSize(name string) (changed bool, note string, err error) {
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		return false, "", &OpError{Op: "look up link", Node: ns.Name, Iface: name, Err: err}
	}
	changed, missing, err := ns.setPacketSizes(l, true)
	if missing {
		note = fmt.Sprintf("%s:%s: this kernel cannot pass IPv4 packets above 64 KiB (gso_ipv4_max_size, Linux 6.3): the fast profile changes nothing there",
			ns.label(), name)
	}
	return changed, note, err
}

// setPacketSizes gives l the packet sizes of its profile and reports
// whether the kernel lacks the IPv4 ones.
func (ns *NS) setPacketSizes(l netlink.Link, fast bool) (changed, missingIPv4 bool, err error) {
	for _, p := range packetSizes(ns.nl, l.Attrs()) {
		switch {
		case p.have == 0:
			missingIPv4 = missingIPv4 || p.ipv4
		case p.have != p.want(fast):
			if err := p.set(l, int(p.want(fast))); err != nil {
				return changed, missingIPv4, &OpError{Op: fmt.Sprintf("set %s %d", p.name, p.want(fast)), Node: ns.Name, Iface: l.Attrs().Name, Err: err}
			}
			changed = true
		}
	}
	return changed, missingIPv4, nil
}

// PacketProfile names a link's packet sizes: "" for the kernel's
// defaults, "fast" for the fast profile's, and the sizes themselves for
// anything else.
func PacketProfile(a *netlink.LinkAttrs) string {
	var sizes []string
	fast, plain := true, true
	for _, p := range packetSizes(nil, a) {
		if p.have == 0 {
			continue
		}
		fast = fast && p.have == p.want(true)
		plain = plain && p.have == p.want(false)
		sizes = append(sizes, fmt.Sprintf("%s %d", p.name, p.have))
	}
	switch {
	case plain:
		return ""
	case fast:
		return "fast"
	}
	return strings.Join(sizes, " ")
}

// packetSizeSuffix is PacketProfile for a link's fact: "" or " " and it.
func packetSizeSuffix(a *netlink.LinkAttrs) string {
	if p := PacketProfile(a); p != "" {
		return " " + p
	}
	return ""
}
