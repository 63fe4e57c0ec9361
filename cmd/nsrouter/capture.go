package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/nsrouter/nsrouter/capture"
	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

func cmdCapture(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	file := fs.String("w", "", `write the frames to FILE in pcap format ("-": standard output)`)
	count := fs.Int("c", 0, "stop after COUNT frames")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("capture: give the interface as NODE:IFACE, as in router-ns:eth0 or host:br0")
	}
	node, iface, err := splitEndpoint(pos[0])
	if err != nil {
		return err
	}
	if *count < 0 {
		return usagef("capture: -c %d: the count must be 1 or more", *count)
	}
	if err := lab.RequireRoot(); err != nil {
		return err
	}
	ns, err := openNode(node)
	if err != nil {
		return err
	}
	defer ns.Close()
	sock, err := capture.Open(ns, iface)
	if err != nil {
		return err
	}
	defer sock.Close()
	write, closeOut, err := e.frameWriter(*file)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "capturing on %s:%s (Ctrl-C stops)\n", node, iface)
	n, err := captureLoop(ctx, sock, *count, write)
	err = errors.Join(err, closeOut())
	if n == 1 {
		fmt.Fprintln(e.stderr, "1 frame captured")
	} else {
		fmt.Fprintf(e.stderr, "%d frames captured\n", n)
	}
	return err
}

// splitEndpoint parses NODE:IFACE. The node must be a safe name under
// /run/netns and the interface a possible kernel interface name.
func splitEndpoint(s string) (node, iface string, err error) {
	node, iface, ok := strings.Cut(s, ":")
	if !ok || node == "" || node == "." || node == ".." || iface == "" || len(iface) > 15 ||
		strings.ContainsAny(node, "/\x00") || strings.ContainsAny(iface, ":/ \t\n\x00") {
		return "", "", usagef("capture: %q is not NODE:IFACE, as in router-ns:eth0 or host:br0", s)
	}
	return node, iface, nil
}

// openNode opens the namespace of a lab node, or the host's for "host".
func openNode(node string) (*kernel.NS, error) {
	if node == topology.HostNode {
		return kernel.Host()
	}
	if _, exists, _ := kernel.NamespaceMark(node); !exists {
		return nil, fmt.Errorf("capture: no node %s: /run/netns/%s does not exist (is the lab up?)", node, node)
	}
	return kernel.OpenNamed(node)
}

// frameWriter returns where captured frames go: one line of text each
// on standard output when path is "", otherwise a pcap file (standard
// output for "-"). closeOut closes the file; every frame is already
// written by then.
func (e *env) frameWriter(path string) (write func(*capture.Packet) error, closeOut func() error, err error) {
	if path == "" {
		write = func(p *capture.Packet) error {
			_, err := fmt.Fprintln(e.stdout, p)
			return err
		}
		return write, func() error { return nil }, nil
	}
	out, closeOut := e.stdout, func() error { return nil }
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return nil, nil, fmt.Errorf("capture: %w", err)
		}
		out, closeOut = f, f.Close
	}
	pw, err := capture.NewWriter(out, capture.SnapLen, capture.LinkTypeEthernet)
	if err != nil {
		closeOut()
		return nil, nil, fmt.Errorf("capture to %s: %w", path, err)
	}
	write = func(p *capture.Packet) error { return pw.WritePacket(p.Time, p.Data, p.Len) }
	return write, closeOut, nil
}

// captureLoop passes frames to write until count of them (0: no limit)
// have gone, or ctx is done, which is a clean stop. It returns how many
// frames went.
func captureLoop(ctx context.Context, sock *capture.Socket, count int, write func(*capture.Packet) error) (int, error) {
	n := 0
	for count == 0 || n < count {
		p, err := sock.Read(ctx)
		if ctx.Err() != nil {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if err := write(p); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
