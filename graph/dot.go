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
	kindHost:      `style="rounded,dashed"; color="#7f8c8d";`,
	kindNamespace: `style="rounded,filled"; fillcolor="#eaf2f8"; color="#2e86c1";`,
	kindRouter:    `style="rounded,filled"; fillcolor="#fdebd0"; color="#d35400"; penwidth=2;`,
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
	level := levels(t)
	up, down := map[*topology.Node]bool{}, map[*topology.Node]bool{}
	for _, l := range t.Links {
		from, to := orient(l, level)
		down[from.Node], up[to.Node] = true, true
	}
	for _, n := range t.Nodes {
		dotNode(&b, t, n, up[n], down[n])
	}
	for _, l := range t.Links {
		dotLink(&b, l, level)
	}
	b.WriteString("}\n")
	return b.String()
}

// dotNode writes n as a cluster holding one row: a shape per plain veth
// end and per bridge. The title goes where no line can cross it: below
// the row when every line arrives from above, above it when every line
// leaves downwards, and otherwise beside it, as a shape of its own.
func dotNode(b *strings.Builder, t *topology.Topology, n *topology.Node, up, down bool) {
	fmt.Fprintf(b, "\n\tsubgraph %s {\n", quote("cluster "+n.Name))
	var row []string
	switch {
	case !down:
		fmt.Fprintf(b, "\t\tlabel=%s; labelloc=b; %s\n", html(title(t, n)), dotCluster[kindOf(n)])
	case !up:
		fmt.Fprintf(b, "\t\tlabel=%s; labelloc=t; %s\n", html(title(t, n)), dotCluster[kindOf(n)])
	default:
		fmt.Fprintf(b, "\t\tlabel=\"\"; %s\n", dotCluster[kindOf(n)])
		head := quote("node " + n.Name)
		fmt.Fprintf(b, "\t\t%s [label=%s, shape=plaintext, style=\"\", fontsize=11];\n", head, html(title(t, n)))
		row = append(row, head)
	}
	for _, i := range plain(n) {
		fmt.Fprintf(b, "\t\t%s [label=%s];\n", ifaceID(i), html(ifaceLines(i)))
		row = append(row, ifaceID(i))
	}
	for _, br := range n.Bridges {
		fmt.Fprintf(b, "\t\t%s [label=%s, %s];\n", bridgeID(br), html(bridgeLines(br)), dotBridge)
		row = append(row, bridgeID(br))
	}
	dotRow(b, n, row, up && down)
	b.WriteString("\t}\n")
}

// dotRow keeps the shapes of a cluster on one rank, the title (when
// titled is set) leftmost. Graphviz drops an empty cluster, so a node
// without shapes gets a placeholder.
func dotRow(b *strings.Builder, n *topology.Node, row []string, titled bool) {
	switch {
	case len(row) == 0:
		fmt.Fprintf(b, "\t\t%s [label=\"no links\", shape=plaintext, style=\"\"];\n", quote("node "+n.Name))
	case len(row) > 1:
		fmt.Fprintf(b, "\t\t{rank=same; %s;}\n", strings.Join(row, "; "))
	}
	if titled {
		for _, id := range row[1:] {
			fmt.Fprintf(b, "\t\t%s -- %s [style=invis];\n", row[0], id)
		}
	}
}

// dotLink writes l as a line between the shapes of its ends, labelled
// with the port's name where it meets a bridge, and dashed when the link
// is left down.
func dotLink(b *strings.Builder, l *topology.Link, level map[*topology.Node]int) {
	from, to := orient(l, level)
	var attrs []string
	if p := portName(from); p != "" {
		attrs = append(attrs, "label="+quote(p))
	}
	if p := portName(to); p != "" {
		attrs = append(attrs, "label="+quote(p))
	}
	if down(l) {
		attrs = append(attrs, "style=dashed")
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
