package main

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// TestOOMKillHogIsScopedAndRemoved runs oom-kill on the real API server up to what needs a node:
// the api Service gets ready endpoints from the real EndpointSlice controller, the hog is created
// from the api's template in a namespace enforcing Pod Security "restricted" (so its copied
// securityContext must pass admission), it never runs (no kubelet), the run times out and the
// rollback deletes it. The OOM kill itself, exit 137 and the restart time need a real node
// (docs/chaos.md).
func TestOOMKillHogIsScopedAndRemoved(t *testing.T) {
	cfg, _ := realCluster(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hc := newNamespaces(t, admin, "healthcare")[0]
	ns, _ := admin.CoreV1().Namespaces().Get(ctx, hc, metav1.GetOptions{})
	ns.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	if _, err := admin.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := deployment(hc, "healthcare-api", map[string]string{"app.kubernetes.io/name": "healthcare-api"}, 0)
	d.Spec.Template.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(10001)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	c := &d.Spec.Template.Spec.Containers[0]
	c.SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}}
	c.Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
	if _, err := admin.AppsV1().Deployments(hc).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "healthcare-api", Namespace: hc}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app.kubernetes.io/name": "healthcare-api"}, Ports: []corev1.ServicePort{{Port: 8080}}}}
	if _, err := admin.CoreV1().Services(hc).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The EndpointSlice controller skips pods on unknown nodes: bind the api pods to a Node
	// object the way the scheduler would. The hog stays unbound, like a pod no node has taken.
	node := hc + "-worker"
	if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) })
	go func() {
		for ctx.Err() == nil {
			ps, _ := admin.CoreV1().Pods(hc).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=healthcare-api"})
			for _, p := range ps.Items {
				if p.Spec.NodeName == "" {
					_ = admin.CoreV1().Pods(hc).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name},
						Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{})
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	standInKubelet(ctx, t, admin, []string{hc}, imageIs(badImage))

	opts := Options{Target: "healthcare-api", Service: "healthcare-api", HogCommand: defaultHog}
	lim := testLimits(8 * time.Second)
	env, out := testEnv(t, cfg, hc, hogLabel+"=oom-kill", false, lim, opts)
	waitUntil(t, 60*time.Second, "2 ready endpoints", func() bool {
		n, err := (&OOMKill{}).readyEndpoints(ctx, env)
		return err == nil && n == 2
	})
	var created *corev1.Pod
	go func() {
		for ctx.Err() == nil && created == nil {
			if p, err := admin.CoreV1().Pods(hc).Get(ctx, "chaos-oom-kill", metav1.GetOptions{}); err == nil {
				created = p
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	res, err := Runner{Limits: lim}.Run(ctx, &OOMKill{}, env)
	t.Log(out.String())
	if err == nil || res.Outcome != OutcomeTimeout || !res.RolledBack {
		t.Fatalf("want a timeout (no node runs the hog) and a rollback, got %s, rolled back %v, %v", res.Outcome, res.RolledBack, err)
	}
	if created == nil {
		t.Fatal("the hog pod was never created")
	}
	hog := created.Spec.Containers[0]
	if created.Labels[hogLabel] != "oom-kill" || created.Labels["app.kubernetes.io/name"] != "" {
		t.Errorf("hog labels %v: it must carry the chaos label and nothing a Service selects", created.Labels)
	}
	if hog.Resources.Limits.Memory().String() != "256Mi" || hog.ReadinessProbe != nil || len(hog.Ports) != 0 || hog.SecurityContext == nil {
		t.Errorf("hog container: limit %s, probe %v, ports %v, securityContext %v", hog.Resources.Limits.Memory(), hog.ReadinessProbe, hog.Ports, hog.SecurityContext)
	}
	if _, err := admin.CoreV1().Pods(hc).Get(ctx, "chaos-oom-kill", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the rollback left the hog behind: %v", err)
	}

	// Without a memory limit the hog would eat the node: refuse before creating anything.
	d2, _ := admin.AppsV1().Deployments(hc).Get(ctx, "healthcare-api", metav1.GetOptions{})
	d2.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
	if _, err := admin.AppsV1().Deployments(hc).Update(ctx, d2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	env, _ = testEnv(t, cfg, hc, hogLabel+"=oom-kill", false, lim, opts)
	res, err = Runner{Limits: lim}.Run(ctx, &OOMKill{}, env)
	if err == nil || !strings.Contains(res.AbortReason, "no memory limit") || res.Mutations != 0 {
		t.Errorf("no memory limit: %s %q, %d mutations, %v", res.Outcome, res.AbortReason, res.Mutations, err)
	}
}
