package main

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const badImage = "registry.invalid/infralab/never-ready:0"

// rolloutFixture creates the api Deployment in a fresh namespace and waits until the real
// controllers report it Available with 2 replicas (pods made Ready by the stand-in kubelet).
func rolloutFixture(t *testing.T, maxUnavailable int) (kubernetes.Interface, string, *appsv1.Deployment, context.Context) {
	t.Helper()
	cfg, _ := realCluster(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ns := newNamespaces(t, admin, "healthcare")[0]
	standInKubelet(ctx, t, admin, []string{ns}, imageIs(badImage))
	d, err := admin.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "healthcare-api",
		map[string]string{"app.kubernetes.io/name": "healthcare-api"}, maxUnavailable), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "2 available replicas", func() bool {
		d, err := admin.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 2
	})
	return admin, ns, d, ctx
}

func badRolloutOpts(deadline int32) Options {
	return Options{Target: "healthcare-api", BadImage: badImage, ProgressDeadline: deadline, MinAvailable: 1}
}

// assertRestored checks the Deployment runs its original image and deadline again and that the
// bad ReplicaSet was scaled away by the real deployment controller.
func assertRestored(t *testing.T, admin kubernetes.Interface, ns string) {
	t.Helper()
	d, err := admin.AppsV1().Deployments(ns).Get(context.Background(), "healthcare-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != apiImage {
		t.Errorf("after rollback the image is %s, want %s", img, apiImage)
	}
	if *d.Spec.ProgressDeadlineSeconds != 600 {
		t.Errorf("after rollback progressDeadlineSeconds is %d, want 600", *d.Spec.ProgressDeadlineSeconds)
	}
	if !badReplicaSetsGone(context.Background(), &Env{Client: admin}, d, badImage) {
		t.Error("a ReplicaSet with the bad image still has replicas")
	}
}

func TestBadRolloutStallDetectedAndRolledBack(t *testing.T) {
	admin, ns, _, ctx := rolloutFixture(t, 0)
	cfg, _ := realCluster(t)
	env, out := testEnv(t, cfg, ns, "app.kubernetes.io/name=healthcare-api", false, testLimits(90*time.Second), badRolloutOpts(5))

	res, err := Runner{Limits: testLimits(90 * time.Second)}.Run(ctx, &BadRollout{}, env)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeHeld || !res.RolledBack || res.SteadyStateAfter != "ok" {
		t.Fatalf("outcome %s, rolled back %v, steady state after %q", res.Outcome, res.RolledBack, res.SteadyStateAfter)
	}
	stall, ok := env.Measured("stall_detected_seconds")
	if !ok || stall < 5 || stall > 60 {
		t.Errorf("stall_detected_seconds = %v (recorded %v), want between the 5 s deadline and 60 s", stall, ok)
	}
	if during, _ := env.Measured("available_replicas_during"); during != 2 {
		t.Errorf("available replicas during the bad rollout = %v, want 2 (maxUnavailable 0)", during)
	}
	assertRestored(t, admin, ns)
}

func TestBadRolloutAbortsWhenServingPodsGo(t *testing.T) {
	// maxUnavailable 1 lets the controller take an old pod away: the abort condition must fire.
	admin, ns, _, ctx := rolloutFixture(t, 1)
	cfg, _ := realCluster(t)
	env, out := testEnv(t, cfg, ns, "app.kubernetes.io/name=healthcare-api", false, testLimits(60*time.Second), badRolloutOpts(300))

	res, err := Runner{Limits: testLimits(60 * time.Second)}.Run(ctx, &BadRollout{}, env)
	t.Log(out.String())
	if err == nil || res.Outcome != OutcomeAborted || !strings.Contains(res.AbortReason, "available replicas fell to 1") {
		t.Fatalf("want an abort on lost availability, got outcome %s, reason %q, err %v", res.Outcome, res.AbortReason, err)
	}
	if !res.RolledBack {
		t.Fatalf("not rolled back: %s", res.RollbackError)
	}
	assertRestored(t, admin, ns)
}

func TestBadRolloutTimesOutAndRollsBack(t *testing.T) {
	admin, ns, _, ctx := rolloutFixture(t, 0)
	cfg, _ := realCluster(t)
	lim := testLimits(6 * time.Second)
	env, out := testEnv(t, cfg, ns, "app.kubernetes.io/name=healthcare-api", false, lim, badRolloutOpts(0))

	res, err := Runner{Limits: lim}.Run(ctx, &BadRollout{}, env)
	t.Log(out.String())
	if err == nil || res.Outcome != OutcomeTimeout || !res.RolledBack {
		t.Fatalf("want a timeout with rollback, got outcome %s, rolled back %v, err %v", res.Outcome, res.RolledBack, err)
	}
	assertRestored(t, admin, ns)
}

func TestBadRolloutRefusesTargetOutsideSelector(t *testing.T) {
	admin, ns, d0, ctx := rolloutFixture(t, 0)
	cfg, _ := realCluster(t)
	env, _ := testEnv(t, cfg, ns, "app.kubernetes.io/name=something-else", false, testLimits(20*time.Second), badRolloutOpts(5))
	res, err := Runner{Limits: testLimits(20 * time.Second)}.Run(ctx, &BadRollout{}, env)
	if err == nil || res.Outcome != OutcomeNoStart || !strings.Contains(res.SteadyStateBefore, "does not match selector") {
		t.Fatalf("want a refusal before anything starts, got %s %q %v", res.Outcome, res.SteadyStateBefore, err)
	}
	d1, _ := admin.AppsV1().Deployments(ns).Get(ctx, "healthcare-api", metav1.GetOptions{})
	if d1.Generation != d0.Generation || res.Mutations != 0 {
		t.Errorf("the out-of-scope Deployment changed: generation %d -> %d, %d mutations", d0.Generation, d1.Generation, res.Mutations)
	}
}
