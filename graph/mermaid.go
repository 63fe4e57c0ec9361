package graph

import (
	"fmt"
	"strings"

	"github.com/nsrouter/nsrouter/topology"
)

// mermaidStyle is the frame of each kind of node, as in DOT.
var mermaidStyle = map[kind]string{
	kindHost:      "fill:none,stroke:#7f8c8d,stroke-dasharray:5 5",
	kindNamespace: "fill:#eaf2f8,stroke:#2e86c1",
	kindRouter:    "fill:#fdebd0,stroke:#d35400,stroke-width:2px",
}

// Mermaid returns t as a Mermaid flowchart, top to bottom, for Markdown
// that renders Mermaid. Shapes get generated identifiers (n1, n1i1,
// n1b1) and every name is escaped inside quoted labels.
func Mermaid(t *topology.Topology) string {
	var b strings.Builder
	ids := map[any]string{}
	fmt.Fprintf(&b, "flowchart TB\n")
	for k, n := range t.Nodes {
		mermaidNode(&b, t, n, fmt.Sprintf("n%d", k+1), ids)
	}
	level := levels(t)
	for _, l := range t.Links {
		mermaidLink(&b, l, level, ids)
	}
	b.WriteString("  classDef bridge fill:#d5f5e3,stroke:#1e8449,stroke-width:2px\n")
	for k, n := range t.Nodes {
		fmt.Fprintf(&b, "  style n%d %s\n", k+1, mermaidStyle[kindOf(n)])
	}
	return b.String()
}

// mermaidNode writes n as a subgraph holding a shape per plain veth end
// (a rounded box) and per bridge (a hexagon), recording their ids.
func mermaidNode(b *strings.Builder, t *topology.Topology, n *topology.Node, id string, ids map[any]string) {
	fmt.Fprintf(b, "  subgraph %s[%s]\n", id, mermaidText(title(t, n)))
	ifaces := plain(n)
	for k, i := range ifaces {
		ids[i] = fmt.Sprintf("%si%d", id, k+1)
		fmt.Fprintf(b, "    %s(%s)\n", ids[i], mermaidText(ifaceLines(i)))
	}
	for k, br := range n.Bridges {
		ids[br] = fmt.Sprintf("%sb%d", id, k+1)
		fmt.Fprintf(b, "    %s{{%s}}:::bridge\n", ids[br], mermaidText(bridgeLines(br)))
	}
	if len(ifaces) == 0 && len(n.Bridges) == 0 {
		fmt.Fprintf(b, "    %sx[\"no links\"]\n", id)
	}
	b.WriteString("  end\n")
}

// mermaidLink writes l as a line, labelled with the port's name where
// it meets a bridge, and dotted when the link is left down.
func mermaidLink(b *strings.Builder, l *topology.Link, level map[*topology.Node]int, ids map[any]string) {
	from, to := orient(l, level)
	line := "---"
	if down(l) {
		line = "-.-"
	}
	if p := portName(from) + portName(to); p != "" {
		line += "|" + mermaidText([]string{p}) + "|"
	}
	fmt.Fprintf(b, "  %s %s %s\n", mermaidEnd(from, ids), line, mermaidEnd(to, ids))
}

// mermaidEnd names the shape a link's end is drawn at: its bridge for a
// generated port, otherwise its own.
func mermaidEnd(i *topology.Interface, ids map[any]string) string {
	if i.Master != nil {
		return ids[i.Master]
	}
	return ids[i]
}

// mermaidEscaper turns the characters Mermaid reads inside a quoted label
// into its entity codes; '#' first of all, since it starts one.
var mermaidEscaper = strings.NewReplacer("#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", " ")

// mermaidText makes lines one quoted Mermaid label.
func mermaidText(lines []string) string {
	esc := make([]string, len(lines))
	for i, l := range lines {
		esc[i] = mermaidEscaper.Replace(l)
	}
	return `"` + strings.Join(esc, "<br/>") + `"`
}
