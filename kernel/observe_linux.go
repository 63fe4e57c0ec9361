package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Observed is a fact read from the kernel, with the way to remove it.
type Observed struct {
	Fact   plan.Fact
	Delete func() error
}

// Observe reads what a node of the lab has. In a lab namespace everything
// but lo is the lab's; in the host only what carries the lab's mark.
func (ns *NS) Observe(node, lab string) ([]Observed, error) {
	host := ns.Name == ""
	links, err := dump(func() ([]netlink.Link, error) { return ns.nl.LinkList() })
	if err != nil {
		return nil, &OpError{Op: "list links", Node: ns.Name, Err: err}
	}
	byIndex := map[int]netlink.Link{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l
	}
	owned := map[int]bool{}
	var out []Observed
	for _, l := range links {
		a := l.Attrs()
		if a.Name == "lo" || (host && a.Alias != Mark(lab) && !IsTempName(a.Name, lab)) {
			continue
		}
		owned[a.Index] = true
		v := l.Type()
		if v == "veth" || v == "bridge" {
			v += packetSizeSuffix(a)
			if a.Flags&net.FlagUp == 0 {
				v += " down"
			}
		}
		if br, ok := l.(*netlink.Bridge); ok && br.MulticastSnooping != nil && *br.MulticastSnooping {
			v += " multicast-snooping"
		}
		if m, ok := byIndex[a.MasterIndex]; ok && a.MasterIndex != 0 {
			v += " master " + m.Attrs().Name
		}
		out = append(out, Observed{Fact: plan.Fact{Node: node, Kind: "link", Key: a.Name, Value: v},
			Delete: ns.later(func(x *NS) error { return x.DeleteLink(l) })})
	}
	addrs, err := ns.observeAddrs(node, links, owned)
	if err != nil {
		return nil, err
	}
	out = append(out, addrs...)
	routes, err := ns.observeRoutes(node, byIndex)
	if err != nil {
		return nil, err
	}
	out = append(out, routes...)
	if !host {
		rules, err := ns.observeRules(node)
		if err != nil {
			return nil, err
		}
		out = append(out, rules...)
	}
	return append(out, ns.observeTables(node, lab, host)...), nil
}

func (ns *NS) observeAddrs(node string, links []netlink.Link, owned map[int]bool) ([]Observed, error) {
	// One dump for the namespace: the kernel has no per-interface one, and
	// a dump per interface was quadratic in a router's cables.
	all, err := dump(func() ([]netlink.Addr, error) { return ns.nl.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, &OpError{Op: "list addresses", Node: ns.Name, Err: err}
	}
	byIndex := map[int][]netlink.Addr{}
	for _, addr := range all {
		byIndex[addr.LinkIndex] = append(byIndex[addr.LinkIndex], addr)
	}
	var out []Observed
	for _, l := range links {
		a := l.Attrs()
		if !owned[a.Index] && a.Name != "lo" {
			continue
		}
		if a.Name == "lo" && ns.Name == "" {
			continue
		}
		for _, addr := range byIndex[a.Index] {
			if kernelLinkLocal(addr.IP, a.HardwareAddr) || addr.IP.IsLoopback() {
				continue
			}
			ones, _ := addr.Mask.Size()
			ip, _ := netip.AddrFromSlice(addr.IP)
			p := netip.PrefixFrom(ip.Unmap(), ones)
			out = append(out, Observed{Fact: plan.Fact{Node: node, Kind: "address", Key: a.Name + " " + p.String()},
				Delete: ns.later(func(x *NS) error {
					if err := x.nl.AddrDel(l, &addr); err != nil && !isNoDevice(err) && !isNotFound(err) {
						return &OpError{Op: "delete address " + p.String(), Node: x.Name, Iface: a.Name, Err: err}
					}
					return nil
				})})
		}
	}
	return out, nil
}

func (ns *NS) observeRoutes(node string, byIndex map[int]netlink.Link) ([]Observed, error) {
	routes, err := dump(func() ([]netlink.Route, error) {
		return ns.nl.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, &OpError{Op: "list routes", Node: ns.Name, Err: err}
	}
	var out []Observed
	for _, r := range routes {
		if r.Protocol != RouteProtocol {
			continue
		}
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if r.Family == unix.AF_INET6 {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		if r.Dst != nil {
			ip, _ := netip.AddrFromSlice(r.Dst.IP)
			ones, _ := r.Dst.Mask.Size()
			dst = netip.PrefixFrom(ip.Unmap(), ones)
		}
		via, _ := netip.AddrFromSlice(r.Gw)
		dev := ""
		if l, ok := byIndex[r.LinkIndex]; ok {
			dev = l.Attrs().Name
		}
		key := plan.RouteKey(dst, via.Unmap(), dev, r.Priority, tableOf(r.Table))
		out = append(out, Observed{Fact: plan.Fact{Node: node, Kind: "route", Key: key},
			Delete: ns.later(func(x *NS) error {
				if err := x.nl.RouteDel(&r); err != nil && !isNotFound(err) {
					return &OpError{Op: "delete route " + key, Node: x.Name, Err: err}
				}
				return nil
			})})
	}
	return out, nil
}

func tableOf(t int) int {
	if t == unix.RT_TABLE_MAIN {
		return 0
	}
	return t
}

// observeRules reads the policy rules beyond the kernel's three defaults.
func (ns *NS) observeRules(node string) ([]Observed, error) {
	var out []Observed
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := dump(func() ([]netlink.Rule, error) { return ns.nl.RuleList(fam) })
		if err != nil {
			return nil, &OpError{Op: "list rules", Node: ns.Name, Err: err}
		}
		for _, r := range rules {
			if isDefaultRule(r) {
				continue
			}
			text := plan.RuleString(policyRule(r))
			out = append(out, Observed{Fact: plan.Fact{Node: node, Kind: "rule", Key: text},
				Delete: ns.later(func(x *NS) error {
					if err := x.nl.RuleDel(&r); err != nil && !isNotFound(err) {
						return &OpError{Op: "delete rule " + text, Node: x.Name, Err: err}
					}
					return nil
				})})
		}
	}
	return out, nil
}

func isDefaultRule(r netlink.Rule) bool {
	return r.Src == nil && r.Dst == nil && r.IifName == "" && r.OifName == "" && r.Mark == 0 &&
		((r.Priority == 0 && r.Table == unix.RT_TABLE_LOCAL) || (r.Priority == 32766 && r.Table == unix.RT_TABLE_MAIN) ||
			(r.Priority == 32767 && r.Table == unix.RT_TABLE_DEFAULT))
}

func policyRule(r netlink.Rule) *topology.PolicyRule {
	p := &topology.PolicyRule{IIF: r.IifName, OIF: r.OifName, FwMark: r.Mark, Priority: r.Priority, Table: r.Table}
	p.From, p.To = prefixOf(r.Src), prefixOf(r.Dst)
	return p
}

func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	ip, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones)
}

// observeTables reads the lab's nftables tables and, in the host, the
// lab's rules in other programs' chains.
func (ns *NS) observeTables(node, lab string, host bool) []Observed {
	var out []Observed
	tables, _ := ns.conn().ListTables()
	for _, t := range tables {
		if t.Name != TableName(lab) {
			continue
		}
		key := familyName(t.Family) + " " + t.Name
		value := "uplink masquerade"
		if !host {
			value = ns.tableDigest(t)
		}
		out = append(out, Observed{Fact: plan.Fact{Node: node, Kind: "nftables", Key: key, Value: value},
			Delete: ns.later(func(x *NS) error { return x.deleteTable(t) })})
	}
	if !host {
		return out
	}
	// The lab's rules in other programs' chains, nftables and legacy: one
	// fact per rule, however many chains hold a copy.
	var comments []string
	chains, _ := ns.conn().ListChains()
	for _, c := range chains {
		rules, _ := ns.conn().GetRules(c.Table, c)
		for _, r := range rules {
			comments = append(comments, commentOf(r))
		}
	}
	comments = append(comments, ns.legacyComments(Mark(lab))...)
	seen := map[string]bool{}
	for _, c := range comments {
		rest, ok := strings.CutPrefix(c, Mark(lab)+" ")
		if !ok || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, Observed{Fact: plan.Fact{Node: node, Kind: "foreign-rule", Key: "rule " + rest},
			Delete: ns.later(func(x *NS) error { return x.RemoveForeignRule(c) })})
	}
	return out
}

func (ns *NS) deleteTable(t *nftables.Table) error {
	ns.conn().DelTable(t)
	if err := ns.conn().Flush(); err != nil {
		return &OpError{Op: "delete table", Node: ns.Name, Iface: t.Name, Err: err}
	}
	return nil
}

// ObserveHosts lists the hosts files of the lab under /etc/netns.
func ObserveHosts(lab string) []Observed {
	marker := []byte(plan.HostsMarker + lab + "\n")
	dirs, _ := os.ReadDir(HostsDir)
	var out []Observed
	digests := map[uint64]string{} // by inode: the nodes' files are links to one
	for _, d := range dirs {
		if strings.HasPrefix(d.Name(), ".") {
			continue // the shared copies, not a node's
		}
		path := filepath.Join(HostsDir, d.Name(), "hosts")
		var st unix.Stat_t
		if unix.Stat(path, &st) != nil {
			continue
		}
		digest, ok := digests[st.Ino]
		if !ok {
			b, err := os.ReadFile(path)
			if err != nil || !bytes.HasPrefix(b, marker) {
				continue
			}
			digest = plan.HostsDigest(b)
			digests[st.Ino] = digest
		}
		node := d.Name()
		out = append(out, Observed{Fact: plan.Fact{Node: node, Kind: "hosts", Key: path, Value: digest},
			Delete: func() error {
				_, err := RemoveHosts(node, string(marker))
				return err
			}})
	}
	return out
}

func isNotFound(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no such") || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) ||
		errors.Is(err, unix.EADDRNOTAVAIL))
}

// later returns a function that runs f with the namespace opened anew, so
// that what observe read does not hold a handle per namespace until it is
// used: a lab of thousands of nodes would run out of descriptors.
func (ns *NS) later(f func(x *NS) error) func() error {
	name := ns.Name
	return func() error {
		var (
			x   *NS
			err error
		)
		if name == "" {
			x, err = Host()
		} else {
			x, err = OpenNamed(name)
		}
		if err != nil {
			return err
		}
		defer x.Close()
		return f(x)
	}
}

// tableDigest renders a table's chains as NodeRules does and digests them,
// so the file's rules and the kernel's compare.
func (ns *NS) tableDigest(t *nftables.Table) string {
	chains, _ := ns.conn().ListChainsOfTableFamily(t.Family)
	var out []plan.ChainText
	for _, c := range chains {
		if c.Table.Name != t.Name || c.Hooknum == nil || c.Priority == nil || c.Policy == nil {
			continue
		}
		policy := "accept"
		if *c.Policy == nftables.ChainPolicyDrop {
			policy = "drop"
		}
		ct := plan.ChainText{Name: c.Name,
			Head: fmt.Sprintf("type %s hook %s priority %d; policy %s;", c.Type, hookNames[*c.Hooknum], *c.Priority, policy)}
		rules, _ := ns.conn().GetRules(t, c)
		for _, r := range rules {
			ct.Rules = append(ct.Rules, plan.RuleLine{Comment: commentOf(r)})
		}
		out = append(out, ct)
	}
	return plan.ChainsDigest(out)
}

// kernelLinkLocal reports whether ip is the link-local address the kernel
// made for a link with this MAC (fe80:: and the EUI-64 of the MAC): not
// the lab's. A link-local address the file names, like fe80::1, is.
func kernelLinkLocal(ip net.IP, mac net.HardwareAddr) bool {
	ip = ip.To16()
	if ip == nil || ip.To4() != nil || !ip.IsLinkLocalUnicast() {
		return false
	}
	if len(mac) != 6 {
		return true // no EUI-64 to compare with: leave it to the kernel
	}
	eui := []byte{mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]}
	return bytes.Equal(ip[8:], eui)
}
