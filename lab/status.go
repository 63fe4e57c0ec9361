package lab

import (
	"context"
	"net"
	"slices"
	"strings"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Status is what exists of a lab in the kernel.
type Status struct {
	Lab   string       `json:"lab"`
	Up    bool         `json:"up"` // every namespace of the file exists
	Nodes []NodeStatus `json:"nodes"`
}

// NodeStatus is one node as the kernel has it.
type NodeStatus struct {
	Name       string            `json:"name"`
	Exists     bool              `json:"exists"`
	Interfaces []IfaceStatus     `json:"interfaces,omitempty"`
	Routes     []string          `json:"routes,omitempty"`
	Sysctls    map[string]string `json:"sysctls,omitempty"`
	Tables     []string          `json:"nftables,omitempty"`
	// ForeignRules are the lab's marked rules in other programs' forward
	// chains (host only), by comment.
	ForeignRules []string `json:"foreign_rules,omitempty"`
}

// IfaceStatus is one interface of a node.
type IfaceStatus struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	State  string `json:"state"`
	Master string `json:"master,omitempty"`
	MTU    int    `json:"mtu"`
	// Profile is "fast" for a veth end or bridge with the fast profile's
	// packet sizes; empty for the kernel's defaults.
	Profile  string   `json:"profile,omitempty"`
	Addrs    []string `json:"addresses,omitempty"`
	Counters Counters `json:"counters"`
}

// Counters are an interface's packet counters since it was created.
type Counters struct {
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxDropped uint64 `json:"rx_dropped"`
	TxDropped uint64 `json:"tx_dropped"`
	RxErrors  uint64 `json:"rx_errors"`
	TxErrors  uint64 `json:"tx_errors"`
}

// GetStatus reads the lab's nodes from the kernel. In the host it lists
// only what carries the lab's mark.
func GetStatus(ctx context.Context, t *topology.Topology, o Options) (*Status, error) {
	if err := RequireRoot(); err != nil {
		return nil, err
	}
	st := &Status{Lab: t.Name, Up: true}
	for _, n := range t.Nodes {
		ns := NodeStatus{Name: n.Name}
		var (
			h   *kernel.NS
			err error
		)
		if n.Host {
			h, err = kernel.Host()
		} else if got, exists, _ := kernel.NamespaceMark(n.Name); exists && got == mark(t.Name) {
			h, err = kernel.OpenNamed(n.Name)
		}
		if err != nil {
			return nil, err
		}
		if h == nil {
			st.Up = false
			st.Nodes = append(st.Nodes, ns)
			continue
		}
		ns.Exists = true
		fillNode(&ns, h, t.Name, n.Host)
		h.Close()
		st.Nodes = append(st.Nodes, ns)
	}
	return st, nil
}

func fillNode(ns *NodeStatus, h *kernel.NS, lab string, host bool) {
	links, _ := h.Links()
	byIndex := map[int]string{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	owned := map[int]bool{}
	for _, l := range links {
		a := l.Attrs()
		if host && a.Alias != mark(lab) {
			continue
		}
		owned[a.Index] = true
		is := IfaceStatus{Name: a.Name, Kind: l.Type(), State: "down", MTU: a.MTU, Master: byIndex[a.MasterIndex]}
		if is.Kind == "veth" || is.Kind == "bridge" {
			is.Profile = kernel.PacketProfile(a)
		}
		if a.Flags&net.FlagUp != 0 {
			is.State = "up"
		}
		if st := a.Statistics; st != nil {
			is.Counters = Counters{RxPackets: st.RxPackets, TxPackets: st.TxPackets, RxBytes: st.RxBytes,
				TxBytes: st.TxBytes, RxDropped: st.RxDropped, TxDropped: st.TxDropped,
				RxErrors: st.RxErrors, TxErrors: st.TxErrors}
		}
		addrs, _ := h.AddrList(l)
		for _, ad := range addrs {
			if ad.IP.IsLinkLocalUnicast() {
				continue
			}
			is.Addrs = append(is.Addrs, ad.IPNet.String())
		}
		ns.Interfaces = append(ns.Interfaces, is)
	}
	routes, _ := h.Routes()
	for _, r := range routes {
		if host && !owned[r.LinkIndex] {
			continue
		}
		if r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast() || r.Type == unix.RTN_MULTICAST {
			continue
		}
		ns.Routes = append(ns.Routes, routeText(r, byIndex))
	}
	ns.Sysctls = map[string]string{}
	keys := []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"}
	for _, k := range keys {
		if v, err := h.Sysctl(k); err == nil {
			ns.Sysctls[k] = v
		}
	}
	ns.Tables = tableNames(h, lab, host)
	if host {
		ns.ForeignRules = h.ForeignRules()[lab]
	}
}

func routeText(r netlink.Route, names map[int]string) string {
	var b strings.Builder
	if r.Dst == nil {
		b.WriteString("default")
	} else {
		b.WriteString(r.Dst.String())
	}
	if r.Gw != nil {
		b.WriteString(" via " + r.Gw.String())
	}
	if name := names[r.LinkIndex]; name != "" {
		b.WriteString(" dev " + name)
	}
	if r.Protocol == kernel.RouteProtocol {
		b.WriteString(" (nsrouter)")
	}
	return b.String()
}

func tableNames(h *kernel.NS, lab string, host bool) []string {
	names, _ := h.TableNames()
	if host {
		names = slices.DeleteFunc(names, func(s string) bool { return !strings.HasSuffix(s, " "+kernel.TableName(lab)) })
	}
	return names
}
