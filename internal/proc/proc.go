// Package proc starts and stops the binaries of infralab's embedded environment (etcd,
// kube-apiserver, the kubelet, containerd, ...), each in its own process group with its output in a
// log file, and turns their failures into errors that quote the end of that log.
//
// The control plane and the node both build on it, so a stop, a readiness wait and a lost port
// race behave the same for every component.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// TailLines is how many lines of a component's log an error quotes.
const TailLines = 25

// Process is one binary started by Start.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // valid once done is closed
}

// Start runs bin with args in its own process group, appending its output to logDir/name.log.
// env is added to this process's environment.
func Start(name, bin string, args []string, logDir string, env []string) (*Process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	// Pdeathsig: if the owner dies without stopping it (a crashed test), the component goes too,
	// instead of holding ports, memory or pods on a shared machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	pgid := p.Pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.Pid())
	}
}

// Failure describes why a component is not usable, quoting the end of its log.
func (p *Process) Failure(what string) error {
	return fmt.Errorf("%s %s; last lines of %s:\n%s", p.Name, what, p.LogPath, Tail(p.LogPath, TailLines))
}

// ExitError describes a component that exited before it was ready.
func (p *Process) ExitError() error {
	status := "exited"
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		status = "exited with " + exit.ProcessState.String()
	}
	return p.Failure(status + " before it was ready")
}

// Tail returns the last n lines of a log, indented for quoting in an error.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(bytes.TrimSpace(data)), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// WaitFor polls check until it passes, p exits, or ctx ends. p may be nil for a check of
// something that is not one of our processes (a pod, say).
func WaitFor(ctx context.Context, p *Process, what string, check func(context.Context) error) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last := check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		var done <-chan struct{}
		if p != nil {
			done = p.done
		}
		select {
		case <-done:
			return p.ExitError()
		case <-ctx.Done():
			if p == nil {
				return fmt.Errorf("not %s in time (%v; last check: %v)", what, ctx.Err(), last)
			}
			return p.Failure(fmt.Sprintf("not %s in time (%v; last check: %v)", what, ctx.Err(), last))
		case <-tick.C:
		}
	}
}

// FreePorts asks the kernel for n distinct free ports on loopback. A port is only free until
// someone binds it: callers that can lose that race use LostPortRace to retry.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// LostPortRace reports whether p exited because another process took its port first.
func LostPortRace(p *Process) bool {
	return p != nil && p.Exited() && strings.Contains(Tail(p.LogPath, TailLines), "address already in use")
}

// FindBinary looks for name in binDir (where `make tools` links the tools), then on PATH.
func FindBinary(binDir, name string) (string, error) {
	p := filepath.Join(binDir, name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in %s or on PATH: run `make tools`", name, binDir)
}

// Pids maps each running process of ps to its pid (also its process group id).
func Pids(ps []*Process) map[string]int {
	out := map[string]int{}
	for _, p := range ps {
		if !p.Exited() {
			out[p.Name] = p.Pid()
		}
	}
	return out
}

// FirstExit reports the first process of ps that has exited, skipping those ignore names
// (a component paused on purpose); nil while all run.
func FirstExit(ps []*Process, ignore map[string]bool) error {
	for _, p := range ps {
		if p.Exited() && !ignore[p.Name] {
			return p.Failure("exited unexpectedly")
		}
	}
	return nil
}

// ErrDirNotEmpty is returned by FreshDir for a folder that already holds files: the
// components would otherwise start on someone else's certificates or data.
var ErrDirNotEmpty = errors.New("is not empty")

// FreshDir creates dir, or accepts it when it exists and is empty.
func FreshDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s %w", dir, ErrDirNotEmpty)
	}
	return nil
}

// WithFreePorts runs start with n free loopback ports. A port is only free until the component
// binds it, and other tests on the machine pick ports too: when start fails because its
// process lost that race, lost drops that process and start runs again with new ports, three
// attempts at most.
func WithFreePorts(n int, start func(ports []int) (*Process, error), lost func(*Process)) error {
	for attempt := 1; ; attempt++ {
		ports, err := FreePorts(n)
		if err != nil {
			return err
		}
		p, err := start(ports)
		if err == nil || attempt == 3 || p == nil || !LostPortRace(p) {
			return err
		}
		lost(p)
	}
}

// Without returns ps without dead: a supervisor forgets a component that lost its start attempt,
// so its exit is not reported as a failure later.
func Without(ps []*Process, dead *Process) []*Process {
	out := ps[:0:0]
	for _, p := range ps {
		if p != dead {
			out = append(out, p)
		}
	}
	return out
}
