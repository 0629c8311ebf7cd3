package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func statefulSet(ns, name string, replicas int32) *appsv1.StatefulSet {
	lbl := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "infralab"}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbl},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr(replicas), ServiceName: name,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "postgres", Image: "infralab.local/postgres:15.18-deb12"}}},
			},
		},
	}
}

// snapshot is every object's name, generation and labels in the namespaces: what a change moves.
func snapshot(t *testing.T, c kubernetes.Interface, nss ...string) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	for _, ns := range nss {
		ds, _ := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		for _, d := range ds.Items {
			lines = append(lines, fmt.Sprintf("deploy %s/%s gen=%d replicas=%d %v", ns, d.Name, d.Generation, *d.Spec.Replicas, d.Labels))
		}
		ss, _ := c.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
		for _, s := range ss.Items {
			lines = append(lines, fmt.Sprintf("sts %s/%s gen=%d replicas=%d", ns, s.Name, s.Generation, *s.Spec.Replicas))
		}
		ps, _ := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		for _, p := range ps.Items {
			lines = append(lines, fmt.Sprintf("pod %s/%s deleting=%v", ns, p.Name, p.DeletionTimestamp != nil))
		}
	}
	nodes, _ := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	for _, n := range nodes.Items {
		lines = append(lines, fmt.Sprintf("node %s unschedulable=%v", n.Name, n.Spec.Unschedulable))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestDryRunOfEveryExperimentChangesNothing(t *testing.T) {
	cfg, kubeconfig := realCluster(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	nss := newNamespaces(t, admin, "healthcare", "database")
	hc, db := nss[0], nss[1]
	api := deployment(hc, "healthcare-api", map[string]string{"app.kubernetes.io/name": "healthcare-api", "app.kubernetes.io/part-of": "infralab"}, 0)
	if _, err := admin.AppsV1().Deployments(hc).Create(ctx, api, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AppsV1().StatefulSets(db).Create(ctx, statefulSet(db, "postgres", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Let the controllers create their pods first, so only a dry run could change the snapshot.
	waitUntil(t, 30*time.Second, "3 pods", func() bool {
		a, _ := admin.CoreV1().Pods(hc).List(ctx, metav1.ListOptions{})
		b, _ := admin.CoreV1().Pods(db).List(ctx, metav1.ListOptions{})
		return len(a.Items)+len(b.Items) == 3
	})
	before := snapshot(t, admin, hc, db)
	out := t.TempDir()
	for exp, ns := range map[string]string{
		"bad-rollout": hc, "oom-kill": hc, "node-failure": hc + "," + db, "pg-migration": db, "postgres-alert": db,
	} {
		var stdout, stderr strings.Builder
		args := []string{exp, "--dry-run", "--kubeconfig", kubeconfig, "--namespace", ns, "--out", filepath.Join(out, exp),
			"--prometheus-url", "http://127.0.0.1:1"}
		if code := run(ctx, args, &stdout, &stderr); code != 0 {
			t.Errorf("%s --dry-run exited %d: %s", exp, code, stderr.String())
			continue
		}
		if !strings.Contains(stdout.String(), "[DRY RUN]") || !strings.Contains(stdout.String(), "1. ") {
			t.Errorf("%s --dry-run did not print its plan:\n%s", exp, stdout.String())
		}
		files, _ := filepath.Glob(filepath.Join(out, exp, exp+"-*", "measurements.json"))
		if len(files) != 1 {
			t.Fatalf("%s: want one measurements.json, got %v", exp, files)
		}
		var res Result
		b, _ := os.ReadFile(files[0])
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		if res.Outcome != OutcomeDryRun || res.Mutations != 0 || len(res.Plan) < 3 || res.Hypothesis == "" {
			t.Errorf("%s: outcome %s, %d mutations, %d plan steps", exp, res.Outcome, res.Mutations, len(res.Plan))
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(files[0]), "postmortem.md")); err != nil {
			t.Errorf("%s: no postmortem draft: %v", exp, err)
		}
	}
	if after := snapshot(t, admin, hc, db); after != before {
		t.Errorf("a dry run changed the cluster:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
