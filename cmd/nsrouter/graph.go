package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/nsrouter/nsrouter/graph"
	"github.com/nsrouter/nsrouter/lab"
)

func cmdGraph(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	format := fs.String("format", "dot", "dot, mermaid or svg")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	switch *format {
	case "dot", "mermaid", "svg":
	default:
		return usagef("graph: unknown format %q; use dot, mermaid or svg", *format)
	}
	t, _, err := e.load(fileArg(pos))
	if err != nil {
		return err
	}
	switch *format {
	case "mermaid":
		_, err = io.WriteString(e.stdout, graph.Mermaid(t))
	case "svg":
		err = renderSVG(ctx, graph.DOT(t), e.stdout)
	default:
		_, err = io.WriteString(e.stdout, graph.DOT(t))
	}
	return err
}

// renderSVG has Graphviz's dot draw src as SVG onto w.
func renderSVG(ctx context.Context, src string, w io.Writer) error {
	dot, err := exec.LookPath("dot")
	if err != nil {
		return &lab.EnvError{Msg: "graph: --format svg needs Graphviz's dot, which is not on PATH; " +
			"install graphviz (apt-get install graphviz) or use --format dot"}
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, dot, "-Tsvg")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(src), w, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("graph: %s -Tsvg: %w %s", dot, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
