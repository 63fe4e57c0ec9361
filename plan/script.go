package plan

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/nsrouter/nsrouter/topology"
)

// RuleTexts renders firewall and NAT rules for the script. It is given by
// the kernel layer, which owns the nftables rules; see kernel.NodeRules.
type RuleTexts func(lab string, n *topology.Node, fw *topology.Firewall, nat *topology.NAT) []ChainText

// ChainText is one nftables base chain as nft -f reads it.
type ChainText struct {
	Name  string
	Head  string // "type filter hook forward priority 0; policy drop;"
	Rules []RuleLine
}

// RuleLine is one rule in nft syntax and the comment it carries.
type RuleLine struct {
	Rule, Comment string
}

// Script writes the plan as a commented shell script of ip, nft and sysctl
// commands that builds the same network, step by step, in plan order: the
// lesson in executable form. Everything it creates carries the same marks
// as nsrouter's own objects, so `nsrouter down` removes it.
func (p *Plan) Script(w io.Writer, rules RuleTexts) {
	fmt.Fprintf(w, "#!/bin/sh\n# Builds lab %s as `nsrouter up` does. Run as root.\nset -e\n", p.Lab)
	for _, s := range p.Steps {
		if s.Kind == AllowBridged || s.Kind == SetUplink {
			fmt.Fprintln(w, allowFunc)
			break
		}
	}
	last := ""
	for _, s := range p.Steps {
		if s.Reason != last {
			fmt.Fprintf(w, "\n# %s\n", s.Reason)
			last = s.Reason
		}
		for _, line := range p.commands(s, rules) {
			fmt.Fprintln(w, line)
		}
	}
}

// ipIn prefixes an ip command with -n NODE for lab namespaces.
func ipIn(n *topology.Node) string {
	if n.Host {
		return "ip"
	}
	return "ip -n " + shq(n.Name)
}

// execIn prefixes a command run inside a node.
func execIn(n *topology.Node) string {
	if n.Host {
		return ""
	}
	return "ip netns exec " + shq(n.Name) + " "
}

// shq quotes a word for the shell when it needs it. Names are validated
// (letters, digits, '_', '.', '-'), so this is belt and braces.
func shq(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:/=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (p *Plan) commands(s Step, rules RuleTexts) []string {
	n := s.Node
	mark := "nsrouter:" + p.Lab
	switch s.Kind {
	case CreateNamespace:
		return []string{
			"ip netns add " + shq(n.Name),
			ipIn(n) + " link set lo alias " + mark,
			ipIn(n) + " link set lo up",
		}
	case SetSysctl:
		return []string{execIn(n) + "sysctl -qw " + s.Key + "=" + shq(s.Value)}
	case CreateBridge:
		out := []string{ipIn(n) + " link add " + s.Iface + " address " + BridgeMAC(p.Lab, n.Name, s.Iface).String() +
			" type bridge mcast_snooping " + map[bool]string{false: "0", true: "1"}[n.Bridge(s.Iface).Snooping]}
		if n.Host {
			out = append(out, ipIn(n)+" link set "+s.Iface+" alias "+mark)
		}
		return append(out, ipIn(n)+" link set "+s.Iface+" up")
	case CreateVeth:
		return vethCommands(s.Veth, mark)
	case SetMTU:
		return []string{fmt.Sprintf("%s link set %s mtu %d", ipIn(n), s.Iface, s.MTU)}
	case SetPacketSize:
		// iproute2 sets the IPv4 sizes from 6.3 on (Debian 12 has 6.1).
		return []string{fmt.Sprintf("%s link set %s gso_ipv4_max_size %d gro_ipv4_max_size %d 2>/dev/null ||\n\techo %s >&2",
			ipIn(n), s.Iface, s.Size, s.Size,
			shq(fmt.Sprintf("note: this ip cannot set IPv4 packet sizes (iproute2 6.3+): %s:%s keeps 64 KiB packets", n.Name, s.Iface)))}
	case AddAddress:
		nodad := ""
		if s.Addr.Addr().Is6() {
			nodad = " nodad"
		}
		return []string{fmt.Sprintf("%s addr add %s dev %s%s", ipIn(n), s.Addr, s.Iface, nodad)}
	case SetDown:
		return []string{ipIn(n) + " link set " + s.Iface + " down"}
	case SetUp:
		if s.NoLL6 {
			return []string{ipIn(n) + " link set " + s.Iface + " addrgenmode none up"}
		}
		return []string{ipIn(n) + " link set " + s.Iface + " up"}
	case AddRoute:
		return []string{routeCommand(n, s.Route)}
	case AddRule:
		fam := "-4"
		if s.Rule.IPv6 {
			fam = "-6"
		}
		return []string{ipIn(n) + " " + fam + " rule add " + RuleString(s.Rule)}
	case SetFirewall:
		return nftCommands(execIn(n), "inet", "nsrouter-"+p.Lab, rules(p.Lab, n, s.Chain, s.NAT))
	case AllowBridged:
		return allowBridgedCommands(s.Bridges, mark)
	case WriteSharedHosts:
		return []string{"mkdir -p " + SharedHostsDir,
			"cat > " + s.Path + " <<'EOF'\n" + strings.TrimRight(string(s.Hosts), "\n") + "\nEOF"}
	case WriteHosts:
		dir := "/etc/netns/" + n.Name
		return []string{"mkdir -p " + dir, "ln -f " + s.Path + " " + dir + "/hosts"}
	case SetUplink:
		return uplinkCommands(p.Lab, s.Uplink)
	}
	return []string{"# " + s.String()}
}

func vethCommands(l *topology.Link, mark string) []string {
	end := func(i *topology.Interface) string {
		s := i.Name
		if !i.Node.Host {
			s += " netns " + shq(i.Node.Name)
		}
		if i.MTU != 0 {
			s += fmt.Sprintf(" mtu %d", i.MTU)
		}
		if i.MAC != nil {
			s += " address " + i.MAC.String()
		}
		return s
	}
	out := []string{"ip link add " + end(l.A) + " type veth peer name " + end(l.B)}
	for _, i := range []*topology.Interface{l.A, l.B} {
		if i.Node.Host {
			out = append(out, "ip link set "+i.Name+" alias "+mark)
		}
		if i.Master != nil {
			out = append(out, ipIn(i.Node)+" link set "+i.Name+" master "+i.Master.Name)
		}
	}
	return out
}

func routeCommand(n *topology.Node, r *topology.Route) string {
	fam, dst := "-4", r.Dst.String()
	if r.Dst.Addr().Is6() {
		fam = "-6"
	}
	if r.IsDefault() {
		dst = "default"
	}
	s := ipIn(n) + " " + fam + " route replace " + dst
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	if r.Table != 0 {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	return s + " proto 73"
}

func nftCommands(prefix, family, table string, chains []ChainText) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "%snft -f - <<'EOF'\ntable %s %s\ndelete table %s %s\ntable %s %s {\n", prefix, family, table, family, table, family, table)
	for _, c := range chains {
		fmt.Fprintf(&b, "  chain %s {\n    %s\n", c.Name, c.Head)
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "    %s comment \"%s\"\n", r.Rule, r.Comment)
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\nEOF")
	return []string{b.String()}
}

func allowBridgedCommands(bridges []*topology.Bridge, mark string) []string {
	names := make([]string, 0, len(bridges))
	for _, b := range bridges {
		names = append(names, b.Name)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names))) // each goes to the head: the first ends first
	var out []string
	for _, br := range names {
		for _, fam := range []string{"4", "6"} {
			out = append(out, fmt.Sprintf("nsr_allow %s bridged -i %s -o %s -m comment --comment \"%s %s\" -j ACCEPT", fam, br, br, mark, br))
		}
	}
	return out
}

// allowFunc is the shell function the script's host firewall steps use.
// It covers the iptables chains (nft and legacy), not other programs'
// native nftables chains, which nsrouter itself also handles.
const allowFunc = `
# nsr_allow 4|6 bridged|routed RULE...: put RULE at the head of the FORWARD
# chain of iptables-nft and iptables-legacy where that chain's policy is
# DROP and it sees the traffic: routed traffic always, bridged frames only
# when br_netfilter sends them there. A legacy table that is not loaded is
# left alone: asking for it would create it.
nsr_allow() {
  if [ "$1" = 4 ]; then t=iptables names=ip_tables_names nf=iptables; else t=ip6tables names=ip6_tables_names nf=ip6tables; fi
  if [ "$2" = bridged ] && [ "$(cat /proc/sys/net/bridge/bridge-nf-call-$nf 2>/dev/null)" != 1 ]; then return 0; fi
  shift 2
  for v in nft legacy; do
    if [ $v = legacy ] && ! grep -qx filter /proc/net/$names 2>/dev/null; then continue; fi
    command -v $t-$v >/dev/null || continue
    if $t-$v -S FORWARD 2>/dev/null | grep -q '^-P FORWARD DROP' && ! $t-$v -C FORWARD "$@" 2>/dev/null; then
      $t-$v -w -I FORWARD "$@"
    fi
  done
}`

func uplinkCommands(lab string, u *topology.Uplink) []string {
	out := "$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == \"dev\") print $(i+1); exit}')"
	if u.Out != "" {
		out = u.Out
	}
	return []string{
		"out=" + out,
		fmt.Sprintf("nsr_allow 4 routed -o %s -m comment --comment \"nsrouter:%s uplink-out\" -j ACCEPT", u.HostEnd.Name, lab),
		fmt.Sprintf("nsr_allow 4 routed -i %s -m comment --comment \"nsrouter:%s uplink-in\" -j ACCEPT", u.HostEnd.Name, lab),
		fmt.Sprintf("nft -f - <<EOF\ntable ip nsrouter-%s {\n  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n"+
			"    oifname $out ip saddr %s counter masquerade comment \"oifname $out ip saddr %s counter masquerade\"\n  }\n}\nEOF",
			lab, u.Subnet, u.Subnet),
	}
}
