package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func pod(ns, name, node string, lbl map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbl},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: apiImage}}},
	}
}

// TestNodeFailureCordonAndScopedDrain runs the no-Proxmox path on the real API server: two
// Node objects, the api on both, Postgres pinned to worker-1 (as local storage pins it), and a
// pod of another app on worker-1 that the drain must leave alone. The stand-in kubelet makes
// pods Ready and confirms deletions.
func TestNodeFailureCordonAndScopedDrain(t *testing.T) {
	cfg, _ := realCluster(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nss := newNamespaces(t, admin, "healthcare", "database")
	hc, db := nss[0], nss[1]
	w1, w2, w3 := hc+"-worker-1", hc+"-worker-2", hc+"-worker-3"
	for _, n := range []string{w1, w2, w3} {
		if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = admin.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{}) })
	}
	apiLbl := map[string]string{"app.kubernetes.io/name": "healthcare-api", "app.kubernetes.io/part-of": "infralab"}
	for _, p := range []*corev1.Pod{
		pod(hc, "api-1", w1, apiLbl), pod(hc, "api-2", w2, apiLbl),
		pod(hc, "other-app", w1, map[string]string{"app.kubernetes.io/name": "other"}),
	} {
		if _, err := admin.CoreV1().Pods(hc).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pg := statefulSet(db, "postgres", 1)
	pg.Spec.Template.Spec.NodeName = w1
	if _, err := admin.AppsV1().StatefulSets(db).Create(ctx, pg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	standInKubelet(ctx, t, admin, nss, nil)
	waitUntil(t, 30*time.Second, "postgres-0 Ready", func() bool {
		p, err := admin.CoreV1().Pods(db).Get(ctx, "postgres-0", metav1.GetOptions{})
		return err == nil && podReady(p)
	})
	var cordoned atomic.Bool
	go func() {
		for ctx.Err() == nil {
			if n, err := admin.CoreV1().Nodes().Get(ctx, w1, metav1.GetOptions{}); err == nil && n.Spec.Unschedulable {
				cordoned.Store(true)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()

	opts := Options{StatelessSelector: "app.kubernetes.io/name=healthcare-api", PostgresSelector: "app.kubernetes.io/name=postgres", RecoverySLO: 5 * time.Second}
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
	if n, _ := admin.CoreV1().Nodes().Get(ctx, w1, metav1.GetOptions{}); n.Spec.Unschedulable {
		t.Error("worker-1 is still cordoned after the rollback")
	}
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
