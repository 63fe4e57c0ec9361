package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

// parse parses flags that may stand before, between or after the
// positional arguments, and returns the positional ones.
func parse(fs *flag.FlagSet, args []string, maxPos int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "-" || !strings.HasPrefix(args[0], "-") {
			pos = append(pos, args[0])
			args = args[1:]
			continue
		}
		pos = append(pos, args...) // after "--"
		break
	}
	if len(pos) > maxPos {
		return nil, usagef("%s: unexpected argument %q", fs.Name(), pos[maxPos])
	}
	return pos, nil
}

// loadArgs parses a command's flags and loads the topology its one
// optional FILE argument names.
func (e *env) loadArgs(fs *flag.FlagSet, args []string) (*topology.Topology, []byte, error) {
	pos, err := parse(fs, args, 1)
	if err != nil {
		return nil, nil, err
	}
	return e.load(fileArg(pos))
}

func fileArg(pos []string) string {
	if len(pos) == 0 {
		return ""
	}
	return pos[0]
}

// upMemoryLimit is the soft memory limit for up of a lab of n nodes.
// Building one keeps about 5.4 KB per node live (54 MB at 10,000); left
// alone, the collector lets the heap double before it runs. The limit keeps
// the peak near what is live, with room to spare: with only 6 MB of room
// (a fixed 64 MiB at 10,000 nodes) the collector ran all the time and up
// took 16 s instead of 10.
func upMemoryLimit(n int) int64 {
	return 24<<20 + int64(n)*6<<10
}

func cmdUp(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	quiet := fs.Bool("quiet", false, "print nothing on success")
	dry := fs.Bool("dry-run", false, "print the difference between the file and the kernel, change nothing")
	t, src, err := e.loadArgs(fs, args)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(upMemoryLimit(len(t.Nodes)))
	}
	o := e.options()
	o.DryRun = *dry
	var stop func()
	o.Progress, stop = e.showProgress("up", "nodes", *quiet || *dry)
	start := time.Now()
	res, err := lab.Up(ctx, t, src, o)
	took := time.Since(start)
	stop()
	if err != nil {
		return err
	}
	if *dry && res.New {
		plan.Build(t).Script(e.stdout, kernel.NodeRules)
		fmt.Fprintf(e.stdout, "# dry run: lab %s does not exist yet; this is what up would do. Nothing was changed.\n", t.Name)
		return nil
	}
	if *dry {
		printChanges(e.stdout, res.Changes)
		fmt.Fprintf(e.stdout, "dry run: %d changes for lab %s; nothing was changed\n", len(res.Changes), t.Name)
		return nil
	}
	if *quiet {
		return nil
	}
	if !res.New {
		printChanges(e.stdout, res.Changes)
	}
	verb := "updated"
	switch {
	case res.New:
		verb = "built"
	case res.Changed == 0 && len(res.Changes) == 0:
		verb = "already up to date"
	}
	fmt.Fprintf(e.stdout, "lab %s %s: %d nodes, %d links, %d of %d steps changed the kernel (%s)\n",
		t.Name, verb, len(t.Nodes), len(t.Links), res.Changed, res.Steps, took.Round(time.Millisecond))
	for _, c := range res.Foreign {
		what := "the lab's bridges"
		if c.For == "uplink" {
			what = "the uplink's traffic"
		}
		fmt.Fprintf(e.stdout, "  note: %s has policy drop: accept rules let %s through (removed on down)\n", c, what)
	}
	return nil
}

// printChanges prints a difference one change a line, as +, - or ~.
func printChanges(w io.Writer, changes []plan.Change) {
	for _, c := range changes {
		fmt.Fprintln(w, c)
	}
}

// showProgress starts a progress line on stderr for work that takes over
// a second, when stderr is a terminal and quiet is not set (nor -v, whose
// log lines share stderr); it returns the callback for lab.Options and a
// function that ends the line.
func (e *env) showProgress(verb, what string, quiet bool) (func(done, total int), func()) {
	if !e.tty || quiet || e.verbose {
		return nil, func() {}
	}
	p := startProgress(e.stderr, verb, what, time.Second, 250*time.Millisecond)
	return p.Update, p.Stop
}

func cmdDown(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	name := fs.String("l", "", "lab name, instead of a file")
	all := fs.Bool("all", false, "remove every lab found in the kernel")
	quiet := fs.Bool("quiet", false, "print nothing on success")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *all {
		if *name != "" || len(pos) > 0 {
			return usagef("down: --all takes no FILE and no -l")
		}
		return downAll(ctx, e, *quiet)
	}
	labName := *name
	if labName == "" {
		t, _, err := e.load(fileArg(pos))
		if err != nil {
			return err
		}
		labName = t.Name
	} else if len(pos) > 0 {
		return usagef("down: give a FILE or -l LAB, not both")
	}
	o := e.options()
	var stop func()
	o.Progress, stop = e.showProgress("down", "namespaces removed", *quiet)
	res, err := lab.Down(ctx, labName, o)
	stop()
	if err != nil {
		return err
	}
	if !*quiet {
		printDown(e.stdout, res)
	}
	return nil
}

func printDown(w io.Writer, res *lab.DownResult) {
	if res.Empty() {
		fmt.Fprintf(w, "lab %s: nothing to remove\n", res.Lab)
		return
	}
	fmt.Fprintf(w, "lab %s removed: %d namespaces, %d host interfaces, %d rules in other chains\n",
		res.Lab, len(res.Namespaces), len(res.Links), res.Rules)
	for _, s := range res.Restored {
		fmt.Fprintf(w, "  restored %s\n", s)
	}
	for _, h := range res.HandedOver {
		fmt.Fprintf(w, "  left %s as it is: lab %s still needs it; the last of them to go down puts back the old value\n",
			h.Key, strings.Join(h.Labs, ", "))
	}
}

func downAll(ctx context.Context, e *env, quiet bool) error {
	results, err := lab.DownAll(ctx, e.options())
	if quiet {
		return err
	}
	for _, r := range results {
		printDown(e.stdout, r)
	}
	if len(results) == 0 && err == nil {
		fmt.Fprintln(e.stdout, "no labs found")
	}
	return err
}

func cmdList(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args, 0); err != nil {
		return err
	}
	labs, err := lab.List(ctx, e.options())
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, labs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAB\tNAMESPACES\tHOST INTERFACES\tHOST RULES\tSTATE")
	for _, l := range labs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", l.Name, len(l.Namespaces), len(l.HostLinks), len(l.HostRules), dash(l.State))
	}
	return tw.Flush()
}

func cmdStatus(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	watch := fs.Bool("watch", false, "refresh until interrupted")
	interval := fs.Duration("interval", time.Second, "refresh interval with --watch")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *interval < 100*time.Millisecond {
		return usagef("status: --interval must be at least 100ms")
	}
	t, _, err := e.load(fileArg(pos))
	if err != nil {
		return err
	}
	for {
		st, err := lab.GetStatus(ctx, t, e.options())
		if err != nil {
			return err
		}
		if *asJSON {
			err = writeJSON(e.stdout, st)
		} else {
			if *watch && e.tty {
				fmt.Fprint(e.stdout, "\033[H\033[2J") // clear the screen
			}
			err = printStatus(e.stdout, st)
		}
		if err != nil || !*watch {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

func printStatus(w io.Writer, st *lab.Status) error {
	state := "up"
	if !st.Up {
		state = "not up"
	}
	fmt.Fprintf(w, "lab %s: %s (%s)\n\n", st.Lab, state, time.Now().Format("15:04:05"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tINTERFACE\tKIND\tSTATE\tMASTER\tRX PKTS\tTX PKTS\tRX BYTES\tTX BYTES\tDROPS\tERRORS\tADDRESSES\t")
	for _, n := range st.Nodes {
		if !n.Exists {
			fmt.Fprintf(tw, "%s\t-\t-\tmissing\t-\t\t\t\t\t\t\t-\t\n", n.Name)
			continue
		}
		for _, i := range n.Interfaces {
			c := i.Counters
			kind := i.Kind
			if i.Profile != "" {
				kind += " " + i.Profile
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", n.Name, i.Name, kind, i.State, dash(i.Master),
				c.RxPackets, c.TxPackets, c.RxBytes, c.TxBytes, c.RxDropped+c.TxDropped, c.RxErrors+c.TxErrors,
				dash(strings.Join(i.Addrs, " ")))
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tFORWARD v4/v6\tNFTABLES\tROUTES")
	for _, n := range st.Nodes {
		if !n.Exists {
			continue
		}
		fwd := n.Sysctls["net.ipv4.ip_forward"] + "/" + n.Sysctls["net.ipv6.conf.all.forwarding"]
		routes := n.Routes
		if len(routes) == 0 {
			routes = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Name, fwd, dash(strings.Join(n.Tables, ", ")), routes[0])
		for _, r := range routes[1:] {
			fmt.Fprintf(tw, "\t\t\t%s\n", r)
		}
	}
	for _, n := range st.Nodes {
		for _, r := range n.ForeignRules {
			fmt.Fprintf(tw, "%s: rule %q in other programs' forward chains\n", n.Name, r)
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdCheck(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	t, _, err := e.loadArgs(fs, args)
	if err != nil {
		return err
	}
	o := e.options()
	o.Explain = true
	rep, err := lab.Check(ctx, t, o)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		printReport(e.stdout, rep)
	}
	if rep.Failed > 0 {
		return errExpectations
	}
	return nil
}

func printReport(w io.Writer, rep *lab.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tPROTO\tADDRESS\tEXPECT\tRESULT\tRTT\tTTL\tDETAIL")
	for _, r := range rep.Results {
		result := "pass"
		if !r.Pass {
			result = "FAIL"
		}
		rtt, ttl := "-", "-"
		if r.Reply {
			rtt = fmt.Sprintf("%.3fms", float64(r.RTT.Microseconds())/1000)
		}
		if r.TTL != 0 {
			ttl = fmt.Sprint(r.TTL)
		}
		detail := r.Detail
		if r.Why != "" {
			detail += ": " + r.Why
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.From, r.To, r.Proto, r.Addr, r.Expect, result, rtt, ttl, detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d passed, %d failed\n", rep.Passed, rep.Failed)
}

func cmdExec(ctx context.Context, e *env, args []string) error {
	if len(args) < 3 || args[1] != "--" {
		return usagef("exec: usage: nsrouter exec NODE -- CMD [ARG...]")
	}
	if err := lab.RequireRoot(); err != nil {
		return err
	}
	return lab.Exec(ctx, args[0], args[2:])
}

func cmdValidate(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("validate: give the FILE to validate (\"-\" for standard input)")
	}
	t, _, err := e.load(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: valid: lab %s, %d nodes, %d links, %d expectations\n",
		t.Source, t.Name, len(t.Nodes), len(t.Links), len(t.Expect))
	return nil
}

func cmdScript(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("script", flag.ContinueOnError)
	t, _, err := e.loadArgs(fs, args)
	if err != nil {
		return err
	}
	plan.Build(t).Script(e.stdout, kernel.NodeRules)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
