package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/infralab/infralab/cluster"
	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/policy/rules"
	"github.com/infralab/infralab/proof/controlplane"
	"github.com/infralab/infralab/proof/images"
)

// TestCalicoOperatorRendersTheLabInstallation runs the tigera/operator that hack/tools.sh calico
// builds (v1.40.0, from its git tag) against the embedded control plane with the lab's
// hardening, after applying the pinned operator-crds.yaml and tigera-operator.yaml (the bytes
// the lab downloads: hack/tools.sh checked their sha256) and the Installation the lab's calico
// phase applies (cluster.CalicoInstallation with the lab's pod CIDR). The operator runs as a
// process with the admin kubeconfig, as its Deployment's pod would with its ServiceAccount:
// there is no node here, so nothing it renders runs; what is proven is what it renders.
//
// It checks: every image the operator references is one proof/images builds, under the same
// repository path and tag (only the registry differs, which Installation.spec.registry sets);
// the components are exactly calico-node, calico-kube-controllers and calico-typha (no
// apiserver, CSI, flexvol, goldmane or whisker); calico-node runs VXLAN without BIRD; the
// operator's IP pool is the lab's podCidr; and the policy pack, with the lab's exceptions
// (stacks/policy.lab.json), reports nothing on the operator's objects.
func TestCalicoOperatorRendersTheLabInstallation(t *testing.T) {
	for _, tool := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"} {
		testenv.Tool(t, tool)
	}
	operator := testenv.Tool(t, "operator")
	manifests := filepath.Join(testenv.RepoRoot(), ".tools", "calico", "share", "manifests")
	if _, err := os.Stat(filepath.Join(manifests, "operator-crds.yaml")); err != nil {
		msg := fmt.Sprintf("Calico's manifests: %v; run: hack/tools.sh calico", err)
		if testenv.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	const podCIDR = "192.168.0.0/16" // stacks/Pulumi.lab.yaml network.podCidr; checked below

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h, err := controlplane.LabHardening()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: t.TempDir(), Log: testLog{t}, Hardening: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	cfg.WarningHandler = nil
	client := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)

	// The lab's three nodes as Node objects (no kubelet behind them): the operator sizes typha by
	// the schedulable Linux nodes and renders nothing until there is one.
	for _, name := range []string{"k8s-cp-1", "k8s-worker-1", "k8s-worker-2"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/os": "linux", "kubernetes.io/hostname": name}}}
		if _, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	lab, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "stacks", "Pulumi.lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(lab), "podCidr: "+podCIDR) {
		t.Fatalf("stacks/Pulumi.lab.yaml no longer has podCidr %s; update this test", podCIDR)
	}
	installation, err := cluster.CalicoInstallation(podCIDR, "")
	if err != nil {
		t.Fatal(err)
	}
	instFile := filepath.Join(t.TempDir(), "installation.yaml")
	if err := os.WriteFile(instFile, installation, 0o600); err != nil {
		t.Fatal(err)
	}
	// The order and flags of cluster/scripts/calico.sh.
	kubectl := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, testenv.Tool(t, "kubectl"), append([]string{"--kubeconfig", cp.KubeconfigPath()}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	kubectl("apply", "--server-side", "--force-conflicts", "-f", filepath.Join(manifests, "operator-crds.yaml"))
	kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/installations.operator.tigera.io")
	kubectl("apply", "--server-side", "--force-conflicts", "-f", filepath.Join(manifests, "tigera-operator.yaml"))
	kubectl("apply", "--server-side", "--force-conflicts", "-f", instFile)

	// The operator's process, with the Deployment's args and env (tigera-operator.yaml).
	var opLog bytes.Buffer
	op := exec.Command(operator, "-manage-crds=true", "-enable-leader-election=false")
	op.Env = append(os.Environ(), "KUBECONFIG="+cp.KubeconfigPath(), "WATCH_NAMESPACE=", "POD_NAME=tigera-operator-test",
		"OPERATOR_NAME=tigera-operator", "TIGERA_OPERATOR_INIT_IMAGE_VERSION=v1.40.0")
	op.Stdout, op.Stderr = &opLog, &opLog
	if err := op.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = op.Process.Kill()
		_ = op.Wait()
		if t.Failed() {
			t.Logf("operator log (last 6 KiB):\n%s", tail(opLog.String(), 6<<10))
		}
	})

	// Wait for the three components the Installation should produce.
	var node *appsv1.DaemonSet
	var deps []appsv1.Deployment
	for {
		n, errN := client.AppsV1().DaemonSets("calico-system").Get(ctx, "calico-node", metav1.GetOptions{})
		d, errD := client.AppsV1().Deployments("calico-system").List(ctx, metav1.ListOptions{})
		if errN == nil && errD == nil && len(d.Items) >= 2 {
			node, deps = n, d.Items
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the operator rendered no calico-node DaemonSet and two Deployments in time: %v %v", errN, errD)
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(5 * time.Second) // let it finish this reconcile: a component it renders late would show up below

	// Exactly the components the lab needs, nothing else.
	var depNames []string
	for _, d := range deps {
		depNames = append(depNames, d.Name)
	}
	sort.Strings(depNames)
	if want := []string{"calico-kube-controllers", "calico-typha"}; !slices.Equal(depNames, want) {
		t.Errorf("Deployments in calico-system: %v, want %v", depNames, want)
	}
	dss, err := client.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range dss.Items {
		if ds.Namespace+"/"+ds.Name != "calico-system/calico-node" {
			t.Errorf("DaemonSet %s/%s: the lab's Installation disables CSI and everything but calico-node", ds.Namespace, ds.Name)
		}
	}
	for _, ns := range []string{"calico-apiserver"} {
		if _, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s exists (err %v): the lab's Installation has no APIServer", ns, err)
		}
	}

	// Every image is one we build, under the same path and tag.
	built := map[string]bool{}
	for _, n := range images.CalicoNames() {
		built[n] = true
	}
	refs := map[string]bool{}
	addRefs := func(spec corev1.PodSpec, what string) {
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			refs[c.Image] = true
			repo, tag, ok := strings.Cut(strings.TrimPrefix(c.Image, "quay.io/"), ":")
			want := "v3.31.0"
			if repo == "tigera/operator" {
				want = "v1.40.0"
			}
			if !ok || !built[repo] || tag != want || !strings.HasPrefix(c.Image, "quay.io/") {
				t.Errorf("%s container %s: image %s is not quay.io/<one of %v>:%s", what, c.Name, c.Image, images.CalicoNames(), want)
			}
			if c.Name == "flexvol-driver" {
				t.Errorf("%s has the flexvol-driver init container: the Installation sets flexVolumePath None", what)
			}
		}
	}
	addRefs(node.Spec.Template.Spec, "DaemonSet calico-node")
	for _, d := range deps {
		addRefs(d.Spec.Template.Spec, "Deployment "+d.Name)
	}
	opDep, err := client.AppsV1().Deployments("tigera-operator").Get(ctx, "tigera-operator", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addRefs(opDep.Spec.Template.Spec, "Deployment tigera-operator")
	t.Logf("images the lab's Installation runs: %v", sortedKeys(refs))

	// VXLAN, no BIRD: the node daemon's backend and its readiness probe.
	env := map[string]string{}
	for _, c := range node.Spec.Template.Spec.Containers {
		if c.Name != "calico-node" {
			continue
		}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.Exec == nil || slices.Contains(c.ReadinessProbe.Exec.Command, "-bird-ready") {
			t.Errorf("calico-node readiness probe %+v: want /bin/calico-node -felix-ready without -bird-ready", c.ReadinessProbe)
		}
	}
	if env["CALICO_NETWORKING_BACKEND"] != "vxlan" {
		t.Errorf("calico-node CALICO_NETWORKING_BACKEND = %q, want vxlan (BGP disabled, no BIRD)", env["CALICO_NETWORKING_BACKEND"])
	}

	// The operator's IP pool is the lab's pod CIDR, VXLAN always.
	pools := dyn.Resource(schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"})
	var pool *unstructured.Unstructured
	for pool == nil {
		if p, err := pools.Get(ctx, "default-ipv4-ippool", metav1.GetOptions{}); err == nil {
			pool = p
		} else if ctx.Err() != nil {
			t.Fatalf("no IPPool default-ipv4-ippool: %v", err)
		} else {
			time.Sleep(2 * time.Second)
		}
	}
	cidr, _, _ := unstructured.NestedString(pool.Object, "spec", "cidr")
	vxlan, _, _ := unstructured.NestedString(pool.Object, "spec", "vxlanMode")
	if cidr != podCIDR || vxlan != "Always" {
		t.Errorf("IPPool default-ipv4-ippool: cidr %q vxlanMode %q, want %s Always", cidr, vxlan, podCIDR)
	}

	// The policy pack on the operator's objects, with the lab's exceptions.
	var objs []any
	objs = append(objs, node, opDep)
	for i := range deps {
		objs = append(objs, &deps[i])
	}
	var rs []rules.Resource
	for _, o := range objs {
		r, err := packResource(o)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	report := rules.EvaluateStack(rs, labExceptions(t))
	for _, f := range report.Mandatory {
		t.Errorf("policy pack on the operator's objects (mandatory %s): %s", f.Rule, f.Message())
	}
	for _, f := range report.Advisory {
		t.Errorf("policy pack on the operator's objects (advisory %s): %s", f.Rule, f.Message())
	}
}

// packResource is a Kubernetes object as the pack sees a kubernetes provider resource of that
// kind (its inputs: apiVersion, kind, metadata, spec), named namespace/name.
func packResource(obj any) (rules.Resource, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return rules.Resource{}, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return rules.Resource{}, err
	}
	delete(m, "status")
	meta, _ := m["metadata"].(map[string]any)
	for _, k := range []string{"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"} {
		delete(meta, k)
	}
	var kind, group, version string
	switch o := obj.(type) {
	case *appsv1.DaemonSet:
		kind, group, version = "DaemonSet", "apps", "v1"
		_ = o
	case *appsv1.Deployment:
		kind, group, version = "Deployment", "apps", "v1"
	default:
		return rules.Resource{}, fmt.Errorf("packResource: %T", obj)
	}
	m["apiVersion"], m["kind"] = group+"/"+version, kind
	name := fmt.Sprintf("%s/%s", meta["namespace"], meta["name"])
	typ := fmt.Sprintf("kubernetes:%s/%s:%s", group, version, kind)
	return rules.Resource{Type: typ, Name: name, URN: "urn:pulumi:lab::infralab::" + typ + "::" + name, Props: rules.MapFromGo(m)}, nil
}

// labExceptions reads the lab stack's pack config as the pack parses it.
func labExceptions(t *testing.T) rules.Exceptions {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "stacks", "policy.lab.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	ex := rules.ParseExceptions(cfg["exceptions"], func(name string) bool { return slices.Contains(rules.RuleNames(), name) })
	if len(ex.Problems) > 0 {
		t.Fatalf("stacks/policy.lab.json: %v", ex.Problems)
	}
	return ex
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
