package kernel

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// OpError is a failed kernel operation, naming what it acted on, in the
// manner of net.OpError.
type OpError struct {
	Op    string // "add route", "create veth", ...
	Node  string // node name; "" is the host namespace
	Iface string // interface, bridge or other object name, if any
	Err   error
}

func (e *OpError) Error() string {
	where := e.Node
	if where == "" {
		where = "host"
	}
	if e.Iface != "" {
		where += ":" + e.Iface
	}
	return fmt.Sprintf("%s %s: %v", e.Op, where, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// ClashError reports an object that has the name the lab needs but is not
// the lab's: the tool leaves it alone and refuses to build.
type ClashError struct {
	Kind  string // "namespace", "interface", ...
	Node  string
	Name  string
	Owner string // the mark it carries, "" for none
}

func (e *ClashError) Error() string {
	where := ""
	if e.Node != "" {
		where = " in " + e.Node
	}
	owner := "not made by nsrouter"
	if lab, ok := LabOfMark(e.Owner); ok {
		owner = "it belongs to lab " + lab
	}
	return fmt.Sprintf("%s %s%s already exists and %s", e.Kind, e.Name, where, owner)
}

// dump runs a netlink dump again when the kernel reports that a concurrent
// change interrupted it (NLM_F_DUMP_INTR: the answer may be inconsistent),
// at most ten times. Parallel workers change a namespace while another
// dumps it, so this happens.
func dump[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 10 {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}
