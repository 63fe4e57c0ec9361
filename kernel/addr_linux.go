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
func (ns *NS) EnsureAddr(name string, p netip.Prefix) (changed bool, err error) {
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		return false, &OpError{Op: "look up link", Node: ns.Name, Iface: name, Err: err}
	}
	have, err := ns.nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return false, &OpError{Op: "list addresses", Node: ns.Name, Iface: name, Err: err}
	}
	for _, a := range have {
		if ones, _ := a.Mask.Size(); a.IP.Equal(p.Addr().AsSlice()) && ones == p.Bits() {
			return false, nil
		}
	}
	addr := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := ns.nl.AddrAdd(l, addr); err != nil {
		return false, &OpError{Op: "add address " + p.String(), Node: ns.Name, Iface: name, Err: err}
	}
	return true, nil
}
