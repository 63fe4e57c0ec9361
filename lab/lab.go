// Package lab is nsrouter's Go API: build a topology (Up), remove it
// (Down), look at it (Status), prove it (Check) and run programs in it
// (Exec). It owns the ownership marks, the lock, the state under
// /run/nsrouter and the rollback of a failed run.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/nsrouter/nsrouter/topology"
)

// DefaultStateDir is where run-time state lives: tmpfs, gone at reboot
// like the namespaces themselves.
const DefaultStateDir = "/run/nsrouter"

// Options configure the library. The zero value logs nothing and keeps
// state in DefaultStateDir.
type Options struct {
	Log      *slog.Logger
	StateDir string
	// LockTimeout bounds the wait for another command on the same lab.
	LockTimeout time.Duration
	// Waiting is called once when the lab is locked by another process.
	Waiting func(lab string)
	// Progress, when set, is told how far a run has got: Up, each time
	// one more lab node has all its steps done; Down, each time one more
	// of the lab's namespaces is removed. It must not block: it runs
	// under the workers' lock.
	Progress func(done, total int)
	// AfterStep is a test hook; see kernel.Executor.
	AfterStep func(i int) error
	// DryRun makes Up compute and return the difference only.
	DryRun bool
	// Explain makes Check trace every failed reach and give the reason.
	Explain bool
}

func (o Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o.Log
}

func (o Options) stateDir() string {
	if o.StateDir == "" {
		return DefaultStateDir
	}
	return o.StateDir
}

func (o Options) labDir(lab string) string { return filepath.Join(o.stateDir(), lab) }

// ErrEnvironment matches every error that says the environment cannot run
// a command (no root, a missing kernel feature or program), as opposed to
// a failed operation.
var ErrEnvironment = errors.New("the environment cannot run this")

// EnvError is an error of the environment; it matches ErrEnvironment.
type EnvError struct{ Msg string }

func (e *EnvError) Error() string { return e.Msg }

// Is reports whether target is ErrEnvironment.
func (e *EnvError) Is(target error) bool { return target == ErrEnvironment }

// ErrNotRoot is returned when the process lacks the privileges to manage
// namespaces.
var ErrNotRoot error = &EnvError{Msg: "nsrouter needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to manage network namespaces; run it with sudo"}

// RequireRoot returns ErrNotRoot unless the process runs as root.
func RequireRoot() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	return nil
}

// lock takes the lab's lock file, waiting up to the configured timeout.
// The lock lives beside the state folder, so removing the state on down
// does not release it early.
func (o Options) lock(ctx context.Context, lab string) (func(), error) {
	if !topology.ValidLabName(lab) {
		return nil, &BadNameError{Name: lab}
	}
	if err := os.MkdirAll(o.stateDir(), 0o755); err != nil {
		return nil, fmt.Errorf("creating state folder: %w", err)
	}
	path := filepath.Join(o.stateDir(), lab+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	timeout := o.LockTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !told && o.Waiting != nil {
			o.Waiting(lab)
			told = true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return nil, fmt.Errorf("lab %s is locked by another nsrouter command (%s); gave up after %s", lab, path, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BadNameError is a lab name that cannot be one (from -l, say). It is
// refused before the name touches a path.
type BadNameError struct{ Name string }

func (e *BadNameError) Error() string {
	return fmt.Sprintf("%q is not a lab name: a lab name is 1 to 32 lowercase letters, digits and '-', starting with a letter or digit", e.Name)
}

// hostRecord holds host settings the lab changed, with the values they had
// before, so that down can put them back.
type hostRecord struct {
	Sysctls map[string]string `json:"sysctls"`
	// Namespaces maps the namespaces the lab created to their identity
	// (kernel.NamespaceID), so down recognises them without entering each.
	Namespaces map[string]uint64 `json:"namespaces,omitempty"`
}

func (o Options) readRecord(lab string) (*hostRecord, error) {
	rec := &hostRecord{Sysctls: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(o.labDir(lab), "host.json"))
	if errors.Is(err, os.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(o.labDir(lab), "host.json"), err)
	}
	if rec.Sysctls == nil {
		rec.Sysctls = map[string]string{}
	}
	return rec, nil
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// leaves the old content or the new, never half of one.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (o Options) writeRecord(lab string, rec *hostRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(o.labDir(lab), "host.json"), b)
}

// mark is shorthand for the lab's ownership mark.
func mark(lab string) string { return kernel.Mark(lab) }
