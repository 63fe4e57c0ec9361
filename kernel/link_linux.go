package kernel

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
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
	if l.Attrs().Alias != mark {
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

// EnsureBridge creates the bridge (`ip link add NAME type bridge`), marks it
// and sets it up; an existing bridge of the lab is kept as it is.
func (ns *NS) EnsureBridge(name, mark string) (created bool, err error) {
	l, err := ns.linkOwned(name, mark)
	if err != nil {
		return false, err
	}
	if l != nil {
		if l.Type() != "bridge" {
			return false, &OpError{Op: "ensure bridge", Node: ns.Name, Iface: name,
				Err: fmt.Errorf("the lab's interface is a %s, not a bridge", l.Type())}
		}
		return false, ns.setUp(l)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
	br.Name = name
	if err := ns.nl.LinkAdd(br); err != nil {
		return false, &OpError{Op: "create bridge", Node: ns.Name, Iface: name, Err: err}
	}
	l, err = ns.nl.LinkByName(name)
	if err == nil {
		err = ns.nl.LinkSetAlias(l, mark)
	}
	if err == nil {
		err = ns.nl.LinkSetUp(l)
	}
	if err != nil {
		return true, &OpError{Op: "set up bridge", Node: ns.Name, Iface: name, Err: err}
	}
	return true, nil
}

// VethEnd is one end of a veth pair: a namespace, a name, and optionally
// the bridge it joins.
type VethEnd struct {
	NS     *NS
	Name   string
	Master string
	MTU    int // 0: the default
	MAC    net.HardwareAddr
}

// EnsureVeth creates a veth pair with each end directly in its namespace
// (`ip link add A netns X type veth peer B netns Y`), marks both ends and
// enslaves them to their bridges. The request goes through a's namespace,
// so a is created with its master already set. If a exists and is the
// lab's, the pair is kept; a half pair left by an interruption is replaced.
func EnsureVeth(a, b VethEnd, mark string) (created bool, err error) {
	la, err := a.NS.linkOwned(a.Name, mark)
	if err != nil {
		return false, err
	}
	lb, err := b.NS.linkOwned(b.Name, mark)
	if err != nil {
		return false, err
	}
	if la != nil && lb != nil {
		ca, erra := a.NS.ensureLinkAttrs(la, a.MTU, a.MAC)
		cb, errb := b.NS.ensureLinkAttrs(lb, b.MTU, b.MAC)
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
	v := &netlink.Veth{LinkAttrs: netlink.NewLinkAttrs(), PeerName: b.Name,
		PeerNamespace: netlink.NsFd(b.NS.fd), PeerMTU: uint32(b.MTU), PeerHardwareAddr: b.MAC}
	v.Name, v.MTU, v.HardwareAddr = a.Name, a.MTU, a.MAC
	if a.Master != "" {
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
	for _, end := range []VethEnd{a, b} {
		if err := end.NS.mark(end.Name, mark); err != nil {
			return true, err
		}
	}
	if b.Master != "" {
		lb, err := b.NS.nl.LinkByName(b.Name)
		if err != nil {
			return true, &OpError{Op: "look up link", Node: b.NS.Name, Iface: b.Name, Err: err}
		}
		return true, b.NS.ensureMaster(lb, b.Master)
	}
	return true, nil
}

func (ns *NS) mark(name, mark string) error {
	l, err := ns.nl.LinkByName(name)
	if err == nil {
		err = ns.nl.LinkSetAlias(l, mark)
	}
	if err != nil {
		return &OpError{Op: "mark link", Node: ns.Name, Iface: name, Err: err}
	}
	return nil
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
func (ns *NS) SetUp(name string) (changed bool, err error) {
	l, err := ns.nl.LinkByName(name)
	if err != nil {
		return false, &OpError{Op: "look up link", Node: ns.Name, Iface: name, Err: err}
	}
	if l.Attrs().Flags&netFlagUp != 0 {
		return false, nil
	}
	return true, ns.setUp(l)
}

func (ns *NS) setUp(l netlink.Link) error {
	if err := ns.nl.LinkSetUp(l); err != nil {
		return &OpError{Op: "set link up", Node: ns.Name, Iface: l.Attrs().Name, Err: err}
	}
	return nil
}

// MarkedLinks returns the links in ns that carry mark.
func (ns *NS) MarkedLinks(mark string) ([]netlink.Link, error) {
	links, err := ns.nl.LinkList()
	if err != nil {
		return nil, &OpError{Op: "list links", Node: ns.Name, Err: err}
	}
	var out []netlink.Link
	for _, l := range links {
		if l.Attrs().Alias == mark {
			out = append(out, l)
		}
	}
	return out, nil
}

// Links returns every link in ns.
func (ns *NS) Links() ([]netlink.Link, error) {
	links, err := ns.nl.LinkList()
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
