package lab

import (
	"fmt"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/topology"
)

// Exec replaces the process with argv running in the namespace of node,
// like `ip netns exec`. The node "host" runs argv where nsrouter runs.
// It returns only on failure.
func Exec(node string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("exec: no command given")
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
	return ns.Exec(argv)
}
