package kernel

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// linkOwned returns the link called name in ns if it carries mark, nil if
// there is none, and a *ClashError if a link of that name belongs to
// someone else.
func (ns *NS) linkOwned(name, mark string) (netlink.Link, error) {
	l, err := ns.nl.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, &OpError{Op: "look up link", Node: ns.Name, Iface: name, Err: err}
	}
	// In a lab namespace everything is the lab's; only the host has
	// interfaces of others.
	if ns.Name == "" && l.Attrs().Alias != mark {
		return nil, &ClashError{Kind: "interface", Node: ns.label(), Name: name, Owner: l.Attrs().Alias}
	}
	return l, nil
}

// CheckFree reports a *ClashError when name is taken in ns by something
// that does not carry mark.
func (ns *NS) CheckFree(name, mark string) error {
	_, err := ns.linkOwned(name, mark)
	return err
}

// BridgeOptions are the settings of a lab bridge.
type BridgeOptions struct {
	MAC      net.HardwareAddr
	Snooping bool // IGMP/MLD snooping
	// Fast: the fast profile's packet sizes, which their own step sets;
	// without it an existing bridge's sizes go back to the defaults.
	Fast bool
}

// EnsureBridge creates the bridge (`ip link add NAME type bridge
// mcast_snooping 0|1`), marks it and sets it up; an existing bridge of the
// lab keeps its ports and gets the settings asked for.
func (ns *NS) EnsureBridge(name, mark string, o BridgeOptions) (created bool, err error) {
	mac, snooping := o.MAC, o.Snooping
	l, err := ns.linkOwned(name, mark)
	if err != nil {
		return false, err
	}
	if l != nil {
		if l.Type() != "bridge" {
			return false, &OpError{Op: "ensure bridge", Node: ns.Name, Iface: name,
				Err: fmt.Errorf("the lab's interface is a %s, not a bridge", l.Type())}
		}
		changed, err := ns.ensureLinkAttrs(l, 0, mac, !o.Fast)
		if err != nil {
			return changed, err
		}
		if b, ok := l.(*netlink.Bridge); ok && (b.MulticastSnooping == nil || *b.MulticastSnooping != snooping) {
			// Only the one setting: the whole link as read back holds
			// attributes the kernel refuses to be sent again.
			only := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
			only.Index, only.Name = l.Attrs().Index, l.Attrs().Name
			if err := ns.nl.BridgeSetMcastSnoop(only, snooping); err != nil {
				return changed, &OpError{Op: "set multicast snooping", Node: ns.Name, Iface: name, Err: err}
			}
			changed = true
		}
		if l.Attrs().Flags&netFlagUp != 0 {
			return changed, nil
		}
		return true, ns.setUp(l, false)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs(), MulticastSnooping: &snooping}
	br.Name, br.HardwareAddr = ns.bornName(name, mark), mac
	if err := ns.nl.LinkAdd(br); err != nil {
		return false, &OpError{Op: "create bridge", Node: ns.Name, Iface: name, Err: err}
	}
	if ns.Name == "" { // in a lab namespace everything is the lab's: no mark
		if err := ns.adopt(br.Name, name, mark); err != nil {
			return true, err
		}
	}
	l, err = ns.nl.LinkByName(name)
	if err == nil {
		err = ns.nl.LinkSetUp(l)
	}
	if err != nil {
		return true, &OpError{Op: "set up bridge", Node: ns.Name, Iface: name, Err: err}
	}
	return true, nil
}

// bornName is the name an interface is created under. In a lab namespace
// that is its own name: everything there is the lab's. In the host, where
// the alias that marks it cannot be set in the same request, it is first
// a temporary name that names the lab (see TempName), renamed once the
// alias is set, so no instant leaves an unmarked interface of the lab in
// the host.
func (ns *NS) bornName(name, mark string) string {
	if ns.Name != "" {
		return name
	}
	lab, _ := LabOfMark(mark)
	return TempName(lab)
}

// adopt marks the interface born as born and gives it its final name.
func (ns *NS) adopt(born, name, mark string) error {
	l, err := ns.nl.LinkByName(born)
	if err == nil {
		err = ns.nl.LinkSetAlias(l, mark)
	}
	if err == nil && born != name {
		err = ns.nl.LinkSetName(l, name)
	}
	if err != nil {
		return &OpError{Op: "mark link", Node: ns.Name, Iface: name, Err: err}
	}
	return nil
}

// tempPrefix starts the temporary names of host interfaces. User names
// cannot contain '~' (the topology layer refuses it), so they never clash.
const tempPrefix = "nsr~"

// TempName returns a fresh temporary interface name for lab:
// "nsr~" + 6 hex digits of the lab's hash + "~" + 4 random hex digits.
func TempName(lab string) string {
	return fmt.Sprintf("%s%s~%04x", tempPrefix, labHash(lab), rand.IntN(1<<16))
}

// IsTempName reports whether name is a temporary name of lab's.
func IsTempName(name, lab string) bool {
	return strings.HasPrefix(name, tempPrefix+labHash(lab)+"~")
}

func labHash(lab string) string {
	h := fnv.New32a()
	h.Write([]byte(lab))
	return fmt.Sprintf("%06x", h.Sum32()&0xffffff)
}

// VethEnd is one end of a veth pair: a namespace, a name, and optionally
// the bridge it joins.
type VethEnd struct {
	NS     *NS
	Name   string
	Master string
	MTU    int // 0: the default
	MAC    net.HardwareAddr
	Fast   bool // the fast profile's packet sizes, set by their own step
}

// EnsureVeth creates a veth pair with each end directly in its namespace
// (`ip link add A netns X type veth peer B netns Y`), marks both ends and
// enslaves them to their bridges. The request goes through a's namespace,
// so a is created with its master already set. If a exists and is the
// lab's, the pair is kept; a half pair left by an interruption is replaced.
//
// With fresh, both ends are in namespaces this run created, so there is
// nothing to look for first.
func EnsureVeth(a, b VethEnd, mark string, fresh bool) (created bool, err error) {
	var la, lb netlink.Link
	if !fresh {
		if la, err = a.NS.linkOwned(a.Name, mark); err != nil {
			return false, err
		}
		if lb, err = b.NS.linkOwned(b.Name, mark); err != nil {
			return false, err
		}
	}
	if la != nil && lb != nil {
		ca, erra := a.NS.ensureLinkAttrs(la, a.MTU, a.MAC, !a.Fast)
		cb, errb := b.NS.ensureLinkAttrs(lb, b.MTU, b.MAC, !b.Fast)
		return ca || cb, errors.Join(erra, errb, a.NS.ensureMaster(la, a.Master), b.NS.ensureMaster(lb, b.Master))
	}
	for _, half := range []struct {
		ns *NS
		l  netlink.Link
	}{{a.NS, la}, {b.NS, lb}} {
		if half.l != nil {
			if err := half.ns.nl.LinkDel(half.l); err != nil {
				return false, &OpError{Op: "remove half veth", Node: half.ns.Name, Iface: half.l.Attrs().Name, Err: err}
			}
		}
	}
	bornA, bornB := a.NS.bornName(a.Name, mark), b.NS.bornName(b.Name, mark)
	v := &netlink.Veth{LinkAttrs: netlink.NewLinkAttrs(), PeerName: bornB, PeerTxQLen: -1,
		PeerNamespace: netlink.NsFd(b.NS.fd), PeerMTU: uint32(b.MTU), PeerHardwareAddr: b.MAC}
	v.Name, v.MTU, v.HardwareAddr = bornA, a.MTU, a.MAC
	if a.Master != "" && bornA == a.Name {
		m, err := a.NS.nl.LinkByName(a.Master)
		if err != nil {
			return false, &OpError{Op: "find bridge", Node: a.NS.Name, Iface: a.Master, Err: err}
		}
		v.MasterIndex = m.Attrs().Index
	}
	if err := a.NS.nl.LinkAdd(v); err != nil {
		return false, &OpError{Op: "create veth", Node: a.NS.Name, Iface: a.Name,
			Err: fmt.Errorf("peer %s:%s: %w", b.NS.label(), b.Name, err)}
	}
	for _, end := range []struct {
		VethEnd
		born string
	}{{a, bornA}, {b, bornB}} {
		if end.NS.Name == "" {
			if err := end.NS.adopt(end.born, end.Name, mark); err != nil {
				return true, err
			}
		}
		if end.Master == "" || (end.born == a.Name && end.NS == a.NS) {
			continue // no bridge, or born attached to it
		}
		l, err := end.NS.nl.LinkByName(end.Name)
		if err != nil {
			return true, &OpError{Op: "look up link", Node: end.NS.Name, Iface: end.Name, Err: err}
		}
		if err := end.NS.ensureMaster(l, end.Master); err != nil {
			return true, err
		}
	}
	return true, nil
}

func (ns *NS) ensureMaster(l netlink.Link, master string) error {
	if master == "" {
		return nil
	}
	m, err := ns.nl.LinkByName(master)
	if err != nil {
		return &OpError{Op: "find bridge", Node: ns.Name, Iface: master, Err: err}
	}
	if l.Attrs().MasterIndex == m.Attrs().Index {
		return nil
	}
	if err := ns.nl.LinkSetMasterByIndex(l, m.Attrs().Index); err != nil {
		return &OpError{Op: "attach to bridge " + master, Node: ns.Name, Iface: l.Attrs().Name, Err: err}
	}
	return nil
}

// SetUp brings the interface up (`ip link set NAME up`) unless it is.
func (ns *NS) SetUp(name string, noLL6 bool) (changed bool, err error) {
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		return false, &OpError{Op: "look up link", Node: ns.Name, Iface: name, Err: err}
	}
	if l.Attrs().Flags&netFlagUp != 0 {
		return false, nil
	}
	return true, ns.setUp(l, noLL6)
}

// SetDown takes the interface down (`ip link set NAME down`) unless it is.
func (ns *NS) SetDown(name string) (changed bool, err error) {
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		return false, &OpError{Op: "look up link", Node: ns.Name, Iface: name, Err: err}
	}
	if l.Attrs().Flags&netFlagUp == 0 {
		return false, nil
	}
	if err := ns.nl.LinkSetDown(l); err != nil {
		return false, &OpError{Op: "set down", Node: ns.Name, Iface: name, Err: err}
	}
	return true, nil
}

// setUp brings a link up. With noLL6 its IPv6 address generation is set
// to none first, so it comes up without a link-local address (the kernel
// refuses that setting when a link is created).
func (ns *NS) setUp(l netlink.Link, noLL6 bool) error {
	if noLL6 {
		if err := ns.nl.LinkSetIP6AddrGenMode(l, nl.IN6_ADDR_GEN_MODE_NONE); err != nil &&
			!errors.Is(err, unix.EAFNOSUPPORT) { // IPv6 is off in the namespace: nothing to avoid
			return &OpError{Op: "turn off IPv6 address generation", Node: ns.Name, Iface: l.Attrs().Name, Err: err}
		}
	}
	if err := ns.nl.LinkSetUp(l); err != nil {
		return &OpError{Op: "set link up", Node: ns.Name, Iface: l.Attrs().Name, Err: err}
	}
	return nil
}

// MarkedLinks returns the links in ns that carry mark, and those still
// under a temporary name of the mark's lab (an interrupted run).
func (ns *NS) MarkedLinks(mark string) ([]netlink.Link, error) {
	links, err := dump(func() ([]netlink.Link, error) { return ns.nl.LinkList() })
	if err != nil {
		return nil, &OpError{Op: "list links", Node: ns.Name, Err: err}
	}
	lab, _ := LabOfMark(mark)
	var out []netlink.Link
	for _, l := range links {
		if l.Attrs().Alias == mark || IsTempName(l.Attrs().Name, lab) {
			out = append(out, l)
		}
	}
	return out, nil
}

// Links returns every link in ns.
func (ns *NS) Links() ([]netlink.Link, error) {
	links, err := dump(func() ([]netlink.Link, error) { return ns.nl.LinkList() })
	if err != nil {
		return nil, &OpError{Op: "list links", Node: ns.Name, Err: err}
	}
	return links, nil
}

// DeleteLink removes a link (`ip link del NAME`); a veth takes its peer
// with it.
func (ns *NS) DeleteLink(l netlink.Link) error {
	err := ns.nl.LinkDel(l)
	var notFound netlink.LinkNotFoundError
	if err != nil && !errors.As(err, &notFound) && !isNoDevice(err) {
		return &OpError{Op: "delete link", Node: ns.Name, Iface: l.Attrs().Name, Err: err}
	}
	return nil
}

// WaitUp waits, until deadline, for the named interfaces to report their
// carrier (operational state up). A veth learns that its peer came up
// through the kernel's link watch, up to a second later, and a bridge
// drops what arrives on a port until then: a probe sent at once would be
// lost.
func (ns *NS) WaitUp(names []string, deadline time.Time) error {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for {
		links, err := dump(func() ([]netlink.Link, error) { return ns.nl.LinkList() })
		if err != nil {
			return &OpError{Op: "list links", Node: ns.Name, Err: err}
		}
		waiting := 0
		for _, l := range links {
			if want[l.Attrs().Name] && l.Attrs().OperState != netlink.OperUp {
				waiting++
			}
		}
		if waiting == 0 || time.Now().After(deadline) {
			return nil // past the deadline the ports are as up as they get
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// EnsureLinkLocal6 gives a link of a node with IPv6 its automatic
// link-local address back when an earlier run brought it up without one
// (the node had no IPv6 address then). Duplicate address detection goes
// off on the link first, as on the node's other links, then address
// generation back to EUI-64 through the link's sysctl: written there, not
// over netlink, the kernel makes the address on a link that is up.
func (ns *NS) EnsureLinkLocal6(name string) (changed bool, err error) {
	dir := "/proc/sys/net/ipv6/conf/" + name + "/"
	err = ns.Do(func() error {
		b, err := os.ReadFile(dir + "addr_gen_mode")
		if err != nil || strings.TrimSpace(string(b)) != "1" { // 1: none
			return nil // IPv6 off on the link, or it has its address
		}
		changed = true
		if err := os.WriteFile(dir+"accept_dad", []byte("0"), 0); err != nil {
			return err
		}
		return os.WriteFile(dir+"addr_gen_mode", []byte("0"), 0)
	})
	if err != nil {
		return changed, &OpError{Op: "turn IPv6 address generation back on", Node: ns.Name, Iface: name, Err: err}
	}
	return changed, nil
}
