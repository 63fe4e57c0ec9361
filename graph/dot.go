package graph

import (
	"fmt"
	"strings"

	"github.com/nsrouter/nsrouter/topology"
)

// dotHeader sets the look shared by every diagram: top to bottom, sans
// serif, white shapes with rounded corners.
const dotHeader = `	graph [rankdir=TB, fontname="Helvetica,Arial,sans-serif", fontsize=11, nodesep=0.3, ranksep=0.6, newrank=true];
	node [fontname="Helvetica,Arial,sans-serif", fontsize=10, shape=box, style="rounded,filled", fillcolor=white, margin="0.12,0.05"];
	edge [fontname="Helvetica,Arial,sans-serif", fontsize=9, fontcolor="#555555", color="#555555", penwidth=1.5];
`

// dotCluster is the frame of each kind of node.
var dotCluster = map[kind]string{
	kindHost:      `style="rounded,dashed"; color="#7f8c8d"; labelloc=t;`,
	kindNamespace: `style="rounded,filled"; fillcolor="#eaf2f8"; color="#2e86c1"; labelloc=b;`,
	kindRouter:    `style="rounded,filled"; fillcolor="#fdebd0"; color="#d35400"; penwidth=2; labelloc=b;`,
}

const dotBridge = `shape=box, style="filled", fillcolor="#d5f5e3", color="#1e8449", penwidth=2`

// DOT returns t as a Graphviz graph, laid out top to bottom; `dot -Tsvg`
// draws it. Names are quoted and escaped, so any node or interface name
// is safe.
func DOT(t *topology.Topology) string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s {\n", quote(t.Name))
	b.WriteString(dotHeader)
	fmt.Fprintf(&b, "\tlabel=%s; labelloc=t; fontsize=13;\n", html([]string{"lab " + t.Name}))
	for _, n := range t.Nodes {
		dotNode(&b, n)
	}
	level := levels(t)
	for _, l := range t.Links {
		dotLink(&b, l, level)
	}
	b.WriteString("}\n")
	return b.String()
}

// dotNode writes n as a cluster holding a shape per plain veth end and
// per bridge; a node without either gets a placeholder, since Graphviz
// drops empty clusters.
func dotNode(b *strings.Builder, n *topology.Node) {
	fmt.Fprintf(b, "\n\tsubgraph %s {\n", quote("cluster "+n.Name))
	fmt.Fprintf(b, "\t\tlabel=%s; %s\n", html(title(n)), dotCluster[kindOf(n)])
	var ids []string
	for _, i := range plain(n) {
		fmt.Fprintf(b, "\t\t%s [label=%s];\n", ifaceID(i), html(ifaceLines(i)))
		ids = append(ids, ifaceID(i))
	}
	for _, br := range n.Bridges {
		fmt.Fprintf(b, "\t\t%s [label=%s, %s];\n", bridgeID(br), html(bridgeLines(br)), dotBridge)
		ids = append(ids, bridgeID(br))
	}
	switch {
	case len(ids) == 0:
		fmt.Fprintf(b, "\t\t%s [label=\"no links\", shape=plaintext, style=\"\"];\n", quote("node "+n.Name))
	case len(ids) > 1: // one row per node keeps each box compact
		fmt.Fprintf(b, "\t\t{rank=same; %s;}\n", strings.Join(ids, "; "))
	}
	b.WriteString("\t}\n")
}

// dotLink writes l as a line between the shapes of its ends, labelled
// with the port's name where it meets a bridge.
func dotLink(b *strings.Builder, l *topology.Link, level map[*topology.Node]int) {
	from, to := orient(l, level)
	var attrs []string
	if p := portName(from); p != "" {
		attrs = append(attrs, "label="+quote(p))
	}
	if p := portName(to); p != "" {
		attrs = append(attrs, "label="+quote(p))
	}
	fmt.Fprintf(b, "\t%s -- %s", endID(from), endID(to))
	if len(attrs) > 0 {
		fmt.Fprintf(b, " [%s]", strings.Join(attrs, ", "))
	}
	b.WriteString(";\n")
}

func ifaceID(i *topology.Interface) string { return quote("if " + i.Node.Name + ":" + i.Name) }

func bridgeID(br *topology.Bridge) string { return quote("br " + br.Node.Name + ":" + br.Name) }

// endID names the shape a link's end is drawn at: its bridge for a
// generated port, otherwise its own.
func endID(i *topology.Interface) string {
	if i.Master != nil {
		return bridgeID(i.Master)
	}
	return ifaceID(i)
}

var dotEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", ``)

// quote makes s a DOT quoted string. Backslashes are doubled too, since
// in labels DOT reads \N, \G and others as escapes.
func quote(s string) string { return `"` + dotEscaper.Replace(s) + `"` }

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "\n", " ")

// html makes lines one DOT HTML label: the first line bold, the others
// smaller below it.
func html(lines []string) string {
	var b strings.Builder
	b.WriteString("<<b>" + htmlEscaper.Replace(lines[0]) + "</b>")
	if len(lines) > 1 {
		esc := make([]string, len(lines)-1)
		for i, l := range lines[1:] {
			esc[i] = htmlEscaper.Replace(l)
		}
		b.WriteString(`<br/><font point-size="9">` + strings.Join(esc, "<br/>") + "</font>")
	}
	b.WriteString(">")
	return b.String()
}
