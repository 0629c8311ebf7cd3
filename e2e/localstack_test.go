package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/controlplane"
)

// The `local` stack end to end: the real pulumi CLI, our Go language host, the real kubernetes
// provider and the policy pack, against the embedded control plane running with the lab
// cluster's hardening (encryption at rest, audit, admission config). The subtests share one
// control plane and one stack and run in order: up, checks on what up made, no-op runs, the
// policy gate on a broken program, destroy, then an API server outage in the middle of an up.
//
// There is no kubelet and no scheduler here: Pods are admitted (or refused) by the API server and
// created by the controller-manager, then stay Pending. What needs a running container (probes,
// NetworkPolicy enforcement, the api answering) is out of reach; docs/e2e.md lists it.

// localNamespaces are the namespaces stacks/Pulumi.local.yaml gives the apps layer.
var localNamespaces = []string{"healthcare", "database", "monitoring"}

// localSecretKeys are the secrets the local stack needs (stacks/Pulumi.local.yaml's header).
var localSecretKeys = []string{"postgresPassword", "apiDbPassword", "exporterDbPassword"}

type localStack struct {
	root string
	pack string
	// packConfig is the stack's policy exceptions (node-exporter's namespace), as CI passes them.
	packConfig string
	cp         *controlplane.ControlPlane
	client     *kubernetes.Clientset
	ws         *pulumiWorkspace
	cli        *pulumiCLI
	secrets    map[string]string
}

func newLocalStack(t *testing.T) *localStack {
	t.Helper()
	for _, tool := range []string{"etcd", "etcdctl", "kube-apiserver", "kube-controller-manager"} {
		testenv.Tool(t, tool)
	}
	root := testenv.RepoRoot()
	h, err := controlplane.LabHardening()
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	begin := time.Now()
	cp, err := controlplane.Start(context.Background(), controlplane.Options{Dir: t.TempDir(), Log: &log, Hardening: h})
	if err != nil {
		t.Fatalf("embedded control plane: %v\n%s", err, log.String())
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	t.Logf("hardened control plane ready in %.1fs at %s", time.Since(begin).Seconds(), cp.ServerURL())
	cfg, err := clientcmd.RESTConfigFromKubeConfig(cp.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	// Hundreds of SubjectAccessReviews: lift client-go's default 5 requests/s.
	cfg.QPS, cfg.Burst = 200, 400
	ls := &localStack{root: root, pack: filepath.Join(root, "policy"), packConfig: filepath.Join(root, "stacks", "policy.local.json"), cp: cp,
		client: kubernetes.NewForConfigOrDie(cfg), secrets: map[string]string{}}

	ls.ws = newPulumiWorkspace(t, cp.KubeconfigPath())
	ls.cli = ls.ws.project(t, root, "local", filepath.Join(root, "stacks", "Pulumi.local.yaml"))
	ls.cli.setConfig(t, "kubeconfig", cp.KubeconfigPath())
	for _, key := range localSecretKeys {
		ls.secrets[key] = "e2e-" + randomHex(t) + randomHex(t)
		ls.cli.setSecret(t, key, ls.secrets[key])
	}
	return ls
}

func (ls *localStack) upArgs(extra ...string) []string {
	return ls.cli.stackArgs(append([]string{"up", "--policy-pack", ls.pack, "--policy-pack-config", ls.packConfig, "--yes", "--skip-preview"}, extra...)...)
}

func TestLocalStack(t *testing.T) {
	tracked := filepath.Join(testenv.RepoRoot(), "stacks", "Pulumi.local.yaml")
	before, err := os.ReadFile(tracked)
	if err != nil {
		t.Fatal(err)
	}
	ls := newLocalStack(t)
	var afterUp []stateResource

	if !t.Run("up with the policy pack", func(t *testing.T) {
		out, took, err := ls.cli.run(t, ls.upArgs()...)
		if err != nil {
			t.Fatalf("pulumi up of the local stack failed: %v", err)
		}
		if !strings.Contains(out, "infralab@v0.1.0") {
			t.Error("the output does not show that the policy pack ran")
		}
		if regexp.MustCompile(`\[(mandatory|advisory)\]`).MatchString(out) {
			t.Error("the local stack violates a policy")
		}
		if strings.Contains(out, "violate PodSecurity") {
			t.Error("the API server warned that a workload violates Pod Security")
		}
		afterUp, _ = ls.cli.export(t)
		objs := kubernetesObjects(afterUp)
		if m := regexp.MustCompile(`(?m)^\s+\+ (\d+) created$`).FindStringSubmatch(out); m == nil {
			t.Error("the output does not count the created resources")
		} else if n, _ := strconv.Atoi(m[1]); n != len(afterUp) {
			t.Errorf("up says %d created, the state holds %d resources", n, len(afterUp))
		}
		if len(objs) < 20 {
			t.Fatalf("the state holds only %d Kubernetes objects", len(objs))
		}
		t.Logf("up created %d Kubernetes objects (%d resources in state) in %.1fs", len(objs), len(afterUp), took.Seconds())
	}) {
		t.FailNow()
	}

	t.Run("workloads admitted under Pod Security restricted", func(t *testing.T) {
		checkWorkloadsAdmitted(t, ls.client, afterUp)
	})
	t.Run("RBAC matrix", func(t *testing.T) {
		checkRBACMatrix(t, ls.client, afterUp)
	})
	t.Run("Secrets encrypted in etcd", func(t *testing.T) {
		checkSecretsEncrypted(t, ls, afterUp)
	})

	t.Run("second up and preview report no changes", func(t *testing.T) {
		out, took, err := ls.cli.run(t, ls.upArgs("--expect-no-changes")...)
		if err != nil {
			t.Errorf("a second up is not a no-op: %v", err)
		}
		t.Logf("no-op up: %.1fs, %s", took.Seconds(), firstMatch(out, `\d+ unchanged`))
		_, took, err = ls.cli.run(t, ls.cli.stackArgs("preview", "--policy-pack", ls.pack, "--policy-pack-config", ls.packConfig, "--expect-no-changes")...)
		if err != nil {
			t.Errorf("a preview after up shows changes: %v", err)
		}
		t.Logf("preview: %.1fs", took.Seconds())
	})

	t.Run("policy pack stops a broken program before the API server", func(t *testing.T) {
		checkBrokenVariant(t, ls)
	})

	if !t.Run("destroy removes everything", func(t *testing.T) {
		// A clean destroy takes seconds here; one that waits on a finalizer would hold the test
		// for the provider's 10-minute delete timeout.
		_, took, err := ls.cli.runWithin(t, 3*time.Minute, ls.cli.stackArgs("destroy", "--yes", "--skip-preview")...)
		if err != nil {
			t.Fatalf("destroy failed: %v\nobjects stuck in deletion: %v", err, stuckInDeletion(t, ls))
		}
		left, _ := ls.cli.export(t)
		if len(left) != 0 {
			t.Errorf("the state still holds %d resources after destroy", len(left))
		}
		t.Logf("destroy: %.1fs", took.Seconds())
		checkAllGone(t, ls, afterUp)
	}) {
		t.FailNow() // the outage test recreates the same namespaces
	}

	t.Run("API server stopped during up, then up converges", func(t *testing.T) {
		checkOutageRecovery(t, ls, afterUp)
	})

	t.Run("no secret in outputs, state export or audit log", func(t *testing.T) {
		if leaks := ls.ws.secrets.leaks(); len(leaks) > 0 {
			t.Errorf("a secret value appeared in CLI output: %v", leaks)
		}
		audit, err := os.ReadFile(ls.cp.AuditLogPath())
		if err != nil {
			t.Fatal(err)
		}
		for key, v := range ls.secrets {
			if bytes.Contains(audit, []byte(v)) {
				t.Errorf("the value of %s is in the audit log", key)
			}
		}
		after, err := os.ReadFile(tracked)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("the tracked %s changed during the test: secrets or salts must go to the --config-file copy", tracked)
		}
	})
}

// checkAllGone waits until every object the stack had is gone from the cluster: namespaces
// first (the namespace controller deletes their content), then each object by name.
func checkAllGone(t *testing.T, ls *localStack, state []stateResource) {
	t.Helper()
	ctx := context.Background()
	begin := time.Now()
	deadline := begin.Add(2 * time.Minute)
	for _, ns := range localNamespaces {
		for {
			n, err := ls.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.DeletionTimestamp == nil {
				t.Fatalf("namespace %s is neither deleted nor terminating after destroy", ns)
			}
			if time.Now().After(deadline) {
				t.Fatalf("namespace %s is still terminating after %v: %v", ns, time.Since(begin), n.Status.Conditions)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	t.Logf("our namespaces are gone %.1fs after destroy", time.Since(begin).Seconds())
	objs := newObjectLookup(t, ls.cp)
	for _, r := range kubernetesObjects(state) {
		if _, err := objs.get(r); !apierrors.IsNotFound(err) {
			t.Errorf("%s %s is still in the cluster after destroy (err=%v)", r.Type, r.ID, err)
		}
	}
}

// stuckInDeletion lists our namespaces and cluster-scoped volumes that are terminating, with the
// finalizers that hold them.
func stuckInDeletion(t *testing.T, ls *localStack) []string {
	ctx := context.Background()
	var out []string
	pvs, err := ls.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, pv := range pvs.Items {
			if pv.DeletionTimestamp != nil {
				claim := ""
				if c := pv.Spec.ClaimRef; c != nil {
					claim = " bound to claim " + c.Namespace + "/" + c.Name
				}
				out = append(out, "PersistentVolume "+pv.Name+claim+" finalizers "+strings.Join(pv.Finalizers, ","))
			}
		}
	}
	for _, ns := range localNamespaces {
		n, err := ls.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err == nil && n.DeletionTimestamp != nil {
			out = append(out, "Namespace "+ns+" terminating")
		}
		pvcs, err := ls.client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, c := range pvcs.Items {
				out = append(out, "PersistentVolumeClaim "+ns+"/"+c.Name+" still exists ("+string(c.Status.Phase)+")")
			}
		}
	}
	return out
}

func firstMatch(s, re string) string { return regexp.MustCompile(re).FindString(s) }
