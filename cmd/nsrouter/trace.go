package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/nsrouter/nsrouter/lab"
)

func cmdTrace(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	file := fs.String("f", "", "topology file (default: the built-in topology)")
	proto := fs.String("proto", "icmp", "icmp, tcp or udp")
	port := fs.Uint("port", 0, "tcp/udp port")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args, 2)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("trace: usage: nsrouter trace [-f FILE] FROM TO [--proto icmp|tcp|udp] [--port N] [--json]")
	}
	switch {
	case *proto != "icmp" && *proto != "tcp" && *proto != "udp":
		return usagef("trace: --proto must be icmp, tcp or udp")
	case *proto != "icmp" && (*port == 0 || *port > 65535):
		return usagef("trace: --proto %s needs --port 1-65535", *proto)
	}
	t, _, err := e.load(*file)
	if err != nil {
		return err
	}
	from := t.Node(pos[0])
	if from == nil {
		return usagef("trace: no node %q in lab %s", pos[0], t.Name)
	}
	dst, err := t.Resolve(pos[1])
	if err != nil {
		return usagef("trace: %v", err)
	}
	res, err := lab.Trace(ctx, t, from, dst, *proto, uint16(*port), e.options())
	if err != nil {
		return err
	}
	if *asJSON {
		err = writeJSON(e.stdout, res)
	} else {
		printTrace(e.stdout, res)
	}
	if err == nil && !res.Reached {
		err = errExpectations
	}
	return err
}

func printTrace(w io.Writer, res *lab.TraceResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIRECTION\tNODE\tIN\tOUT\tNEXT HOP\tROUTE")
	print := func(dir string, hops []lab.Hop) {
		for _, h := range hops {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", dir, h.Node, dash(h.In), dash(h.Out), dash(h.Via), dash(h.Route))
			dir = ""
		}
	}
	print("forward", res.Forward)
	print("reply", res.Reply)
	tw.Flush()
	if res.Reached {
		fmt.Fprintf(w, "\n%s reaches %s (%s) and the reply comes back.\n", res.From, res.To, res.Proto)
		return
	}
	fmt.Fprintf(w, "\n%s does not reach %s (%s): %s\n", res.From, res.To, res.Proto, res.Reason)
	for _, ev := range res.Events {
		fmt.Fprintf(w, "  kernel trace: %s %s %s %s %s verdict %s %s\n", ev.Node, ev.Family, ev.Table, ev.Chain, ev.Type, ev.Verdict, strings.TrimSpace(ev.Rule))
	}
}
