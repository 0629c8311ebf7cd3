package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// workload is a controller object of the stack and the Pods its controller must create.
type workload struct {
	kind, namespace, name string
	wantPods              int
}

// stateWorkloads lists the Deployments, StatefulSets and Jobs in the stack's state.
func stateWorkloads(t *testing.T, client *kubernetes.Clientset, state []stateResource) []workload {
	t.Helper()
	ctx := context.Background()
	var out []workload
	for _, r := range kubernetesObjects(state) {
		ns, name, _ := strings.Cut(r.ID, "/")
		switch r.Type {
		case "kubernetes:apps/v1:Deployment":
			d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, workload{"Deployment", ns, name, int(*d.Spec.Replicas)})
		case "kubernetes:apps/v1:StatefulSet":
			// OrderedReady: the controller creates pod 0 and waits for it to be Ready before the
			// next, which never happens without a kubelet.
			out = append(out, workload{"StatefulSet", ns, name, 1})
		case "kubernetes:batch/v1:Job":
			out = append(out, workload{"Job", ns, name, 1})
		}
	}
	return out
}

// checkWorkloadsAdmitted proves that every workload's Pods pass Pod Security admission in
// namespaces enforcing restricted: the controller-manager creates them (and, for Deployments,
// their ReplicaSets) and reports no FailedCreate. With no scheduler and no kubelet the Pods stay
// Pending and unbound; that they exist is what admission decides.
func checkWorkloadsAdmitted(t *testing.T, client *kubernetes.Clientset, state []stateResource) {
	ctx := context.Background()
	for _, ns := range localNamespaces {
		n, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("namespace %s enforces Pod Security %q, want restricted", ns, got)
		}
	}
	workloads := stateWorkloads(t, client, state)
	kinds := map[string]int{}
	for _, w := range workloads {
		kinds[w.kind]++
	}
	if kinds["Deployment"] < 3 || kinds["StatefulSet"] < 1 || kinds["Job"] < 1 {
		t.Fatalf("the state lacks workloads: %v (want the api, exporter and Prometheus Deployments, the Postgres StatefulSet, the roles Job)", kinds)
	}

	begin := time.Now()
	pending := map[string]string{}
	for time.Since(begin) < 90*time.Second {
		pending = map[string]string{}
		for _, w := range workloads {
			if msg := podsMissing(ctx, client, w); msg != "" {
				pending[w.kind+" "+w.namespace+"/"+w.name] = msg
			}
		}
		if len(pending) == 0 || len(failedCreates(t, client)) > 0 {
			break
		}
		time.Sleep(time.Second)
	}
	for w, msg := range pending {
		t.Errorf("%s: %s", w, msg)
	}
	for _, e := range failedCreates(t, client) {
		t.Errorf("FailedCreate on %s %s/%s: %s", e.InvolvedObject.Kind, e.Namespace, e.InvolvedObject.Name, e.Message)
	}

	total := 0
	for _, ns := range localNamespaces {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			total++
			if p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
				t.Errorf("pod %s/%s is %s on node %q; without a kubelet it must stay Pending and unbound", ns, p.Name, p.Status.Phase, p.Spec.NodeName)
			}
		}
	}
	t.Logf("%d workloads, %d Pods created by the controller-manager and admitted under restricted in %.1fs (all Pending: no kubelet)",
		len(workloads), total, time.Since(begin).Seconds())
}

// podsMissing returns why a workload does not yet have its Pods, or "".
func podsMissing(ctx context.Context, client *kubernetes.Clientset, w workload) string {
	owners := []types.UID{}
	switch w.kind {
	case "Deployment":
		d, err := client.AppsV1().Deployments(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		rss, err := client.AppsV1().ReplicaSets(w.namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		for _, rs := range rss.Items {
			if ownedBy(rs.OwnerReferences, d.UID) {
				owners = append(owners, rs.UID)
			}
		}
		if len(owners) == 0 {
			return "no ReplicaSet yet"
		}
	case "StatefulSet":
		s, err := client.AppsV1().StatefulSets(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		owners = append(owners, s.UID)
	case "Job":
		j, err := client.BatchV1().Jobs(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		owners = append(owners, j.UID)
	}
	pods, err := client.CoreV1().Pods(w.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	n := 0
	for _, p := range pods.Items {
		for _, o := range owners {
			if ownedBy(p.OwnerReferences, o) {
				n++
			}
		}
	}
	if n < w.wantPods {
		return fmt.Sprintf("%d of %d Pods created", n, w.wantPods)
	}
	return ""
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid && r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}

// failedCreates are the FailedCreate events in the stack's namespaces: a controller tried to
// create a Pod and admission (Pod Security, quota, ...) refused it.
func failedCreates(t *testing.T, client *kubernetes.Clientset) []corev1.Event {
	var out []corev1.Event
	for _, ns := range localNamespaces {
		evs, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=FailedCreate"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs.Items...)
	}
	return out
}
