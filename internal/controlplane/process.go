package controlplane

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

// process is one component binary this package started, in its own process group so that Stop
// reaches anything it forks and nothing else.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid once done is closed
}

// Lines of a component's log quoted in errors.
const logTailLines = 25

func startProcess(name, bin string, args []string, logDir string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = os.Environ()
	// Pdeathsig: if the owner dies without calling Stop (a crashed test), the component goes too,
	// instead of holding ports and memory on a shared machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	pgid := p.pid() // Setpgid makes the group id the leader's pid
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
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.pid())
	}
}

// failure describes why a component is not usable, quoting the end of its log.
func (p *process) failure(what string) error {
	return fmt.Errorf("%s %s; last lines of %s:\n%s", p.name, what, p.logPath, tail(p.logPath, logTailLines))
}

func (p *process) exitError() error {
	status := "exited"
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		status = "exited with " + exit.ProcessState.String()
	}
	return p.failure(status + " before it was ready")
}

func tail(path string, n int) string {
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

// withFreePorts runs start with n free ports. A port is only free until the component binds it,
// and other tests on the machine pick ports too: when the component lost that race, it is
// started again with new ports.
func (s *starter) withFreePorts(n int, start func(ports []int) (*process, error)) error {
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(n)
		if err != nil {
			return err
		}
		proc, err := start(ports)
		if err == nil || attempt == 3 || proc == nil || !proc.exited() ||
			!strings.Contains(tail(proc.logPath, logTailLines), "address already in use") {
			return err
		}
		s.progress("%s lost a free port to another process; retrying with new ports", proc.name)
		s.cp.forget(proc)
	}
}

// freePorts asks the kernel for n distinct free ports on loopback.
func freePorts(n int) ([]int, error) {
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

func findBinary(binDir, name string) (string, error) {
	p := filepath.Join(binDir, name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in %s or on PATH: run `make tools`", name, binDir)
}

func (cp *ControlPlane) launch(name, bin string, args []string) (*process, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.stopped {
		return nil, errors.New("control plane is stopping")
	}
	p, err := startProcess(name, bin, args, filepath.Join(cp.dir, "logs"))
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, p)
	return p, nil
}

// waitFor polls check until it passes, the process exits, or ctx ends.
func waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.exitError()
		case <-ctx.Done():
			return p.failure(fmt.Sprintf("not %s in time (%v; last check: %v)", what, ctx.Err(), last))
		case <-tick.C:
		}
	}
}

// forget drops a process that exited during a failed start attempt.
func (cp *ControlPlane) forget(proc *process) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for i, p := range cp.procs {
		if p == proc {
			cp.procs = append(cp.procs[:i], cp.procs[i+1:]...)
			return
		}
	}
}

// find returns the newest process of a component; callers hold mu.
func (cp *ControlPlane) find(name string) *process {
	for _, p := range cp.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}
