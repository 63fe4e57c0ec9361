package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/topology"
)

// ExitError carries the exit status of a command run by Exec.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("command exited with status %d", e.Code) }

// Exec runs argv in node's namespace, like `ip netns exec`, with the node's
// /etc/netns files in place of /etc's, and waits for it. Signals to
// nsrouter are passed on. A command that ran and failed comes back as
// *ExitError. The node "host" runs argv where nsrouter runs.
func Exec(ctx context.Context, node string, argv []string) error {
	if len(argv) == 0 {
		return errors.New("exec: no command given")
	}
	var (
		ns  *kernel.NS
		err error
	)
	if node == topology.HostNode {
		ns, err = kernel.Host()
	} else {
		if _, exists, _ := kernel.NamespaceMark(node); !exists {
			return fmt.Errorf("exec: no namespace %s (is the lab up?)", node)
		}
		ns, err = kernel.OpenNamed(node)
	}
	if err != nil {
		return err
	}
	defer ns.Close()
	if node == topology.HostNode {
		ns.Name = ""
	}
	cmd, err := ns.Command(argv)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := ns.Start(cmd); err != nil {
		return fmt.Errorf("exec in %s: %w", node, err)
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			code = 128 + int(st.Signal())
		}
		return &ExitError{Code: code}
	}
	return err
}
