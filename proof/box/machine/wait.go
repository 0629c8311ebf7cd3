package machine

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// WaitSystem waits (bounded by timeout) until systemd in the machine finished booting and
// returns its state ("running", or "degraded" with the failed units listed). Right after Start
// systemd's bus socket does not exist yet, so it asks again until systemd answers.
func WaitSystem(ctx context.Context, p Provider, name string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	secs := fmt.Sprint(int(timeout.Seconds()))
	for {
		out, _ := p.Exec(ctx, name, nil, "timeout", secs, "systemctl", "is-system-running", "--wait")
		s := strings.TrimSpace(string(out))
		if ctx.Err() != nil {
			return s, fmt.Errorf("machine %s: systemd did not finish booting within %s (%s)", name, timeout, s)
		}
		if strings.Contains(s, "Failed to connect to bus") {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if s != "running" {
			failed, _ := p.Exec(ctx, name, nil, "systemctl", "--failed", "--no-legend", "--plain")
			return s + " (failed units: " + strings.Join(strings.Fields(string(failed)), " ") + ")", nil
		}
		return s, nil
	}
}
