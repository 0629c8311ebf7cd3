package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
)

// The real binary, started the way `make cluster-up` starts it.
func TestUpStatusDown(t *testing.T) {
	for _, tool := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		testenv.Tool(t, tool)
	}
	bin := filepath.Join(t.TempDir(), "infralab-env")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "cluster")
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append(args, "--dir", dir, "--bin-dir", testenv.BinDir())...)
		out, err := cmd.CombinedOutput()
		t.Logf("$ infralab-env %s\n%s", strings.Join(args, " "), out)
		if exit, ok := err.(*exec.ExitError); ok {
			return string(out), exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	t.Cleanup(func() { run("down") })

	if _, code := run("status"); code != 3 {
		t.Errorf("status before up exited %d, want 3 (not running)", code)
	}
	out, code := run("up")
	if code != 0 {
		t.Fatalf("up exited %d", code)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if !strings.Contains(out, "kubeconfig: "+kubeconfig) {
		t.Errorf("up does not say where the kubeconfig is")
	}
	if !strings.Contains(out, "kube-apiserver ready") {
		t.Errorf("up shows no progress")
	}
	if _, code := run("status"); code != 0 {
		t.Errorf("status of a running plane exited %d", code)
	}
	if _, code := run("up"); code != 0 {
		t.Errorf("a second up exited %d, want 0 (already running)", code)
	}
	kubectl := testenv.Tool(t, "kubectl")
	if out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "get", "serviceaccount", "default").CombinedOutput(); err != nil {
		t.Errorf("kubectl with the printed kubeconfig: %v\n%s", err, out)
	}

	s, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, code := run("down"); code != 0 {
		t.Fatalf("down exited %d", code)
	}
	for name, pid := range s.Components {
		if ours(pid, name) {
			t.Errorf("%s (pid %d) still runs after down", name, pid)
		}
	}
	if _, err := os.Stat(kubeconfig); err == nil {
		t.Errorf("down left a kubeconfig for a server that is gone")
	}
	if _, code := run("status"); code != 3 {
		t.Errorf("status after down exited %d, want 3", code)
	}
}
