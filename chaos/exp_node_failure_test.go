package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func pod(ns, name, node string, lbl map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbl},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: apiImage}}},
	}
}

var apiLabels = map[string]string{"app.kubernetes.io/name": "healthcare-api", "app.kubernetes.io/part-of": "infralab"}

// nodeFailureCluster is the node-failure fixture on the real API server: three Node objects,
// bare api pods bound to the given nodes, Postgres (a StatefulSet) pinned to one node as local
// storage pins it, and the api Service whose EndpointSlices the real EndpointSlice controller
// fills from the pods the stand-in kubelet marks Ready.
type nodeFailureCluster struct {
	admin  kubernetes.Interface
	ctx    context.Context
	hc, db string
	nodes  [3]string
	// notReady names nodes whose stand-in heartbeat reports Ready=False (see heartbeat).
	notReady sync.Map
}

// apiOn lists the node index of each api pod; otherOn, unless negative, places a pod of another
// app (outside the selector) on that node.
func newNodeFailureCluster(t *testing.T, apiOn []int, pgOn, otherOn int) *nodeFailureCluster {
	t.Helper()
	cfg, _ := realCluster(t)
	f := &nodeFailureCluster{admin: kubernetes.NewForConfigOrDie(cfg)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.ctx = ctx
	nss := newNamespaces(t, f.admin, "healthcare", "database")
	f.hc, f.db = nss[0], nss[1]
	for i := range f.nodes {
		n := f.hc + "-worker-" + string(rune('1'+i))
		f.nodes[i] = n
		if _, err := f.admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.admin.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{}) })
	}
	var pods []*corev1.Pod
	if otherOn >= 0 {
		pods = append(pods, pod(f.hc, "other-app", f.nodes[otherOn], map[string]string{"app.kubernetes.io/name": "other"}))
	}
	for i, n := range apiOn {
		pods = append(pods, pod(f.hc, "api-"+string(rune('1'+i)), f.nodes[n], apiLabels))
	}
	for _, p := range pods {
		if _, err := f.admin.CoreV1().Pods(f.hc).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "healthcare-api", Namespace: f.hc}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app.kubernetes.io/name": "healthcare-api"}, Ports: []corev1.ServicePort{{Port: 8080}}}}
	if _, err := f.admin.CoreV1().Services(f.hc).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pg := statefulSet(f.db, "postgres", 1)
	pg.Spec.Template.Spec.NodeName = f.nodes[pgOn]
	if _, err := f.admin.AppsV1().StatefulSets(f.db).Create(ctx, pg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	standInKubelet(ctx, t, f.admin, nss, nil)
	waitUntil(t, 30*time.Second, "postgres-0 Ready", func() bool {
		p, err := f.admin.CoreV1().Pods(f.db).Get(ctx, "postgres-0", metav1.GetOptions{})
		return err == nil && podReady(p)
	})
	env := &Env{Client: f.admin, Scope: Scope{Namespaces: []string{f.hc}}}
	waitUntil(t, 60*time.Second, "every api pod a ready endpoint", func() bool {
		n, _, err := serviceReadyEndpoints(ctx, env, "healthcare-api")
		return err == nil && n == len(apiOn)
	})
	return f
}

// heartbeat reports every node Ready=True each second, as their kubelets would (so the node
// lifecycle controller does not mark them Unknown), or Ready=False for a node in f.notReady; it
// returns once every node is Ready.
func (f *nodeFailureCluster) heartbeat(t *testing.T) {
	t.Helper()
	go func() {
		for f.ctx.Err() == nil {
			for _, name := range f.nodes {
				n, err := f.admin.CoreV1().Nodes().Get(f.ctx, name, metav1.GetOptions{})
				if err != nil {
					continue
				}
				status, reason := corev1.ConditionTrue, "KubeletReady"
				if _, down := f.notReady.Load(name); down {
					status, reason = corev1.ConditionFalse, "KubeletNotReady"
				}
				now := metav1.Now()
				cond := corev1.NodeCondition{Type: corev1.NodeReady, Status: status, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == status {
						cond.LastTransitionTime = c.LastTransitionTime
					}
				}
				n.Status.Conditions = []corev1.NodeCondition{cond}
				if _, err := f.admin.CoreV1().Nodes().UpdateStatus(f.ctx, n, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && f.ctx.Err() == nil {
					t.Logf("stand-in heartbeat: %v", err)
				}
			}
			time.Sleep(time.Second)
		}
	}()
	waitUntil(t, 30*time.Second, "every node Ready", func() bool {
		for _, name := range f.nodes {
			n, err := f.admin.CoreV1().Nodes().Get(f.ctx, name, metav1.GetOptions{})
			if err != nil || !nodeReady(n) {
				return false
			}
		}
		return true
	})
}

// whenCordoned runs do once node is cordoned, and reports whether it ever was.
func (f *nodeFailureCluster) whenCordoned(node string, do func()) *atomic.Bool {
	var cordoned atomic.Bool
	go func() {
		for f.ctx.Err() == nil {
			if n, err := f.admin.CoreV1().Nodes().Get(f.ctx, node, metav1.GetOptions{}); err == nil && n.Spec.Unschedulable {
				if !cordoned.Swap(true) && do != nil {
					do()
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	return &cordoned
}

func (f *nodeFailureCluster) assertUncordoned(t *testing.T, node string) {
	t.Helper()
	if n, err := f.admin.CoreV1().Nodes().Get(f.ctx, node, metav1.GetOptions{}); err != nil || n.Spec.Unschedulable {
		t.Errorf("%s is still cordoned after the rollback (%v)", node, err)
	}
}

// assertAbortRecorded writes the result as the CLI does and checks that measurements.json and
// the postmortem draft say the run aborted, why, and that it was rolled back.
func assertAbortRecorded(t *testing.T, res *Result, reason string) {
	t.Helper()
	dir, err := res.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var got Result
	b, err := os.ReadFile(filepath.Join(dir, "measurements.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Outcome != OutcomeAborted || !strings.Contains(got.AbortReason, reason) || !got.RolledBack {
		t.Errorf("measurements.json: outcome %s, abortReason %q (want %q), rolledBack %v", got.Outcome, got.AbortReason, reason, got.RolledBack)
	}
	md, err := os.ReadFile(filepath.Join(dir, "postmortem.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**ABORTED**", "The run stopped early: " + res.AbortReason, "| Rolled back | yes |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("postmortem draft lacks %q:\n%s", want, md)
		}
	}
}

func nodeFailureOpts() Options {
	return Options{StatelessSelector: "app.kubernetes.io/name=healthcare-api", PostgresSelector: "app.kubernetes.io/name=postgres",
		Service: "healthcare-api", RecoverySLO: 5 * time.Second}
}

// TestNodeFailureCordonAndScopedDrain runs the no-Proxmox path on the real API server: the api on
// worker-1 and worker-2, Postgres pinned to worker-1 (as local storage pins it), and a pod of
// another app on worker-1 that the drain must leave alone. The stand-in kubelet makes pods Ready
// and confirms deletions.
func TestNodeFailureCordonAndScopedDrain(t *testing.T) {
	f := newNodeFailureCluster(t, []int{0, 1}, 0, 0)
	cfg, _ := realCluster(t)
	ctx, admin, hc, db := f.ctx, f.admin, f.hc, f.db
	w1, w3 := f.nodes[0], f.nodes[2]
	cordoned := f.whenCordoned(w1, nil)

	opts := nodeFailureOpts()
	lim := testLimits(45 * time.Second)
	env, out := testEnv(t, cfg, hc+","+db, "app.kubernetes.io/part-of=infralab", false, lim, opts)
	res, err := Runner{Limits: lim}.Run(ctx, &NodeFailure{}, env)
	t.Log(out.String())
	if err != nil || res.Outcome != OutcomeHeld || !res.RolledBack {
		t.Fatalf("outcome %s, rolled back %v, err %v", res.Outcome, res.RolledBack, err)
	}
	if !cordoned.Load() {
		t.Error("worker-1 was never cordoned")
	}
	f.assertUncordoned(t, w1)
	if _, err := admin.CoreV1().Pods(hc).Get(ctx, "api-1", metav1.GetOptions{}); err == nil {
		t.Error("api-1 on the failed node was not evicted")
	}
	if p, err := admin.CoreV1().Pods(hc).Get(ctx, "other-app", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("the drain touched a pod outside the selector: %v", err)
	}
	if v, ok := env.Measured("pods_evicted"); !ok || v != 2 {
		t.Errorf("pods_evicted = %v, want 2 (api-1 and postgres-0)", v)
	}
	if _, ok := env.Measured("stateless_recovery_seconds"); !ok {
		t.Error("no stateless_recovery_seconds")
	}
	if v, ok := env.Measured("postgres_unavailable_seconds"); !ok || v < 0 {
		t.Errorf("postgres_unavailable_seconds = %v, %v", v, ok)
	}
	if v, ok := env.Measured("ready_endpoints_before"); !ok || v != 2 {
		t.Errorf("ready_endpoints_before = %v, want 2", v)
	}

	// A node without an in-scope pod is outside the blast radius.
	opts.Node = w3
	env, _ = testEnv(t, cfg, hc+","+db, "app.kubernetes.io/part-of=infralab", false, lim, opts)
	res, err = Runner{Limits: lim}.Run(ctx, &NodeFailure{}, env)
	if err == nil || !strings.Contains(res.AbortReason, "runs no pod matching") {
		t.Fatalf("failing %s: want a blast-radius refusal, got %s %q %v", w3, res.Outcome, res.AbortReason, err)
	}
	if n, _ := admin.CoreV1().Nodes().Get(ctx, w3, metav1.GetOptions{}); n.Spec.Unschedulable || res.Mutations != 0 {
		t.Errorf("%s cordoned (%v) or mutations sent (%d)", w3, n.Spec.Unschedulable, res.Mutations)
	}
}

// TestNodeFailureAbortsWhenTheAPIHasNoEndpoint puts both api replicas on the failed node: the
// drain takes every ready endpoint away, nothing replaces them, and the run must abort after
// --abort-after-unavailable instead of waiting for the recovery SLO, and uncordon the node.
func TestNodeFailureAbortsWhenTheAPIHasNoEndpoint(t *testing.T) {
	f := newNodeFailureCluster(t, []int{0, 0}, 1, -1)
	cfg, _ := realCluster(t)
	w1 := f.nodes[0]
	cordoned := f.whenCordoned(w1, nil)

	opts := nodeFailureOpts()
	opts.Node, opts.RecoverySLO, opts.AbortAfterUnavailable = w1, 5*time.Minute, 3*time.Second
	lim := testLimits(60 * time.Second)
	env, out := testEnv(t, cfg, f.hc+","+f.db, "app.kubernetes.io/part-of=infralab", false, lim, opts)
	start := time.Now()
	res, err := Runner{Limits: lim}.Run(f.ctx, &NodeFailure{}, env)
	t.Log(out.String())
	const reason = "Service healthcare-api has had no ready endpoint for"
	if err == nil || res.Outcome != OutcomeAborted || !strings.Contains(res.AbortReason, reason) {
		t.Fatalf("want an abort on an api without endpoints, got outcome %s, reason %q, err %v", res.Outcome, res.AbortReason, err)
	}
	if !res.RolledBack || !cordoned.Load() {
		t.Fatalf("rolled back %v (%s), cordoned %v", res.RolledBack, res.RollbackError, cordoned.Load())
	}
	f.assertUncordoned(t, w1)
	if d := time.Since(start); d > 40*time.Second {
		t.Errorf("the abort took %s; the grace period is 3s", d)
	}
	if v, ok := env.Measured("api_unavailable_seconds"); !ok || v < 3 {
		t.Errorf("api_unavailable_seconds = %v (recorded %v), want >= the 3 s grace", v, ok)
	}
	if v, ok := env.Measured("ready_endpoints_min"); !ok || v != 0 {
		t.Errorf("ready_endpoints_min = %v (recorded %v), want 0", v, ok)
	}
	if v, _ := env.Measured("pods_evicted"); v != 2 {
		t.Errorf("pods_evicted = %v, want both api pods", v)
	}
	assertAbortRecorded(t, res, reason)
}

// TestNodeFailureAbortsWhenAnotherNodeGoesNotReady fails worker-1 while a stand-in heartbeat
// keeps every node Ready; once worker-1 is cordoned, worker-3 reports NotReady. The failure has
// spread beyond the one worker: the run must abort and uncordon worker-1.
func TestNodeFailureAbortsWhenAnotherNodeGoesNotReady(t *testing.T) {
	f := newNodeFailureCluster(t, []int{0, 1}, 1, -1)
	cfg, _ := realCluster(t)
	f.heartbeat(t)
	w1, w3 := f.nodes[0], f.nodes[2]
	cordoned := f.whenCordoned(w1, func() { f.notReady.Store(w3, true) })

	opts := nodeFailureOpts()
	// Neither the SLO nor the endpoint grace ends this run: api-2 keeps serving on worker-2.
	opts.Node, opts.RecoverySLO = w1, 5*time.Minute
	lim := testLimits(60 * time.Second)
	env, out := testEnv(t, cfg, f.hc+","+f.db, "app.kubernetes.io/part-of=infralab", false, lim, opts)
	res, err := Runner{Limits: lim}.Run(f.ctx, &NodeFailure{}, env)
	t.Log(out.String())
	reason := "node " + w3 + " went NotReady"
	if err == nil || res.Outcome != OutcomeAborted || !strings.Contains(res.AbortReason, reason) {
		t.Fatalf("want an abort on %s going NotReady, got outcome %s, reason %q, err %v", w3, res.Outcome, res.AbortReason, err)
	}
	if !res.RolledBack || !cordoned.Load() {
		t.Fatalf("rolled back %v (%s), cordoned %v", res.RolledBack, res.RollbackError, cordoned.Load())
	}
	f.assertUncordoned(t, w1)
	if v, ok := env.Measured("other_nodes_not_ready"); !ok || v != 1 {
		t.Errorf("other_nodes_not_ready = %v (recorded %v), want 1", v, ok)
	}
	if strings.Contains(res.AbortReason, "worker-2") || strings.Contains(res.AbortReason, "no ready endpoint") {
		t.Errorf("abort blamed the wrong thing: %q", res.AbortReason)
	}
	assertAbortRecorded(t, res, reason)
}
