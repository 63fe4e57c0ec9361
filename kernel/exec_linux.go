package kernel

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Exec replaces the process with argv running inside ns, as
// `ip netns exec` does: a thread enters the namespace and executes the
// program, which inherits that thread's namespace. It returns only on
// failure.
func (ns *NS) Exec(argv []string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("exec in %s: %w", ns.label(), err)
	}
	return ns.Do(func() error {
		err := syscall.Exec(path, argv, os.Environ())
		return fmt.Errorf("exec %s in %s: %w", path, ns.label(), err)
	})
}
