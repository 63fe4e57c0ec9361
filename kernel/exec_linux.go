package kernel

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExecChildArg is the hidden first argument with which nsrouter re-executes
// itself to finish entering a node; see Command.
const ExecChildArg = "__nsrouter-exec-child"

// Command returns a command that runs argv inside ns the way
// `ip netns exec` does: in the namespace's network, with a mount namespace
// of its own in which /etc/netns/NODE/* is bound over /etc/* and /sys
// shows the node's interfaces. Go cannot unshare a mount namespace in a
// running (threaded) program, so the command is nsrouter itself, started
// with a new mount namespace, which sets the mounts up in ExecChild and
// then executes argv.
func (ns *NS) Command(argv []string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding nsrouter's own binary: %w", err)
	}
	cmd := exec.Command(self, append([]string{ExecChildArg, ns.Name, "--"}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return cmd, nil
}

// Start starts cmd from a thread inside ns, so the child is born in the
// namespace.
func (ns *NS) Start(cmd *exec.Cmd) error {
	return ns.Do(cmd.Start)
}

// ExecChild runs in the re-executed child: it makes its mounts private,
// binds the node's files from /etc/netns, mounts a /sys for the node, and
// executes argv. It returns only on failure.
func ExecChild(node string, argv []string) error {
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("exec in %s: making mounts private: %w", node, err)
	}
	if node != "" {
		dir := filepath.Join(HostsDir, node)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			target := filepath.Join("/etc", e.Name())
			if _, err := os.Stat(target); err != nil {
				continue // like ip netns exec: only files /etc already has
			}
			if err := unix.Mount(filepath.Join(dir, e.Name()), target, "none", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("exec in %s: binding %s: %w", node, target, err)
			}
		}
	}
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err == nil || errors.Is(err, unix.EINVAL) {
		if err := unix.Mount(node, "/sys", "sysfs", 0, ""); err != nil {
			return fmt.Errorf("exec in %s: mounting /sys: %w", node, err)
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("exec in %s: %w", node, err)
	}
	err = syscall.Exec(path, argv, os.Environ())
	return fmt.Errorf("exec %s in %s: %w", path, node, err)
}
