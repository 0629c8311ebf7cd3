package e2e

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// checkOutageRecovery stops kube-apiserver (etcd keeps running) as soon as an `up` from an empty
// stack has created its first namespace, so the run breaks with most resources still to go.
// The run must fail with an error that names the unreachable API server; after a restart the
// next `up` must converge, a preview must show no changes, and state and cluster must agree on
// exactly the resources a clean `up` made.
func checkOutageRecovery(t *testing.T, ls *localStack, want []stateResource) {
	ctx := context.Background()
	// One step at a time, so the outage lands in the middle of the run, not after it.
	cmd, out := ls.cli.start(t, ls.upArgs("--parallel", "1")...)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	first := localNamespaces[0]
	begin := time.Now()
	var runErr error
	stopped := false
	for !stopped {
		select {
		case runErr = <-done:
			t.Fatalf("up ended (err=%v) before namespace %s appeared; output:\n%s", runErr, first, indent(out.String()))
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := ls.client.CoreV1().Namespaces().Get(ctx, first, metav1.GetOptions{}); err == nil {
			if err := ls.cp.StopAPIServer(); err != nil {
				t.Fatal(err)
			}
			stopped = true
			t.Logf("kube-apiserver stopped %.1fs into the up, right after namespace %s was created", time.Since(begin).Seconds(), first)
		}
		if time.Since(begin) > 5*time.Minute {
			_ = cmd.Process.Kill()
			t.Fatal("namespace never appeared")
		}
	}
	select {
	case runErr = <-done:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("up did not end within 5 minutes of the API server stopping")
	}
	text := out.String()
	t.Logf("$ pulumi up during the outage (err=%v)\n%s", runErr, indent(text))
	ls.ws.secrets.saw(text)
	var exit *exec.ExitError
	if !errors.As(runErr, &exit) {
		t.Fatalf("up during the outage did not fail with an exit status: %v", runErr)
	}
	if !regexp.MustCompile(`connect: connection refused|dial tcp 127\.0\.0\.1:\d+`).MatchString(text) {
		t.Error("the failed up does not say that the API server is unreachable")
	}
	partial, _ := ls.cli.export(t)
	got, full := len(kubernetesObjects(partial)), len(kubernetesObjects(want))
	if got == 0 || got >= full {
		t.Errorf("the interrupted up recorded %d of %d objects; the outage did not land mid-run", got, full)
	}
	t.Logf("interrupted up: exit %d after %.1fs, %d of %d objects in state", exit.ExitCode(), time.Since(begin).Seconds(), got, full)

	restart := time.Now()
	if err := ls.cp.StartAPIServer(ctx); err != nil {
		t.Fatalf("restarting kube-apiserver: %v", err)
	}
	t.Logf("kube-apiserver ready again in %.1fs", time.Since(restart).Seconds())

	if _, took, err := ls.cli.run(t, ls.upArgs()...); err != nil {
		t.Fatalf("up after the restart did not converge: %v", err)
	} else {
		t.Logf("recovery up: %.1fs", took.Seconds())
	}
	if _, _, err := ls.cli.run(t, ls.cli.stackArgs("preview", "--policy-pack", ls.pack, "--policy-pack-config", ls.packConfig, "--expect-no-changes")...); err != nil {
		t.Errorf("a preview after the recovery shows changes: %v", err)
	}
	final, _ := ls.cli.export(t)
	if a, b := urns(final), urns(want); !slices.Equal(a, b) {
		t.Errorf("after recovery the state holds %d resources, a clean up made %d:\nnow:  %v\nclean: %v", len(a), len(b), a, b)
	}
	checkStateMatchesCluster(t, ls.cp, final)
}

func urns(rs []stateResource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.URN)
	}
	slices.Sort(out)
	return out
}
