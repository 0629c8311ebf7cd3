package node

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/controlplane"
	"github.com/infralab/infralab/proof/images"
)

// startNode starts a real control plane and node for a test, with the images built (or taken
// from the cache) by proof/images. It needs root; missing tools skip the test, or fail it with
// INFRALAB_REQUIRE_TOOLS=1. setup runs once no other node test runs, before the node starts.
func startNode(t *testing.T, setup ...func()) (*controlplane.ControlPlane, *Node) {
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
	for _, f := range setup {
		f()
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
	ctx := context.Background()
	_, n := startNode(t, func() { foreignState(t) })
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
	assertNoLeftovers(t, n)
	for _, c := range [][]string{{"iptables", "-t", "filter", "-S", foreignChain}, {"ip6tables", "-t", "nat", "-S", foreignChain6},
		{"ipset", "list", "-n", foreignIPSet}} {
		if _, err := run(ctx, c[0], c[1:]...); err != nil {
			t.Errorf("teardown removed what was there before the node: %v", err)
		}
	}
}

// Chains and an ipset with the node's prefixes that exist before the node starts: not the
// node's, so its teardown must leave them (another program's, on a real machine).
const (
	foreignChain  = "KUBE-INFRALAB-TEST-FOREIGN"
	foreignChain6 = "CNI-INFRALAB-TEST-FOREIGN"
	foreignIPSet  = "kube-router-infralab-foreign"
)

func foreignState(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	remove := func() {
		_, _ = run(ctx, "iptables", "-t", "filter", "-F", foreignChain)
		_, _ = run(ctx, "iptables", "-t", "filter", "-X", foreignChain)
		_, _ = run(ctx, "ip6tables", "-t", "nat", "-X", foreignChain6)
		_, _ = run(ctx, "ipset", "destroy", foreignIPSet)
	}
	// A run killed before its cleanup (go test -timeout) leaves them: start from nothing, or
	// creating them fails ("Chain already exists").
	remove()
	tables := listNftTables(ctx) // iptables-nft creates the tables of the chains below
	t.Cleanup(func() {
		remove()
		if err := removeNftTables(ctx, tables); err != nil {
			t.Error(err)
		}
	})
	for _, c := range [][]string{
		{"iptables", "-t", "filter", "-N", foreignChain},
		{"iptables", "-t", "filter", "-A", foreignChain, "-j", "RETURN"},
		{"ip6tables", "-t", "nat", "-N", foreignChain6},
		{"ipset", "create", foreignIPSet, "hash:ip"},
	} {
		if _, err := run(ctx, c[0], c[1:]...); err != nil {
			t.Fatal(err)
		}
	}
}

// assertNoLeftovers fails on anything the node left on the machine after Stop (Leftovers: a
// process, mount, sysctl, chain, ipset, nftables table, cgroup, log link or folder that was not
// there before, or something that was and is gone).
func assertNoLeftovers(t *testing.T, n *Node) {
	t.Helper()
	for _, l := range n.Leftovers() {
		t.Error(l)
	}
}
