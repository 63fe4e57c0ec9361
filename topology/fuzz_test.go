package topology

import (
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzParse feeds Parse and Check with the examples, the invalid corpus
// and whatever the fuzzer makes of them. Neither may panic; Check's
// problems must carry positions; and a topology Parse accepts must hold
// together whatever the plan makes of it later.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"../examples/*.yaml", "testdata/invalid/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			if slowSeed[filepath.Base(file)] {
				continue
			}
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if bigGroup(data) {
			return // valid, and slow by design: tens of thousands of nodes per input
		}
		problems := Check("fuzz.yaml", data)
		checkPositions(t, problems)
		top, err := Parse("fuzz.yaml", data)
		hasErrors := false
		for _, p := range problems {
			hasErrors = hasErrors || !p.Warning
		}
		if (err != nil) != hasErrors {
			t.Fatalf("Parse error %v, but Check reported\n%s", err, reportLines(problems))
		}
		if err != nil {
			if _, ok := err.(*ErrorList); !ok {
				t.Fatalf("Parse error is %T, want *ErrorList", err)
			}
			return
		}
		if msg := invariants(top); msg != "" {
			t.Fatalf("Parse accepted a topology that %s", msg)
		}
	})
}

// checkPositions wants every problem on a line and column of the file;
// only a message about the file as a whole may have none.
func checkPositions(t *testing.T, problems []Error) {
	t.Helper()
	for _, p := range problems {
		if p.Msg == "" {
			t.Errorf("problem with an empty message at %d:%d", p.Pos.Line, p.Pos.Col)
		}
		if p.Pos.Line > 0 && p.Pos.Col > 0 || wholeFile(p.Msg) {
			continue
		}
		t.Errorf("problem without a position: %s", p.Error())
	}
}

// wholeFile reports whether a message is about the file rather than a
// place in it.
func wholeFile(msg string) bool {
	return strings.HasPrefix(msg, "the file ")
}

// invariants returns what is wrong with a topology Parse accepted, or "".
// It checks only what holds whatever plan is made from the topology.
func invariants(top *Topology) string {
	seen := map[string]bool{}
	for _, n := range top.Nodes {
		if seen[n.Name] {
			return fmt.Sprintf("has two nodes named %q", n.Name)
		}
		seen[n.Name] = true
		if n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00") {
			return fmt.Sprintf("has a node named %q, unsafe as a file name", n.Name)
		}
		if top.Node(n.Name) != n {
			return fmt.Sprintf("does not find node %s by name", n.Name)
		}
		if msg := nodeInvariants(n); msg != "" {
			return msg
		}
	}
	for k, l := range top.Links {
		if msg := linkInvariants(l); msg != "" {
			return fmt.Sprintf("has a link %d that %s", k, msg)
		}
	}
	for k, e := range top.Expect {
		if e.From == nil || !e.Addr.IsValid() {
			return fmt.Sprintf("has expectation %d without a source node or a valid address", k)
		}
		if e.Target != nil && top.Node(e.Target.Name) != e.Target {
			return fmt.Sprintf("has expectation %d aimed at a node not in the lab", k)
		}
	}
	return ""
}

func nodeInvariants(n *Node) string {
	names := map[string]bool{}
	for _, i := range n.Interfaces {
		if i.Node != n || i.Link == nil {
			return fmt.Sprintf("lists %s under node %s without its node or link", i, n.Name)
		}
		if msg := ifNameInvariant(n, i.Name, names); msg != "" {
			return msg
		}
		if n.Interface(i.Name) != i {
			return fmt.Sprintf("does not find %s by name", i)
		}
		for _, p := range i.Addrs {
			if !p.IsValid() {
				return fmt.Sprintf("gives %s an invalid address", i)
			}
		}
	}
	for _, b := range n.Bridges {
		if b.Node != n {
			return fmt.Sprintf("lists bridge %s under node %s with another node", b.Name, n.Name)
		}
		if msg := ifNameInvariant(n, b.Name, names); msg != "" {
			return msg
		}
		for _, p := range b.Ports {
			if p.Master != b || p.Node != n {
				return fmt.Sprintf("has a port %s of bridge %s:%s that is not its own", p, n.Name, b.Name)
			}
		}
	}
	for _, r := range n.Routes {
		if !r.Dst.IsValid() || r.Dst != r.Dst.Masked() {
			return fmt.Sprintf("gives node %s a route to %v, not a network", n.Name, r.Dst)
		}
	}
	return ""
}

// ifNameInvariant checks one interface or bridge name of n against the
// kernel's rules and the names seen so far.
func ifNameInvariant(n *Node, name string, seen map[string]bool) string {
	switch {
	case name == "" || len(name) > 15:
		return fmt.Sprintf("names an interface of node %s %q, not 1 to 15 bytes", n.Name, name)
	case strings.ContainsAny(name, "/: \t\n\x00"):
		return fmt.Sprintf("names an interface of node %s %q, not a kernel name", n.Name, name)
	case seen[name]:
		return fmt.Sprintf("gives node %s two interfaces named %q", n.Name, name)
	}
	seen[name] = true
	return ""
}

func linkInvariants(l *Link) string {
	switch {
	case l.A == nil || l.B == nil:
		return "lacks an end"
	case l.A.Link != l || l.B.Link != l:
		return fmt.Sprintf("has an end that does not point back (%s, %s)", l.A, l.B)
	case l.A.Node == l.B.Node:
		return fmt.Sprintf("joins node %s to itself", l.A.Node.Name)
	case l.A.Master != nil:
		return fmt.Sprintf("has a bridge port %s as end A", l.A)
	case l.A.Peer() != l.B || l.B.Peer() != l.A:
		return "has ends that are not each other's peer"
	}
	return ""
}

// FuzzAddOffset holds the fast address arithmetic of the pools to the
// plain big-number one.
func FuzzAddOffset(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0}, uint64(1))
	f.Add([]byte{255, 255, 255, 254}, uint64(3))
	f.Add(netip.MustParseAddr("fd00::ffff:ffff:ffff:ffff").AsSlice(), uint64(1))
	f.Add(netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").AsSlice(), ^uint64(0))
	f.Fuzz(func(t *testing.T, ip []byte, n uint64) {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return
		}
		got, want := addOffset(a, n), addBig(a, new(big.Int).SetUint64(n))
		if got != want {
			t.Errorf("addOffset(%s, %d) = %s, want %s", a, n, got, want)
		}
	})
}

// slowSeed are corpus files that test limits (a 10,000-level nesting, an
// alias bomb): every mutation of them runs into the limit again, slowly,
// and starves the fuzzer. The corpus test covers them.
var slowSeed = map[string]bool{"alias-bomb.yaml": true, "deep-nesting-limit.yaml": true}

var countRE = regexp.MustCompile(`count\s*:\s*\+?0*(\d{5,})`)

// bigGroup reports whether the input asks for a group of 10,000 members
// or more. Such inputs are valid and take a second or more each, which
// leaves the fuzzer no time for anything else; the benchmarks cover them.
func bigGroup(data []byte) bool { return countRE.Match(data) }
