// Command nsrouter builds virtual networks of Linux network namespaces.
//
// See the README for the commands and the topology file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/lab"
	"github.com/nsrouter/nsrouter/topology"
)

// Exit statuses, as DESIGN.md fixes them.
const (
	exitOK      = 0
	exitFailed  = 1 // an operation or an expectation failed
	exitUsage   = 2 // bad usage or an invalid topology
	exitEnviron = 3 // not root, missing kernel feature
)

const usage = `nsrouter builds virtual networks out of Linux network namespaces.

Usage:
  nsrouter up       [FILE] [--quiet] [--dry-run]  build the lab, or apply the file's changes
  nsrouter down     [FILE | -l LAB | --all]   remove everything the lab made
  nsrouter list     [--json]                  the labs found in the kernel
  nsrouter status   [FILE] [--json] [--watch] [--interval D]
                                              what exists of the lab, with packet counters
  nsrouter check    [FILE] [--json]           run the file's expectations
  nsrouter exec     NODE -- CMD [ARG...]      run CMD inside NODE
  nsrouter validate FILE                      parse and validate only
  nsrouter script   [FILE]                    the ip/nft/sysctl shell script that builds the lab
  nsrouter trace    [-f FILE] FROM TO [--proto icmp|tcp|udp] [--port N] [--json]
                                              the path a packet takes, and where and why it stops
  nsrouter graph    [FILE] [--format F]       draw the topology: dot (default), mermaid, svg
  nsrouter capture  NODE:IFACE [-w FILE] [-c COUNT]
                                              print the frames on an interface, or save them (pcap)

FILE omitted means the built-in topology; "-" reads standard input.
Global flags: -v (debug logs on stderr).
Exit status: 0 ok, 1 failed, 2 bad usage or topology, 3 environment.
`

// usageError marks mistakes in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// env is what a command needs from the outside world.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
	verbose        bool
	tty            bool // stderr is a terminal
}

func main() {
	if len(os.Args) > 3 && os.Args[1] == kernel.ExecChildArg && os.Args[3] == "--" {
		err := kernel.ExecChild(os.Args[2], os.Args[4:])
		fmt.Fprintf(os.Stderr, "nsrouter: %v\n", err)
		os.Exit(127)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, tty: isTerminal(stderr)}
	for len(args) > 0 && (args[0] == "-v" || args[0] == "--verbose") {
		e.verbose = true
		args = args[1:]
	}
	level := slog.LevelWarn
	if e.verbose {
		level = slog.LevelDebug
	}
	e.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmds := map[string]func(context.Context, *env, []string) error{
		"up": cmdUp, "down": cmdDown, "status": cmdStatus, "check": cmdCheck,
		"exec": cmdExec, "list": cmdList, "script": cmdScript, "trace": cmdTrace, "validate": cmdValidate,
		"graph":   cmdGraph,
		"capture": cmdCapture,
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nsrouter: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return report(e, cmd(ctx, e, args[1:]))
}

// errExpectations says check ran and some expectation failed; the table
// already told which.
var errExpectations = errors.New("some expectations failed")

// report prints err and maps it to an exit status.
func report(e *env, err error) int {
	if err == nil {
		return exitOK
	}
	var (
		ue   *usageError
		list *topology.ErrorList
	)
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "nsrouter: %s\nRun 'nsrouter help' for usage.\n", ue.msg)
		return exitUsage
	case errors.As(err, new(*lab.BadNameError)):
		fmt.Fprintf(e.stderr, "nsrouter: %v\n", err)
		return exitUsage
	case errors.As(err, &list):
		for _, item := range list.Items {
			fmt.Fprintln(e.stderr, item.Error())
		}
		return exitUsage
	case errors.Is(err, lab.ErrEnvironment):
		fmt.Fprintf(e.stderr, "nsrouter: %v\n", err)
		return exitEnviron
	case errors.Is(err, errExpectations):
		return exitFailed
	}
	var exit *lab.ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	fmt.Fprintf(e.stderr, "nsrouter: %v\n", err)
	var clash *kernel.ClashError
	if errors.As(err, &clash) {
		fmt.Fprintln(e.stderr, "nsrouter: nothing was created; rename the node or bridge in the file, or remove the other object")
	}
	return exitFailed
}

func (e *env) options() lab.Options {
	o := lab.Options{
		Log: e.log,
		Waiting: func(l string) {
			fmt.Fprintf(e.stderr, "nsrouter: lab %s is busy with another command; waiting...\n", l)
		},
	}
	if k, err := strconv.Atoi(os.Getenv(envKillAfterStep)); err == nil {
		o.AfterStep = func(i int) error {
			if i == k {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
			return nil
		}
	}
	return o
}

// envKillAfterStep, for crash tests only, makes up kill itself with
// SIGKILL right after the step of that index.
const envKillAfterStep = "NSROUTER_TEST_KILL_AFTER_STEP"

// load reads the topology named on the command line ("" for the built-in)
// and prints its warnings.
func (e *env) load(path string) (*topology.Topology, []byte, error) {
	t, src, err := topology.Load(path, e.stdin)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range t.Warnings {
		fmt.Fprintln(e.stderr, w.Error())
	}
	return t, src, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
