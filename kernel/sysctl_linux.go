package kernel

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// sysctlPath maps net.ipv4.ip_forward to /proc/sys/net/ipv4/ip_forward.
// Keys are validated by the topology layer, so no component is "..".
func sysctlPath(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// Sysctl reads a sysctl as the namespace sees it. /proc/sys/net shows the
// namespace of the thread that opens it, so the read happens in Do.
func (ns *NS) Sysctl(key string) (string, error) {
	var val []byte
	err := ns.Do(func() error {
		var err error
		val, err = os.ReadFile(sysctlPath(key))
		return err
	})
	if err != nil {
		return "", &OpError{Op: "read sysctl " + key, Node: ns.Name, Err: err}
	}
	return string(bytes.TrimSpace(val)), nil
}

// readSysctl reads a sysctl in the calling thread's namespace.
func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	return string(bytes.TrimSpace(b)), err
}

// SetSysctl writes a sysctl in the namespace unless it has the value,
// returning the value it had.
func (ns *NS) SetSysctl(key, value string) (old string, changed bool, err error) {
	err = ns.Do(func() error {
		cur, err := os.ReadFile(sysctlPath(key))
		if err != nil {
			return err
		}
		old = string(bytes.TrimSpace(cur))
		if old == value {
			return nil
		}
		changed = true
		return os.WriteFile(sysctlPath(key), []byte(value), 0o644)
	})
	if err != nil {
		return old, false, &OpError{Op: fmt.Sprintf("sysctl %s=%s", key, value), Node: ns.Name, Err: err}
	}
	return old, changed, nil
}

var errNotExist = os.ErrNotExist

// isBridgeNF reports whether key is one of br_netfilter's switches, which
// exist only where that module is loaded.
func isBridgeNF(key string) bool { return strings.HasPrefix(key, "net.bridge.bridge-nf-call-") }
