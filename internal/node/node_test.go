package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/infralab/infralab/internal/controlplane"
	"github.com/infralab/infralab/internal/images"
	"github.com/infralab/infralab/internal/testenv"
)

// startNode starts a real control plane and node for a test, with the images built (or taken
// from the cache) by internal/images. It needs root; missing tools skip the test, or fail it with
// INFRALAB_REQUIRE_TOOLS=1.
func startNode(t *testing.T) (*controlplane.ControlPlane, *Node) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.ExclusiveNode(t)
	for _, tool := range []string{"kube-apiserver", "kube-controller-manager", "kubelet", "kube-scheduler", "kube-proxy", "kube-router", "coredns"} {
		testenv.Tool(t, tool)
	}
	for _, bin := range []string{"containerd", "runc", "ctr", "ipset"} {
		if _, err := exec.LookPath(bin); err != nil {
			if testenv.Required() {
				t.Fatalf("%s not installed: run hack/deps.sh", bin)
			}
			t.Skipf("%s not installed", bin)
		}
	}
	ctx := context.Background()
	imgDir := filepath.Join(testenv.CacheDir(), "images")
	b := &images.Builder{OutDir: imgDir, RepoDir: testenv.RepoRoot()}
	if _, err := b.Build(ctx, []string{"pause", "coredns"}); err != nil {
		t.Fatal(err)
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	start := time.Now()
	n, err := Start(ctx, Options{Dir: t.TempDir(), ControlPlane: FromControlPlane(cp),
		ImagesIndex: filepath.Join(imgDir, "images.json"), Log: testWriter{t}, WaitForLock: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node ready in %.1fs", time.Since(start).Seconds())
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	return cp, n
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestNodeRunsAHardenedPodAndLeavesNothingBehind(t *testing.T) {
	_, n := startNode(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted"}}}
	if _, err := n.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: "probe"},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "pause", Image: "infralab.local/pause:" + images.PauseVersion,
				ImagePullPolicy: corev1.PullNever,
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
		},
	}
	if _, err := n.client.CoreV1().Pods("probe").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := n.client.CoreV1().Pods("probe").Get(ctx, "pause", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			if !strings.HasPrefix(p.Status.PodIP, "10.244.0.") {
				t.Fatalf("pod IP %s is not in %s", p.Status.PodIP, PodCIDR)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod not running: %+v %v", p.Status, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	assertOnlyOwnAddresses(t, n.Pids())
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, n.dir)
}

// assertNoLeftovers checks the machine-wide traces a node leaves when teardown misses one.
func assertNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	if _, err := os.Stat("/sys/class/net/" + BridgeName); err == nil {
		t.Errorf("bridge %s still exists", BridgeName)
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		if c := ourChains(ctx, tool); len(c) > 0 {
			t.Errorf("%s chains left: %v", tool, c)
		}
	}
	if out, err := run(ctx, "ipset", "list", "-n"); err == nil && strings.TrimSpace(out) != "" {
		t.Errorf("ipsets left: %s", out)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), dir) {
		t.Errorf("mounts under %s left", dir)
	}
	if m, _ := filepath.Glob("/var/lib/cni/results/" + cniNetwork + "-*"); len(m) > 0 {
		t.Errorf("CNI results left: %v", m)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmd), dir) {
			t.Errorf("process %s still runs: %s", e.Name(), strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	if _, err := os.Stat(recordPath(dir)); err == nil {
		t.Errorf("record %s left: teardown did not finish", recordPath(dir))
	}
}
