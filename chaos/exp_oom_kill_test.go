package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// TestOOMKillExecsIntoOneReplicaOnly runs oom-kill on the real API server up to what needs a
// node: the api Service gets ready endpoints from the real EndpointSlice controller, the
// experiment picks one Ready replica, narrows the guard to that pod and sends the exec of the
// memfd writer there (the one change of the run). No kubelet runs it, so the API server answers
// the exec with an error, the writer never starts and the run aborts. Afterwards the guard
// refuses any change to the other replica or the Deployment. Fewer than 2 ready replicas and a
// template without a memory limit are refused with no change. The OOM kill itself, exit 137,
// the restart and the Service's endpoints meanwhile need a real node: the node e2e test
// (e2e/node_test.go) runs this experiment there.
func TestOOMKillExecsIntoOneReplicaOnly(t *testing.T) {
	cfg, _ := realCluster(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hc := newNamespaces(t, admin, "healthcare")[0]
	lbl := map[string]string{"app.kubernetes.io/name": "healthcare-api"}
	d := deployment(hc, "healthcare-api", lbl, 0)
	c := &d.Spec.Template.Spec.Containers[0]
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(8080)}}}
	c.Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
	if _, err := admin.AppsV1().Deployments(hc).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "healthcare-api", Namespace: hc}, Spec: corev1.ServiceSpec{
		Selector: lbl, Ports: []corev1.ServicePort{{Port: 8080}}}}
	if _, err := admin.CoreV1().Services(hc).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The EndpointSlice controller skips pods on unknown nodes: bind the api pods to a Node
	// object the way the scheduler would. The Node has no address, so no exec reaches a kubelet.
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
	standInKubelet(ctx, t, admin, []string{hc}, nil)
	readyReplicas := func(n int32) func() bool {
		return func() bool {
			d, err := admin.AppsV1().Deployments(hc).Get(ctx, "healthcare-api", metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == n && d.Status.Replicas == n
		}
	}
	waitUntil(t, 60*time.Second, "2 ready replicas", readyReplicas(2))

	opts := Options{Target: "healthcare-api", Service: "healthcare-api", AbortAfterUnavailable: time.Minute}
	lim := testLimits(20 * time.Second)
	env, out := testEnv(t, cfg, hc, "app.kubernetes.io/name=healthcare-api", false, lim, opts)
	waitUntil(t, 60*time.Second, "2 ready endpoints", func() bool {
		n, _, err := serviceReadyEndpoints(ctx, env, "healthcare-api")
		return err == nil && n == 2
	})
	pods, err := admin.CoreV1().Pods(hc).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=healthcare-api"})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("want 2 api pods: %v", err)
	}
	names := []string{pods.Items[0].Name, pods.Items[1].Name}
	slices.Sort(names)
	victim, other := names[0], names[1]

	res, err := Runner{Limits: lim}.Run(ctx, &OOMKill{}, env)
	t.Log(out.String())
	if err == nil || res.Outcome != OutcomeAborted || !res.RolledBack || !strings.Contains(res.AbortReason, "the writer did not start in "+hc+"/"+victim) {
		t.Fatalf("want an abort on the exec no kubelet answers, in %s, and a rollback: got %s %q, rolled back %v, %v",
			victim, res.Outcome, res.AbortReason, res.RolledBack, err)
	}
	if res.Mutations != 1 || len(res.Refused) != 0 {
		t.Errorf("want exactly one change (the exec into %s), got %d and refused %v", victim, res.Mutations, res.Refused)
	}
	want := map[string]float64{"ready_replicas_before": 2, "ready_endpoints_before": 2, "memory_limit_bytes": 256 << 20, "restart_count_before": 0}
	for name, v := range want {
		if got, ok := env.Measured(name); !ok || got != v {
			t.Errorf("%s = %v (recorded %v), want %v", name, got, ok, v)
		}
	}
	if _, ok := env.Measured("exit_code"); ok {
		t.Errorf("an exit code was recorded with no kill")
	}
	if !strings.Contains(out.String(), "exec the memfd writer into "+hc+"/"+victim) {
		t.Errorf("the timeline does not name the pod the writer went into")
	}

	// The guard now allows a change to the victim only, however in scope the rest is.
	refused := map[string]error{}
	refused["deleting the other replica"] = env.Client.CoreV1().Pods(hc).Delete(ctx, other, metav1.DeleteOptions{})
	_, refused["patching the Deployment"] = env.Client.AppsV1().Deployments(hc).Patch(ctx, "healthcare-api", types.MergePatchType,
		[]byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{})
	refused["exec into the other replica"] = execIn(ctx, env, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: hc, Name: other}}, "api", []string{"true"}, nil, &strings.Builder{})
	for what, err := range refused {
		// remotecommand flattens the error chain of an exec: match the guard's words.
		if !errors.Is(err, ErrRefused) && (err == nil || !strings.Contains(err.Error(), ErrRefused.Error())) {
			t.Errorf("%s after the pin: want the guard to refuse, got %v", what, err)
		}
	}
	if _, err := admin.CoreV1().Pods(hc).Get(ctx, other, metav1.GetOptions{}); err != nil {
		t.Errorf("the other replica: %v", err)
	}
	_, err = env.Client.CoreV1().Pods(hc).Patch(ctx, victim, types.MergePatchType, []byte(`{"metadata":{"annotations":{"x":"y"}}}`), metav1.PatchOptions{})
	if errors.Is(err, ErrRefused) {
		t.Errorf("a change to the pinned pod itself was refused: %v", err)
	}

	// Fewer than 2 ready replicas: killing one could leave none. Refused before any change.
	if _, err := admin.AppsV1().Deployments(hc).Patch(ctx, "healthcare-api", types.MergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "1 ready replica", readyReplicas(1))
	env, _ = testEnv(t, cfg, hc, "app.kubernetes.io/name=healthcare-api", false, lim, opts)
	res, err = Runner{Limits: lim}.Run(ctx, &OOMKill{}, env)
	if err == nil || res.Outcome != OutcomeNoStart || !strings.Contains(res.SteadyStateBefore, "fewer than 2") || res.Mutations != 0 {
		t.Errorf("1 ready replica: %s %q, %d mutations, %v", res.Outcome, res.SteadyStateBefore, res.Mutations, err)
	}

	// Without a memory limit the writer would fill the node's memory: refuse before any change.
	// Read-modify-write retried on a conflict: the Deployment controller writes its status
	// meanwhile, which moves the resourceVersion the update carries.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d2, err := admin.AppsV1().Deployments(hc).Get(ctx, "healthcare-api", metav1.GetOptions{})
		if err != nil {
			return err
		}
		d2.Spec.Replicas = ptr(int32(2))
		d2.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
		_, err = admin.AppsV1().Deployments(hc).Update(ctx, d2, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "2 ready replicas without a limit", readyReplicas(2))
	env, _ = testEnv(t, cfg, hc, "app.kubernetes.io/name=healthcare-api", false, lim, opts)
	res, err = Runner{Limits: lim}.Run(ctx, &OOMKill{}, env)
	if err == nil || res.Outcome != OutcomeNoStart || !strings.Contains(res.SteadyStateBefore, "no memory limit") || res.Mutations != 0 {
		t.Errorf("no memory limit: %s %q, %d mutations, %v", res.Outcome, res.SteadyStateBefore, res.Mutations, err)
	}
}
