package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/images"
	"github.com/infralab/infralab/proof/node"
)

// `up --node`, then the supervisor is killed outright (no teardown of its own), and `down` must
// still undo everything the node did, from the node's record.
func TestUpWithNodeSurvivesAKilledSupervisor(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.ExclusiveNode(t)
	for _, tool := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubelet", "kube-scheduler", "kube-proxy", "kube-router", "coredns"} {
		testenv.Tool(t, tool)
	}
	imgDir := filepath.Join(testenv.CacheDir(), "images")
	if _, err := (&images.Builder{OutDir: imgDir, RepoDir: testenv.RepoRoot()}).Build(context.Background(), []string{"pause", "coredns"}); err != nil {
		t.Fatal(err)
	}
	forward, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	bin := filepath.Join(t.TempDir(), "infralab-env")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "cluster")
	run := func(args ...string) (string, int) {
		out, err := exec.Command(bin, append(args, "--dir", dir, "--bin-dir", testenv.BinDir())...).CombinedOutput()
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

	// One node per machine: tests of other packages may hold it (go test runs packages in parallel).
	var out string
	var code int
	for end := time.Now().Add(15 * time.Minute); ; time.Sleep(5 * time.Second) {
		out, code = run("up", "--node", "--images", filepath.Join(imgDir, "images.json"))
		if code == 0 || !strings.Contains(out, "another infralab node runs") || time.Now().After(end) {
			break
		}
		run("down")
	}
	if code != 0 {
		t.Fatalf("up --node exited %d", code)
	}
	if !strings.Contains(out, "node infralab-node ready") {
		t.Errorf("up --node does not report the node")
	}
	out, code = run("status")
	if code != 0 || !strings.Contains(out, "node: infralab-node") {
		t.Errorf("status exited %d without the node", code)
	}
	kubectl := testenv.Tool(t, "kubectl")
	nodes, err := exec.Command(kubectl, "--kubeconfig", filepath.Join(dir, "kubeconfig"), "get", "nodes", "--no-headers").CombinedOutput()
	if err != nil || !strings.Contains(string(nodes), "infralab-node   Ready") {
		t.Errorf("kubectl get nodes: %v %s", err, nodes)
	}

	s, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(s.Supervisor, syscall.SIGKILL)
	waitGone(s.Supervisor, 10*time.Second, "serve")
	if _, err := os.Stat("/sys/class/net/" + node.BridgeName); err != nil {
		t.Fatalf("the bridge is gone before down: the test would prove nothing")
	}
	if _, code := run("down"); code != 0 {
		t.Fatalf("down exited %d", code)
	}
	if _, err := os.Stat("/sys/class/net/" + node.BridgeName); err == nil {
		t.Errorf("bridge %s left after down", node.BridgeName)
	}
	if rules, _ := exec.Command("iptables-save").CombinedOutput(); strings.Contains(string(rules), ":KUBE-") || strings.Contains(string(rules), ":CNI-") {
		t.Errorf("iptables chains left after down")
	}
	if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(now) != string(forward) {
		t.Errorf("net.ipv4.ip_forward is %q after down, was %q", now, forward)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); strings.Contains(string(cmd), dir) {
			t.Errorf("process %s still runs: %s", e.Name(), strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
}
