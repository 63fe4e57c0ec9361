package kernel

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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
// the wanted values (zero values are left alone).
func (ns *NS) ensureLinkAttrs(l netlink.Link, mtu int, mac net.HardwareAddr) (bool, error) {
	changed := false
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

// WriteHosts writes /etc/netns/NODE/hosts unless it holds content. An
// existing file that does not start with marker is someone else's.
func WriteHosts(node string, content []byte, marker string) (bool, error) {
	path := filepath.Join(HostsDir, node, "hosts")
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, content) {
		return false, nil
	}
	if err == nil && !bytes.HasPrefix(old, []byte(marker)) {
		return false, &ClashError{Kind: "file", Node: node, Name: path}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, &OpError{Op: "write hosts", Node: node, Err: err}
	}
	tmp := path + ".nsrouter"
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		return false, &OpError{Op: "write hosts", Node: node, Err: err}
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, &OpError{Op: "write hosts", Node: node, Err: err}
	}
	return true, nil
}

// RemoveHosts removes /etc/netns/NODE/hosts if it starts with marker, and
// the folder if that leaves it empty.
func RemoveHosts(node, marker string) (bool, error) {
	dir := filepath.Join(HostsDir, node)
	path := filepath.Join(dir, "hosts")
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		removeHostsLeftover(dir, marker)
		return false, nil
	}
	if err != nil || !bytes.HasPrefix(old, []byte(marker)) {
		return false, err
	}
	if err := os.Remove(path); err != nil {
		return false, &OpError{Op: "remove hosts", Node: node, Err: err}
	}
	os.Remove(dir) // only succeeds when empty
	return true, nil
}

// removeHostsLeftover cleans up after a WriteHosts that was killed before
// its rename: the temporary file, if it is the lab's, and then the folder
// if that leaves it empty. A folder that was empty already is left alone
// unless the caller knows the node is the lab's (RemoveStaleHostsDir).
func removeHostsLeftover(dir, marker string) {
	tmp := filepath.Join(dir, "hosts.nsrouter")
	if b, err := os.ReadFile(tmp); err == nil && bytes.HasPrefix(b, []byte(marker)) {
		os.Remove(tmp)
		os.Remove(dir) // only succeeds when empty
	}
}

// RemoveStaleHostsDir removes /etc/netns/NODE when it is empty: what a
// WriteHosts killed between making the folder and writing the file leaves.
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
