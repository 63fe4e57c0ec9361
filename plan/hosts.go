package plan

import (
	"crypto/sha256"
	"fmt"
	"hash/fnv"
	"net"
	"strings"

	"github.com/nsrouter/nsrouter/topology"
)

// HostsMarker starts every hosts file the tool writes; down removes only
// files that start with it.
const HostsMarker = "# written by nsrouter for lab "

// maxHostsNodes bounds name resolution: past it, one hosts file per node
// holding every node would grow with the square of the lab.
const maxHostsNodes = 2000

// SharedHostsDir holds each lab's hosts file once; every node's
// /etc/netns/NODE/hosts is a hard link to it. Node names never start with
// a dot, so no namespace takes the folder for its own.
const SharedHostsDir = "/etc/netns/.nsrouter"

// SharedHostsPath is where the lab's hosts file with this content is kept.
func SharedHostsPath(lab string, hosts []byte) string {
	sum := sha256.Sum256(hosts)
	return fmt.Sprintf("%s/%s-%x.hosts", SharedHostsDir, lab, sum[:6])
}

// HostsFile renders the /etc/hosts that every lab namespace gets: each
// node's first IPv4 and IPv6 address under the node's name, and every
// address under NODE-IFACE. It returns nil for very large labs.
func HostsFile(t *topology.Topology) []byte {
	if len(t.Nodes) > maxHostsNodes {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s%s\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", HostsMarker, t.Name)
	for _, n := range t.Nodes {
		named := map[bool]bool{}
		line := func(addr, name string, v6 bool) {
			if !named[v6] {
				named[v6] = true
				fmt.Fprintf(&b, "%s\t%s %s\n", addr, n.Name, name)
				return
			}
			fmt.Fprintf(&b, "%s\t%s\n", addr, name)
		}
		for _, i := range n.Interfaces {
			for _, a := range i.Addrs {
				line(a.Addr().String(), n.Name+"-"+i.Name, a.Addr().Is6())
			}
		}
		for _, br := range n.Bridges {
			for _, a := range br.Addrs {
				line(a.Addr().String(), n.Name+"-"+br.Name, a.Addr().Is6())
			}
		}
		for _, a := range n.Loopback {
			line(a.Addr().String(), n.Name+"-lo", a.Addr().Is6())
		}
	}
	return []byte(b.String())
}

// RuleString renders a policy rule as `ip rule` takes it.
func RuleString(r *topology.PolicyRule) string {
	var parts []string
	if r.Priority != 0 {
		parts = append(parts, fmt.Sprintf("priority %d", r.Priority))
	}
	if r.From.IsValid() {
		parts = append(parts, "from "+r.From.String())
	}
	if r.To.IsValid() {
		parts = append(parts, "to "+r.To.String())
	}
	if r.IIF != "" {
		parts = append(parts, "iif "+r.IIF)
	}
	if r.OIF != "" {
		parts = append(parts, "oif "+r.OIF)
	}
	if r.FwMark != 0 {
		parts = append(parts, fmt.Sprintf("fwmark %#x", r.FwMark))
	}
	return strings.Join(append(parts, fmt.Sprintf("lookup %d", r.Table)), " ")
}

// BridgeMAC is the fixed hardware address nsrouter gives a bridge: a
// locally administered address from a hash of the lab, node and bridge.
// A bridge without one takes the lowest address of its ports, and changes
// it when that port leaves, which makes its neighbours' ARP entries stale
// for seconds.
func BridgeMAC(lab, node, bridge string) net.HardwareAddr {
	h := fnv.New64a()
	h.Write([]byte(lab + "/" + node + "/" + bridge))
	b := h.Sum(nil)
	return net.HardwareAddr{0x02, b[0], b[1], b[2], b[3], b[4]}
}
