package graph

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsrouter/nsrouter/topology"
)

// chainYAML has what the built-in topology lacks: names with '.' and '-',
// the host on a plain veth, a bridge in a lab node, IPv6, a loopback
// address, an input firewall, a link left down, a node without links.
const chainYAML = `name: chain
nodes:
  host:
    interfaces:
      veth-lab: {addresses: [192.0.2.1/30]}
  r1.edge:
    forwarding: {ipv4: true, ipv6: true}
    loopback: [10.0.0.1/32]
    firewall:
      input: {policy: drop, rules: [{proto: icmp, action: accept}]}
    interfaces:
      up: {addresses: [192.0.2.2/30, 2001:db8::2/64]}
      down: {addresses: [198.51.100.1/30]}
    routes:
      - {to: default, via: 192.0.2.1}
  r2-core:
    forwarding: {ipv4: true}
    interfaces:
      up: {addresses: [198.51.100.2/30]}
      lan: {addresses: [203.0.113.1/24]}
  sw:
    bridges:
      lan0: {}
  pc1:
    interfaces:
      eth0: {addresses: [203.0.113.10/24]}
  lonely: {}
links:
  - endpoints: [host:veth-lab, r1.edge:up]
  - endpoints: [r1.edge:down, r2-core:up]
  - endpoints: [r2-core:lan, sw:lan0]
  - endpoints: [pc1:eth0, sw:lan0]
  - endpoints: [pc1:spare, r2-core:spare]
    state: down
`

func parse(t *testing.T, src string) *topology.Topology {
	t.Helper()
	top, err := topology.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parsing test topology: %v", err)
	}
	return top
}

// topologies are the test topologies, by name.
func topologies(t *testing.T) map[string]*topology.Topology {
	return map[string]*topology.Topology{"builtin": topology.Builtin(), "chain": parse(t, chainYAML)}
}

// wantAll reports every string of want that out lacks.
func wantAll(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q; output:\n%s", what, w, out)
		}
	}
}

// shown lists what a diagram of top must show: every node, plain
// interface, bridge, generated port and address.
func shown(top *topology.Topology) []string {
	var want []string
	for _, n := range top.Nodes {
		want = append(want, n.Name)
		for _, i := range n.Interfaces {
			want = append(want, i.Name)
			for _, a := range i.Addrs {
				want = append(want, a.String())
			}
		}
		for _, b := range n.Bridges {
			want = append(want, b.Name+" (bridge)")
			for _, a := range b.Addrs {
				want = append(want, a.String())
			}
		}
	}
	return want
}

// hostile builds by hand a topology with names that validation would
// refuse, full of characters DOT, HTML and Mermaid treat specially.
func hostile() *topology.Topology {
	a := &topology.Node{Name: `a"b\c`}
	b := &topology.Node{Name: "x<y>&z;{}"}
	ia := &topology.Interface{Node: a, Name: `e"0`}
	ib := &topology.Interface{Node: b, Name: `e\1 --`}
	l := &topology.Link{A: ia, B: ib}
	ia.Link, ib.Link = l, l
	a.Interfaces, b.Interfaces = []*topology.Interface{ia}, []*topology.Interface{ib}
	return &topology.Topology{Name: `la"b`, Nodes: []*topology.Node{a, b}, Links: []*topology.Link{l}}
}

func TestDOTShowsEverything(t *testing.T) {
	for name, top := range topologies(t) {
		out := DOT(top)
		wantAll(t, name, out, shown(top)...)
		if !strings.HasPrefix(out, `graph "`+top.Name+`" {`) || !strings.HasSuffix(out, "}\n") {
			t.Errorf("%s: not one DOT graph:\n%s", name, out)
		}
		if got := strings.Count(out, " -- ") - strings.Count(out, "style=invis"); got != len(top.Links) {
			t.Errorf("%s: %d lines, want one per link (%d)", name, got, len(top.Links))
		}
	}
}

func TestDOTBuiltin(t *testing.T) {
	out := DOT(topology.Builtin())
	wantAll(t, "builtin", out,
		`subgraph "cluster router-ns" {`,
		`fillcolor="#fdebd0"`, // the router's colour
		`style="rounded,dashed"`,
		"IPv4 forwarding",
		"forward policy drop, 2 rules",
		"route 10.12.0.0/24 via 10.11.0.3",
		`"br host:br0" -- "if ns0:eth0" [label="ns0-eth0"];`,
		`"br host:br1" -- "if router-ns:eth1" [label="router-ns-eth1"];`,
	)
	if strings.Count(out, `fillcolor="#fdebd0"`) != 1 {
		t.Errorf("want only router-ns drawn as a router:\n%s", out)
	}
}

// TestDOTOrder checks that lines point away from the host, so that it
// is drawn on top, and that the router's middle box keeps its title
// beside its interfaces.
func TestDOTOrder(t *testing.T) {
	out := DOT(parse(t, chainYAML))
	wantAll(t, "chain", out,
		`"if host:veth-lab" -- "if r1.edge:up";`,
		`"if r1.edge:down" -- "if r2-core:up";`,
		`"if r2-core:lan" -- "br sw:lan0" [label="r2-core-lan"];`,
		`"br sw:lan0" -- "if pc1:eth0" [label="pc1-eth0"];`,
		`"node r1.edge" [label=<<b>r1.edge</b><br/><font point-size="9">router<br/>IPv4 and IPv6 forwarding<br/>`+
			`lo 10.0.0.1/32<br/>input policy drop, 1 rule<br/>route default via 192.0.2.1</font>>`,
		`"if r2-core:spare" -- "if pc1:spare" [style=dashed];`,
		`spare (down)`,
		`"node lonely" [label="no links"`,
	)
}

func TestDOTDeterministic(t *testing.T) {
	a, b := DOT(parse(t, chainYAML)), DOT(parse(t, chainYAML))
	if a != b {
		t.Errorf("two runs differ:\n%s\n---\n%s", a, b)
	}
}

func TestEscaping(t *testing.T) {
	for _, c := range []struct {
		fn       func(string) string
		in, want string
	}{
		{quote, `r1.edge-2`, `"r1.edge-2"`},
		{quote, `a"b\c`, `"a\"b\\c"`},
		{quote, "x\\N\ny", `"x\\N\ny"`},
		{func(s string) string { return html([]string{s}) }, `a<b>&"c"`, `<<b>a&lt;b&gt;&amp;&quot;c&quot;</b>>`},
		{func(s string) string { return mermaidText([]string{s}) }, `a"#<b>`, `"a#quot;#35;#lt;b#gt;"`},
	} {
		if got := c.fn(c.in); got != c.want {
			t.Errorf("escaping %q: got %s, want %s", c.in, got, c.want)
		}
	}
}

func TestMermaid(t *testing.T) {
	for name, top := range topologies(t) {
		out := Mermaid(top)
		wantAll(t, name, out, shown(top)...)
		if !strings.HasPrefix(out, "flowchart TB\n") {
			t.Errorf("%s: not a flowchart:\n%s", name, out)
		}
		if strings.Count(out, "subgraph ") != len(top.Nodes) || strings.Count(out, "\n  end\n") != len(top.Nodes) {
			t.Errorf("%s: want one subgraph per node:\n%s", name, out)
		}
	}
	wantAll(t, "builtin", Mermaid(topology.Builtin()),
		`n1b1{{"br0 (bridge)<br/>10.11.0.1/24"}}:::bridge`,
		`n1b1 ---|"ns0-eth0"| n2i1`,
		"style n4 fill:#fdebd0,stroke:#d35400,stroke-width:2px", // router-ns
	)
}

// TestDotAcceptsExamples runs Graphviz on the diagram of every example
// file and of the test topologies.
func TestDotAcceptsExamples(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Fatal("dot is not on PATH: the test needs it as a witness (apt-get install graphviz; .ci/run installs it)")
	}
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files found: %v", err)
	}
	tops := topologies(t)
	tops["hostile"] = hostile()
	for _, f := range files {
		top, _, err := topology.Load(f, nil)
		if err != nil {
			t.Errorf("loading %s: %v", f, err)
			continue
		}
		tops[f] = top
	}
	for name, top := range tops {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(dot, "-Tsvg")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(DOT(top)), &stdout, &stderr
		if err := cmd.Run(); err != nil || strings.Contains(stderr.String(), "Error") {
			t.Errorf("dot -Tsvg on %s: %v\n%s", name, err, stderr.String())
			continue
		}
		if !strings.Contains(stdout.String(), "</svg>") {
			t.Errorf("dot -Tsvg on %s: no SVG in output", name)
		}
		if name == "hostile" && !strings.Contains(stdout.String(), `x&lt;y&gt;&amp;z;{}`) {
			t.Errorf("dot -Tsvg on %s: node name mangled:\n%s", name, stdout.String())
		}
	}
}
