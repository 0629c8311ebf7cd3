package main

import (
	"context"
	"errors"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

const apiImage = "infralab.local/healthcare-api:0.1.0"

// deployment is a hardened two-replica Deployment like the apps layer's healthcare-api.
func deployment(ns, name string, lbls map[string]string, maxUnavailable int) *appsv1.Deployment {
	sel := map[string]string{"app.kubernetes.io/name": name}
	podLabels := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbls},
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr(int32(2)),
			Selector:                &metav1.LabelSelector{MatchLabels: sel},
			ProgressDeadlineSeconds: ptr(int32(600)),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr(intstr.FromInt32(int32(maxUnavailable))), MaxSurge: ptr(intstr.FromInt32(1)),
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "api", Image: apiImage,
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: mustQ("256Mi")}},
				}}},
			},
		},
	}
}

func TestGuardEnforcesBlastRadiusOnRealAPIServer(t *testing.T) {
	cfg, _ := realCluster(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	nss := newNamespaces(t, admin, "healthcare", "other")
	in, out := nss[0], nss[1]
	lbl := map[string]string{"app.kubernetes.io/name": "healthcare-api"}
	for _, d := range []*appsv1.Deployment{
		deployment(in, "healthcare-api", lbl, 0),
		deployment(in, "unlabelled", nil, 0),
		deployment(out, "healthcare-api", lbl, 0),
	} {
		if _, err := admin.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	env, _ := testEnv(t, cfg, in, "app.kubernetes.io/name=healthcare-api", false, testLimits(time.Minute), Options{})
	c := env.Client
	scalePatch := []byte(`{"spec":{"replicas":3}}`)

	if _, err := c.AppsV1().Deployments(in).Patch(ctx, "healthcare-api", types.MergePatchType, scalePatch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("in-scope patch refused: %v", err)
	}
	refused := map[string]error{}
	_, refused["object not matching the selector"] = c.AppsV1().Deployments(in).Patch(ctx, "unlabelled", types.MergePatchType, scalePatch, metav1.PatchOptions{})
	_, refused["namespace outside the scope"] = c.AppsV1().Deployments(out).Patch(ctx, "healthcare-api", types.MergePatchType, scalePatch, metav1.PatchOptions{})
	refused["deleting the namespace"] = c.CoreV1().Namespaces().Delete(ctx, in, metav1.DeleteOptions{})
	refused["deleting a collection"] = c.AppsV1().Deployments(in).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	_, refused["creating an unlabelled pod"] = c.CoreV1().Pods(in).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: apiImage}}},
	}, metav1.CreateOptions{})
	_, refused["a kind chaos never changes"] = c.CoreV1().ConfigMaps(in).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: lbl}}, metav1.CreateOptions{})
	_, refused["cordoning a node nobody allowed"] = c.CoreV1().Nodes().Patch(ctx, "worker-1", types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	for what, err := range refused {
		if !errors.Is(err, ErrRefused) {
			t.Errorf("%s: want the guard to refuse, got %v", what, err)
		}
	}
	// The server's objects prove nothing outside the scope changed.
	for _, ref := range [][2]string{{in, "unlabelled"}, {out, "healthcare-api"}} {
		d, err := admin.AppsV1().Deployments(ref[0]).Get(ctx, ref[1], metav1.GetOptions{})
		if err != nil || *d.Spec.Replicas != 2 {
			t.Errorf("%s/%s changed (replicas %v): %v", ref[0], ref[1], d.Spec.Replicas, err)
		}
	}
	if d, _ := admin.AppsV1().Deployments(in).Get(ctx, "healthcare-api", metav1.GetOptions{}); *d.Spec.Replicas != 3 {
		t.Errorf("in-scope patch did not apply: replicas %d", *d.Spec.Replicas)
	}
	_, mutations, refusedLog := env.Guard.Stats()
	if mutations != 1 || len(refusedLog) != len(refused) {
		t.Errorf("guard stats: %d mutations (want 1), %d refused (want %d): %v", mutations, len(refusedLog), len(refused), refusedLog)
	}
}

func TestGuardDryRunAndBudgetOnRealAPIServer(t *testing.T) {
	cfg, _ := realCluster(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	ns := newNamespaces(t, admin, "healthcare")[0]
	lbl := map[string]string{"app.kubernetes.io/name": "healthcare-api"}
	d0, err := admin.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "healthcare-api", lbl, 0), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env, _ := testEnv(t, cfg, ns, "app.kubernetes.io/name=healthcare-api", true, testLimits(time.Minute), Options{})
	patch := []byte(`{"spec":{"replicas":5}}`)
	if _, err := env.Client.AppsV1().Deployments(ns).Patch(ctx, "healthcare-api", types.MergePatchType, patch, metav1.PatchOptions{}); !errors.Is(err, ErrRefused) {
		t.Errorf("dry-run: a real patch went through: %v", err)
	}
	// A server-side dry run is validated by the API server and persists nothing.
	if _, err := env.Client.AppsV1().Deployments(ns).Patch(ctx, "healthcare-api", types.MergePatchType, patch, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("server-side dry run refused: %v", err)
	}
	d1, _ := admin.AppsV1().Deployments(ns).Get(ctx, "healthcare-api", metav1.GetOptions{})
	// The controllers update status (and the resourceVersion); the spec's generation must not move.
	if d1.Generation != d0.Generation || *d1.Spec.Replicas != 2 {
		t.Errorf("dry-run changed the Deployment: generation %d -> %d, replicas %d", d0.Generation, d1.Generation, *d1.Spec.Replicas)
	}

	lim := testLimits(time.Minute)
	lim.MaxRequests, lim.RollbackRequests = 10, 10
	env, _ = testEnv(t, cfg, ns, "app.kubernetes.io/name=healthcare-api", false, lim, Options{})
	var last error
	sent := 0
	for i := 0; i < 15 && last == nil; i++ {
		_, last = env.Client.AppsV1().Deployments(ns).Get(ctx, "healthcare-api", metav1.GetOptions{})
		if last == nil {
			sent++
		}
	}
	if sent != 10 || !errors.Is(last, ErrBudget) {
		t.Errorf("budget 10: %d requests went through, then %v", sent, last)
	}
	env.Guard.BeginRollback()
	if _, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "healthcare-api", metav1.GetOptions{}); err != nil {
		t.Errorf("the rollback's reserve is not available: %v", err)
	}
}
