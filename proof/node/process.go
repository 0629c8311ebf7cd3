package node

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/infralab/infralab/internal/proc"
)

// process is one binary this package started (internal/proc). containerd's shims are started by
// containerd in process groups of their own and are ended through the CRI during Teardown.
type process = proc.Process

// waitFor polls check until it passes, p exits, or ctx ends; p may be nil.
func waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	return proc.WaitFor(ctx, p, what, check)
}

// run runs a short command and returns its combined output in the error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}
