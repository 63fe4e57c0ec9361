package kernel

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const netFlagUp = net.FlagUp

func isNoDevice(err error) bool { return errors.Is(err, unix.ENODEV) }

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// EnsureAddr adds the address (`ip addr add P dev NAME`) unless the
// interface has it already. IPv6 addresses skip duplicate address
// detection: lab links are private cables whose addresses the file already
// proved unique, and DAD would hold them "tentative" for a second or more.
//
// It adds first and looks only when the kernel says the address exists:
// listing an interface's addresses dumps the whole namespace's, so looking
// first made a router of a thousand addresses list a million to find that
// nothing had changed. For IPv4 the kernel refuses only the same address
// with the same prefix length on the interface; for IPv6 the same address
// with any length, so the length is then checked, and an old length makes
// way for the new one (the file changed it).
func (ns *NS) EnsureAddr(name string, p netip.Prefix) (changed bool, err error) {
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		return false, &OpError{Op: "look up link", Node: ns.Name, Iface: name, Err: err}
	}
	err = ns.nl.AddrAdd(l, labAddr(p))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EEXIST) && p.Addr().Is4():
		return false, nil
	case errors.Is(err, unix.EEXIST):
		return ns.relength6(l, p)
	}
	return false, &OpError{Op: "add address " + p.String(), Node: ns.Name, Iface: name, Err: err}
}

// relength6 is EnsureAddr for an IPv6 address the interface has at some
// length: unchanged at p's length, else replaced by p.
//
// The namespace's IPv6 addresses are read once per handle and kept: the
// kernel lists addresses only by dumping all of them, and a dump per
// address made a re-run up quadratic in a dual-stack router's cables. The
// copy cannot mislead: this is reached only for an address the kernel just
// said exists, every address belongs to one cable, and one worker (holding
// this handle) ensures all of a cable's addresses.
func (ns *NS) relength6(l netlink.Link, p netip.Prefix) (changed bool, err error) {
	name, idx := l.Attrs().Name, l.Attrs().Index
	if ns.addrs6 == nil {
		all, err := dump(func() ([]netlink.Addr, error) { return ns.nl.AddrList(nil, netlink.FAMILY_V6) })
		if err != nil {
			return false, &OpError{Op: "list addresses", Node: ns.Name, Iface: name, Err: err}
		}
		ns.addrs6 = map[int][]netlink.Addr{}
		for _, a := range all {
			ns.addrs6[a.LinkIndex] = append(ns.addrs6[a.LinkIndex], a)
		}
	}
	for k, a := range ns.addrs6[idx] {
		if !a.IP.Equal(p.Addr().AsSlice()) {
			continue
		}
		if ones, _ := a.Mask.Size(); ones == p.Bits() {
			return false, nil
		}
		if err := ns.nl.AddrDel(l, &a); err != nil {
			return false, &OpError{Op: "delete address " + a.IPNet.String(), Node: ns.Name, Iface: name, Err: err}
		}
		ns.addrs6[idx] = append(ns.addrs6[idx][:k:k], ns.addrs6[idx][k+1:]...)
		break
	}
	if err := ns.nl.AddrAdd(l, labAddr(p)); err != nil {
		return false, &OpError{Op: "add address " + p.String(), Node: ns.Name, Iface: name, Err: err}
	}
	ns.addrs6[idx] = append(ns.addrs6[idx], netlink.Addr{IPNet: ipNet(p), LinkIndex: idx})
	return true, nil
}

// labAddr is the netlink form of a lab address. IPv6 ones skip duplicate
// address detection (see EnsureAddr).
func labAddr(p netip.Prefix) *netlink.Addr {
	addr := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	return addr
}

// AddAddr adds the address without looking first, for interfaces this run
// just created.
func (ns *NS) AddAddr(name string, p netip.Prefix) error {
	l, err := ns.link(name)
	if err != nil {
		return err
	}
	if err := ns.nl.AddrAdd(l, labAddr(p)); err != nil {
		return &OpError{Op: "add address " + p.String(), Node: ns.Name, Iface: name, Err: err}
	}
	return nil
}

// link looks an interface up by name, remembering the answer: in a
// namespace this run created, names do not change under it.
func (ns *NS) link(name string) (netlink.Link, error) {
	if l, ok := ns.links[name]; ok {
		return l, nil
	}
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		return nil, &OpError{Op: "look up link", Node: ns.Name, Iface: name, Err: err}
	}
	if ns.links == nil {
		ns.links = map[string]netlink.Link{}
	}
	ns.links[name] = l
	return l, nil
}

// remember caches an interface this run created, index and state known.
func (ns *NS) remember(l netlink.Link) {
	if ns.links == nil {
		ns.links = map[string]netlink.Link{}
	}
	ns.links[l.Attrs().Name] = l
}

// SetUpFresh brings up an interface this run created, unless it was
// created up.
func (ns *NS) SetUpFresh(name string, noLL6 bool) error {
	l, err := ns.link(name)
	if err != nil {
		return err
	}
	if l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	return ns.setUp(l, noLL6)
}

// AddrList lists an interface's addresses, both families.
func (ns *NS) AddrList(l netlink.Link) ([]netlink.Addr, error) {
	return dump(func() ([]netlink.Addr, error) { return ns.nl.AddrList(l, netlink.FAMILY_ALL) })
}
