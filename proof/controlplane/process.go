package controlplane

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/infralab/infralab/internal/proc"
)

// process is one component binary this package started (internal/proc).
type process = proc.Process

// withFreePorts runs start with n free ports, again with new ones when the component lost
// them to another process (proc.WithFreePorts).
func (s *starter) withFreePorts(n int, start func(ports []int) (*process, error)) error {
	return proc.WithFreePorts(n, start, func(p *process) {
		s.progress("%s lost a free port to another process; retrying with new ports", p.Name)
		s.cp.forget(p)
	})
}

func (cp *ControlPlane) launch(name, bin string, args []string) (*process, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.stopped {
		return nil, errors.New("control plane is stopping")
	}
	p, err := proc.Start(name, bin, args, filepath.Join(cp.dir, "logs"), nil)
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, p)
	return p, nil
}

// waitFor polls check until it passes, the process exits, or ctx ends.
func waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	return proc.WaitFor(ctx, p, what, check)
}

// forget drops a process that exited during a failed start attempt.
func (cp *ControlPlane) forget(dead *process) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.procs = proc.Without(cp.procs, dead)
}

// find returns the newest process of a component; callers hold mu.
func (cp *ControlPlane) find(name string) *process {
	for _, p := range cp.procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}
