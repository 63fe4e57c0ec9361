package kernel

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes nsrouter adds, as `proto 73` in
// `ip route` output, so they can be told from the kernel's and other
// programs' routes.
const RouteProtocol = 73

// RouteSpec is a route to ensure.
type RouteSpec struct {
	Dst    netip.Prefix
	Via    netip.Addr
	Dev    string
	Metric int
	Table  int // 0: main
}

func (r RouteSpec) String() string {
	s := r.Dst.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	return s
}

// routeOf builds the netlink route for spec.
func (ns *NS) routeOf(spec RouteSpec) (*netlink.Route, error) {
	table := spec.Table
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	metric := spec.Metric
	if metric == 0 && spec.Dst.Addr().Is6() {
		metric = 1024 // what the kernel makes of 0 for IPv6
	}
	want := &netlink.Route{Dst: ipNet(spec.Dst), Priority: metric,
		Protocol: RouteProtocol, Table: table}
	if spec.Via.IsValid() {
		want.Gw = spec.Via.AsSlice()
	} else {
		want.Scope = netlink.SCOPE_LINK // as `ip route add P dev D` does
	}
	if spec.Dev != "" {
		l, err := ns.nl.LinkByName(spec.Dev)
		if err != nil {
			return nil, &OpError{Op: "route " + spec.String(), Node: ns.Name, Err: err}
		}
		want.LinkIndex = l.Attrs().Index
	}
	return want, nil
}

// AddRoute installs the route (`ip route replace`) without looking first,
// for namespaces this run just created.
func (ns *NS) AddRoute(spec RouteSpec) error {
	want, err := ns.routeOf(spec)
	if err != nil {
		return err
	}
	if err := ns.nl.RouteReplace(want); err != nil {
		return &OpError{Op: "add route " + spec.String(), Node: ns.Name, Err: err}
	}
	return nil
}

// EnsureRoute installs the route in its table (`ip route replace`) unless
// an identical one of ours is there.
func (ns *NS) EnsureRoute(spec RouteSpec) (changed bool, err error) {
	want, err := ns.routeOf(spec)
	if err != nil {
		return false, err
	}
	table := want.Table
	family := netlink.FAMILY_V4
	if spec.Dst.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	have, err := dump(func() ([]netlink.Route, error) {
		return ns.nl.RouteListFiltered(family, &netlink.Route{Dst: want.Dst, Table: table},
			netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return false, &OpError{Op: "list routes", Node: ns.Name, Err: err}
	}
	for _, r := range have {
		if r.Protocol == RouteProtocol && r.Priority == want.Priority && sameGw(r.Gw, want.Gw) &&
			(want.LinkIndex == 0 || r.LinkIndex == want.LinkIndex) {
			return false, nil
		}
	}
	if err := ns.nl.RouteReplace(want); err != nil {
		return false, &OpError{Op: "add route " + spec.String(), Node: ns.Name, Err: err}
	}
	return true, nil
}

func sameGw(a, b net.IP) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return a.Equal(b)
}

// Routes returns the routes of the main table in ns, both families.
func (ns *NS) Routes() ([]netlink.Route, error) {
	rs, err := dump(func() ([]netlink.Route, error) {
		return ns.nl.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, &OpError{Op: "list routes", Node: ns.Name, Err: fmt.Errorf("%w", err)}
	}
	return rs, nil
}
