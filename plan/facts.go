package plan

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nsrouter/nsrouter/topology"
)

// Fact is one thing a lab has in the kernel, in a form that can be
// computed from a topology (what the file wants) and read back from the
// kernel (what is there), and compared. Two facts with the same Node,
// Kind and Key are the same object; a different Value is a change.
type Fact struct {
	Node  string // node name; "host" for the host
	Kind  string // namespace, link, address, route, rule, sysctl, nftables, hosts, foreign-rule
	Key   string
	Value string
}

func (f Fact) String() string {
	s := f.Node + ": " + f.Kind
	if f.Key != "" {
		s += " " + f.Key
	}
	if f.Value != "" {
		s += " (" + f.Value + ")"
	}
	return s
}

func (f Fact) id() string { return f.Node + "\x00" + f.Kind + "\x00" + f.Key }

// Change is one line of a difference: '+' to add, '-' to remove, '~' to
// change.
type Change struct {
	Op   byte
	Fact Fact
	Was  string // the old value, for '~'
}

func (c Change) String() string {
	if c.Op == '~' {
		return fmt.Sprintf("~ %s: %s %s (%s -> %s)", c.Fact.Node, c.Fact.Kind, c.Fact.Key, c.Was, c.Fact.Value)
	}
	return fmt.Sprintf("%c %s", c.Op, c.Fact)
}

// Diff returns what turns have into want, sorted by node, kind and key.
func Diff(want, have []Fact) []Change {
	h := map[string]Fact{}
	for _, f := range have {
		h[f.id()] = f
	}
	w := map[string]bool{}
	var out []Change
	for _, f := range want {
		w[f.id()] = true
		old, ok := h[f.id()]
		switch {
		case !ok:
			out = append(out, Change{Op: '+', Fact: f})
		case old.Value != f.Value:
			out = append(out, Change{Op: '~', Fact: f, Was: old.Value})
		}
	}
	for _, f := range have {
		if !w[f.id()] {
			out = append(out, Change{Op: '-', Fact: f})
		}
	}
	slices.SortStableFunc(out, func(a, b Change) int {
		return cmp.Or(strings.Compare(a.Fact.Node, b.Fact.Node), strings.Compare(a.Fact.Kind, b.Fact.Kind),
			strings.Compare(a.Fact.Key, b.Fact.Key))
	})
	return out
}

// Facts lists what the topology wants in the kernel. With rules (the
// kernel layer's renderer), a node's nftables table carries a digest of
// its chains and rule texts, so a changed rule shows as a change.
func Facts(t *topology.Topology, rules RuleTexts) []Fact {
	var out []Fact
	add := func(n *topology.Node, kind, key, value string) {
		out = append(out, Fact{Node: n.Name, Kind: kind, Key: key, Value: value})
	}
	hosts := HostsFile(t)
	for _, n := range t.Nodes {
		if !n.Host {
			add(n, "namespace", "", "")
			if hosts != nil {
				add(n, "hosts", "/etc/netns/"+n.Name+"/hosts", HostsDigest(hosts))
			}
		}
		for _, b := range n.Bridges {
			v := "bridge"
			if b.Fast() {
				v += " fast"
			}
			if b.Snooping {
				v += " multicast-snooping"
			}
			add(n, "link", b.Name, v)
			for _, a := range b.Addrs {
				add(n, "address", b.Name+" "+a.String(), "")
			}
		}
		for _, i := range n.Interfaces {
			v := "veth"
			if i.Fast() {
				v += " fast"
			}
			if i.Down {
				v += " down"
			}
			if i.Master != nil {
				v += " master " + i.Master.Name
			}
			add(n, "link", i.Name, v)
			for _, a := range i.Addrs {
				add(n, "address", i.Name+" "+a.String(), "")
			}
		}
		for _, a := range n.Loopback {
			add(n, "address", "lo "+a.String(), "")
		}
		for _, r := range n.Routes {
			add(n, "route", RouteKey(r.Dst, r.Via, r.Dev, r.Metric, r.Table), "")
		}
		for _, r := range n.Rules {
			add(n, "rule", RuleString(r), "")
		}
		nodeFirewallFacts(t, n, add, rules)
	}
	return out
}

// ChainsDigest is a short digest of a table's chains as nft -f reads them.
func ChainsDigest(chains []ChainText) string {
	var b strings.Builder
	for _, c := range chains {
		fmt.Fprintf(&b, "chain %s\n%s\n", c.Name, c.Head)
		for _, r := range c.Rules {
			b.WriteString(r.Comment + "\n")
		}
	}
	return HostsDigest([]byte(b.String()))
}

func nodeFirewallFacts(t *topology.Topology, n *topology.Node, add func(*topology.Node, string, string, string), rules RuleTexts) {
	if n.Host {
		// Rules in other programs' chains exist only where such a chain
		// drops; these facts only keep wanted ones from being removed.
		for _, b := range n.Bridges {
			add(n, "foreign-rule", "rule "+b.Name, "")
		}
		if t.Uplink != nil {
			add(n, "foreign-rule", "rule uplink-in", "")
			add(n, "foreign-rule", "rule uplink-out", "")
			add(n, "nftables", "ip nsrouter-"+t.Name, "uplink masquerade")
		}
		return
	}
	nat := n.NAT
	if t.Uplink != nil && t.Uplink.Node == n {
		nat = uplinkNAT(t, nat)
	}
	if n.Firewall == nil && nat == nil {
		return
	}
	digest := ""
	if rules != nil {
		digest = ChainsDigest(rules(t.Name, n, n.Firewall, nat))
	}
	add(n, "nftables", "inet nsrouter-"+t.Name, digest)
}

// RouteKey identifies a route: the device counts only when there is no
// gateway, since the kernel picks the device from the gateway otherwise.
func RouteKey(dst netip.Prefix, via netip.Addr, dev string, metric, table int) string {
	s := dst.String()
	if dst.Bits() == 0 {
		s = "default"
		if dst.Addr().Is6() {
			s = "default6"
		}
	}
	if via.IsValid() {
		s += " via " + via.String()
	} else {
		s += " dev " + dev
	}
	if metric == 0 && dst.Addr().Is6() {
		metric = 1024 // the kernel's default for IPv6 routes
	}
	if metric != 0 {
		s += fmt.Sprintf(" metric %d", metric)
	}
	if table != 0 && table != topology.TableMain {
		s += fmt.Sprintf(" table %d", table)
	}
	return s
}

// HostsDigest is a short digest of a hosts file, so a diff can say that it
// changed without printing it.
func HostsDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return fmt.Sprintf("sha256:%x", sum[:6])
}
