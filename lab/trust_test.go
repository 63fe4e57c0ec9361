package lab_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsrouter/nsrouter/internal/sandbox"
	"github.com/nsrouter/nsrouter/internal/witness"
	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

var errInjected = errors.New("injected failure")

// TestFailAtEveryStep fails a new lab's up after each step of the built-in
// plan in turn: the run must roll back to the sandbox as it was, and a
// normal up and check must then pass.
func TestFailAtEveryStep(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	steps := len(plan.Build(top).Steps)
	before := witness.Snapshot(t)
	for k := 0; k < steps; k++ {
		o := lab.Options{AfterStep: func(i int) error {
			if i == k {
				return errInjected
			}
			return nil
		}}
		_, err := lab.Up(ctx(t), top, topology.BuiltinYAML(), o)
		if !errors.Is(err, errInjected) {
			t.Fatalf("step %d: up returned %v, want the injected failure", k, err)
		}
		if after := witness.Snapshot(t); after != before {
			t.Fatalf("after a failure at step %d the rollback left:\n%s", k, witness.Diff(before, after))
		}
	}
	up(t, top)
	if rep := check(t, top); rep.Failed != 0 {
		t.Errorf("check after the failures: %d failed", rep.Failed)
	}
}

// TestFailOnExistingLabKeepsLastGoodState edits a running lab, fails the
// run half-way, and expects the lab as the old file describes it.
func TestFailOnExistingLabKeepsLastGoodState(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	good := witness.Snapshot(t)
	edited := editBuiltin(t, addHost("ns2", "br0", "10.11.0.4/24", "10.12.0.0/24", "10.11.0.3"))
	_, err := lab.Up(ctx(t), edited, []byte("edited"), lab.Options{AfterStep: func(i int) error {
		if i == 20 {
			return errInjected
		}
		return nil
	}})
	if !errors.Is(err, errInjected) {
		t.Fatalf("up of the edit: %v, want the injected failure", err)
	}
	if after := witness.Snapshot(t); after != good {
		t.Errorf("after a failed edit the lab is not as before:\n%s", witness.Diff(good, after))
	}
	if rep := check(t, top); rep.Failed != 0 {
		t.Errorf("check of the last good file: %d failed", rep.Failed)
	}
}

// addHost returns YAML lines for a host on a bridge of the built-in lab.
func addHost(name, bridge, addr, dst, via string) string {
	return fmt.Sprintf(`  %s:
    interfaces:
      eth0: {addresses: [%s]}
    routes:
      - {to: %s, via: %s}
`, name, addr, dst, via) + "#LINK " + name + ":eth0 host:" + bridge
}

// editBuiltin returns the built-in topology with extra nodes (and their
// links, written as "#LINK a b" lines) inserted.
func editBuiltin(t *testing.T, extra ...string) *topology.Topology {
	t.Helper()
	return parseEdited(t, string(topology.BuiltinYAML()), extra...)
}

func parseEdited(t *testing.T, base string, extra ...string) *topology.Topology {
	t.Helper()
	src := base
	for _, e := range extra {
		nodes, link, _ := strings.Cut(e, "#LINK ")
		src = strings.Replace(src, "\nlinks:\n", "\n"+nodes+"\nlinks:\n", 1)
		if link != "" {
			ends := strings.Fields(link)
			src = strings.Replace(src, "\nlinks:\n", fmt.Sprintf("\nlinks:\n  - endpoints: [%s, %s]\n", ends[0], ends[1]), 1)
		}
	}
	top, err := topology.Parse("edited.yaml", []byte(src))
	if err != nil {
		t.Fatalf("edited topology: %v\n%s", err, src)
	}
	return top
}

// TestConcurrentUps runs two ups of one lab at once, and two labs at once.
func TestConcurrentUps(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	builtin := topology.Builtin()
	star, starSrc := loadExample(t, "p2p-star")
	runAll := func(fns ...func() error) {
		var wg sync.WaitGroup
		errs := make([]error, len(fns))
		for i, f := range fns {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = f() }()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Errorf("concurrent up: %v", err)
			}
		}
	}
	upBuiltin := func() error {
		_, err := lab.Up(context.Background(), builtin, topology.BuiltinYAML(), lab.Options{})
		return err
	}
	runAll(upBuiltin, upBuiltin)
	runAll(upBuiltin, func() error {
		_, err := lab.Up(context.Background(), star, starSrc, lab.Options{})
		return err
	})
	for _, top := range []*topology.Topology{builtin, star} {
		if rep := check(t, top); rep.Failed != 0 {
			t.Errorf("check %s after concurrent ups: %d failed", top.Name, rep.Failed)
		}
	}
}

// TestDownThenUpAtOnce: the kernel frees namespaces asynchronously, and
// an up right after down must still work every time.
func TestDownThenUpAtOnce(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	top := topology.Builtin()
	up(t, top)
	for i := range 5 {
		if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
			t.Fatalf("round %d: down: %v", i, err)
		}
		up(t, top)
	}
	if rep := check(t, top); rep.Failed != 0 {
		t.Errorf("check: %d failed", rep.Failed)
	}
}

// inNode runs fn on a thread in node's namespace: sockets it opens stay
// in that namespace.
func inNode(t *testing.T, node string, fn func() error) {
	t.Helper()
	ns, err := kernel.OpenNamed(node)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := ns.Do(fn); err != nil {
		t.Fatalf("in %s: %v", node, err)
	}
}

// listenIn listens on a TCP port in node; the test closes it at its end.
func listenIn(t *testing.T, node string, port int) net.Listener {
	t.Helper()
	var l net.Listener
	inNode(t, node, func() (err error) {
		l, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	t.Cleanup(func() { l.Close() })
	return l
}

// dialFrom opens a TCP connection from node to addr; the test closes it
// at its end.
func dialFrom(t *testing.T, node, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	inNode(t, node, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// echoServer accepts one connection in ns and echoes lines back.
func echoServer(t *testing.T, node string, port int) {
	t.Helper()
	l := listenIn(t, node, port)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			c.Write([]byte(line))
		}
	}()
}

type echoClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialEcho(t *testing.T, node, addr string) *echoClient {
	t.Helper()
	c := dialFrom(t, node, addr)
	return &echoClient{c: c, r: bufio.NewReader(c)}
}

// alive sends a line and expects it back: the connection survived.
func (e *echoClient) alive(t *testing.T, step string) {
	t.Helper()
	e.c.SetDeadline(time.Now().Add(3 * time.Second))
	msg := "still here after " + step + "\n"
	if _, err := e.c.Write([]byte(msg)); err != nil {
		t.Fatalf("after %s the TCP connection is gone: %v", step, err)
	}
	got, err := e.r.ReadString('\n')
	if err != nil || got != msg {
		t.Fatalf("after %s the TCP connection is gone: %q, %v", step, got, err)
	}
}

const extraRule = `          - {in: eth0, out: eth1, proto: udp, dport: 9999, action: drop}
`

// TestEditSequence edits a running lab five times while a TCP connection
// between two unchanged nodes (ns0 and ns1, across the router) carries
// data: it must survive every step, each edit must leave exactly what the
// file says, and down must leave the sandbox as it found it.
func TestEditSequence(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	before := witness.Snapshot(t)
	base := strings.Replace(string(topology.BuiltinYAML()), "        rules:\n", "        rules:\n"+extraRule, 1)
	apply := func(step string, extra ...string) *topology.Topology {
		t.Helper()
		top := parseEdited(t, base, extra...)
		if _, err := lab.Up(ctx(t), top, []byte(step), lab.Options{}); err != nil {
			t.Fatalf("%s: up: %v", step, err)
		}
		res, err := lab.Up(ctx(t), top, []byte(step), lab.Options{DryRun: true})
		if err != nil || len(res.Changes) != 0 {
			t.Errorf("%s: the kernel still differs from the file: %v %v", step, res.Changes, err)
		}
		if rep := check(t, top); rep.Failed != 0 {
			t.Errorf("%s: check: %d failed: %+v", step, rep.Failed, rep.Results)
		}
		return top
	}
	apply("the first up")
	echoServer(t, "ns1", 7777)
	conn := dialEcho(t, "ns0", "10.12.0.2:7777")
	conn.alive(t, "the first up")

	apply("adding a host", addHost("ns2", "br0", "10.11.0.4/24", "10.12.0.0/24", "10.11.0.3"))
	conn.alive(t, "adding a host")
	apply("moving it to the other bridge", addHost("ns2", "br1", "10.12.0.4/24", "10.11.0.0/24", "10.12.0.3"))
	conn.alive(t, "moving it to the other bridge")
	if out := witness.Run(t, "ip", "-o", "link", "show", "ns2-eth0"); !strings.Contains(out, "master br1") {
		t.Errorf("ns2's port is not on br1: %s", out)
	}
	apply("changing a route", addHost("ns2", "br1", "10.12.0.4/24", "10.11.0.0/16", "10.12.0.3"))
	conn.alive(t, "changing a route")
	if out := witness.Run(t, "ip", "-n", "ns2", "route"); strings.Contains(out, "10.11.0.0/24") || !strings.Contains(out, "10.11.0.0/16") {
		t.Errorf("ns2's routes after the change:\n%s", out)
	}
	base = strings.Replace(base, extraRule, "", 1)
	apply("removing the router's firewall rule", addHost("ns2", "br1", "10.12.0.4/24", "10.11.0.0/16", "10.12.0.3"))
	conn.alive(t, "removing the router's firewall rule")
	if out := witness.InNS(t, "router-ns", "nft", "list", "ruleset"); strings.Contains(out, "9999") {
		t.Errorf("the removed rule is still there:\n%s", out)
	}
	top := apply("removing the host")
	conn.alive(t, "removing the host")
	if _, ok := witness.Try("ip", "netns", "exec", "ns2", "true"); ok {
		t.Errorf("ns2 still exists after it was removed from the file")
	}

	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatalf("down: %v", err)
	}
	witness.Unchanged(t, before, "after down")
}

// TestFileDescriptorsBounded builds 1,000 hosts with the process limited
// to 256 open files: namespace handles must be closed as the run goes.
func TestFileDescriptorsBounded(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	src := `name: fds
pools:
  p2p: {ipv4: 10.200.0.0/16}
nodes:
  r: {forwarding: {ipv4: true}}
groups:
  - {name: h, count: 1000, connect: r, pool: p2p, default-route: true}
expect:
  - {from: h1, to: h1000, ttl: 63}
  - {from: h500, to: r}
`
	top, err := topology.Parse("fds.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	lim := syscall.Rlimit{Cur: 256, Max: 256}
	var old syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	openBefore := openFiles(t)
	long, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a loaded machine is slow
	defer cancel()
	if _, err := lab.Up(long, top, []byte(src), lab.Options{}); err != nil {
		t.Fatalf("up of 1,000 hosts with 256 open files allowed: %v", err)
	}
	if rep := check(t, top); rep.Failed != 0 {
		t.Errorf("check: %+v", rep.Results)
	}
	if n := openFiles(t); n > openBefore+4 {
		t.Errorf("%d files open after up, %d before: handles leak", n, openBefore)
	}
	if _, err := lab.Down(ctx(t), top.Name, lab.Options{}); err != nil {
		t.Fatalf("down: %v", err)
	}
}

func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestStateEdit: `state: down` added to a running lab's link takes both
// ends down, keeping their IPv6 addresses, and removed brings them up
// again; up reports each as a change, and nothing more.
func TestStateEdit(t *testing.T) {
	if !sandbox.Enter(t) {
		return
	}
	const upFile = `name: st
nodes:
  x: {interfaces: {eth0: {addresses: [10.70.0.1/30, "fd70::1/64"]}}}
  y: {interfaces: {eth0: {addresses: [10.70.0.2/30, "fd70::2/64"]}}}
links:
  - endpoints: [x:eth0, y:eth0]
`
	apply := func(src string, wantChanges int, wantUp bool) {
		t.Helper()
		top, err := topology.Parse("st.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		res, err := lab.Up(ctx(t), top, []byte(src), lab.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Changes) != wantChanges {
			t.Errorf("up: %d changes %v, want %d", len(res.Changes), res.Changes, wantChanges)
		}
		for _, node := range []string{"x", "y"} {
			l := links(t, node)["eth0"]
			if up := slices.Contains(l.Flags, "UP"); up != wantUp {
				t.Errorf("%s:eth0 flags %v; want up %v", node, l.Flags, wantUp)
			}
		}
	}
	apply(upFile, 10, true) // two namespaces, links, hosts files and four addresses
	apply(upFile+"    state: down\n", 2, false)
	apply(upFile+"    state: down\n", 0, false) // the IPv6 addresses stayed
	apply(upFile, 2, true)
	if _, err := lab.Down(ctx(t), "st", lab.Options{}); err != nil {
		t.Fatal(err)
	}
}
