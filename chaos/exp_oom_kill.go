package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// defaultHog allocates 8 MiB at a time until the kernel kills it; the api image ships Python.
const defaultHog = `["python3", "-c", "b = []\nwhile True: b.append(bytearray(8 << 20))"]`

// hogLabel marks the memory hog; it is the experiment's default selector, so the hog is the only
// thing it may create or delete, and no Service selects it.
const hogLabel = "infralab.dev/chaos"

// OOMKill runs a memory hog cloned from the api's pod template (same image, securityContext and
// memory limit), measures the OOM kill (exit 137) and restart time, and checks the api Service
// keeps a ready endpoint.
type OOMKill struct {
	ns       string
	pod      string
	created  time.Time
	minReady int
}

func (*OOMKill) Name() string { return "oom-kill" }

func (*OOMKill) Hypothesis() string {
	return "A container over its memory limit is OOM-killed (exit 137) and restarted within ~10 s, while the " +
		"multi-replica api Service keeps at least one ready endpoint."
}

func (*OOMKill) Defaults() Defaults {
	return Defaults{Namespaces: "healthcare", Selector: hogLabel + "=oom-kill", Target: "healthcare-api", Duration: 10 * time.Minute, Requests: 1000}
}

func (e *OOMKill) Plan(env *Env) []string {
	return []string{
		fmt.Sprintf("steady state: Service %s has >= 1 ready endpoint; Deployment %s has a memory limit", env.Opts.Service, env.Opts.Target),
		fmt.Sprintf("inject: create pod chaos-oom-kill labelled %s=oom-kill from %s's pod template (probes and ports removed), running %s", hogLabel, env.Opts.Target, env.Opts.HogCommand),
		"observe: abort if the Service has no ready endpoint; held when the hog's last state is OOMKilled with exit 137 and it runs again",
		"rollback: delete the hog pod",
	}
}

func (e *OOMKill) readyEndpoints(ctx context.Context, env *Env) (int, error) {
	ns := env.Scope.Namespaces[0]
	l, err := env.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + env.Opts.Service})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range l.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				n++
			}
		}
	}
	return n, nil
}

func (e *OOMKill) SteadyState(ctx context.Context, env *Env) error {
	n, err := e.readyEndpoints(ctx, env)
	if err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("Service %s has no ready endpoint", env.Opts.Service)
	}
	if e.pod == "" {
		e.minReady = n
		env.Record("ready_endpoints_before", float64(n), "endpoints", "")
	}
	return nil
}

// hogPod builds the hog from the target's pod template; it refuses a template without a memory
// limit, because then the hog would eat the node instead of its cgroup.
func (e *OOMKill) hogPod(ctx context.Context, env *Env) (*corev1.Pod, error) {
	ns := env.Scope.Namespaces[0]
	d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, env.Opts.Target, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("--target: %w", err)
	}
	var cmd []string
	if err := json.Unmarshal([]byte(env.Opts.HogCommand), &cmd); err != nil || len(cmd) == 0 {
		return nil, fmt.Errorf(`--hog-command: want a JSON array such as ["python3", "-c", "..."]: %v`, err)
	}
	spec := d.Spec.Template.Spec.DeepCopy()
	c := spec.Containers[0]
	if c.Resources.Limits.Memory().IsZero() {
		return nil, fmt.Errorf("Deployment %s/%s container %s has no memory limit: refusing to run a memory hog without one", ns, d.Name, c.Name)
	}
	c.Name, c.Command, c.Args = "hog", cmd, nil
	c.LivenessProbe, c.ReadinessProbe, c.StartupProbe, c.Ports, c.Lifecycle = nil, nil, nil, nil, nil
	spec.Containers = []corev1.Container{c}
	spec.InitContainers = nil
	spec.RestartPolicy = corev1.RestartPolicyAlways
	spec.AutomountServiceAccountToken = ptr(false)
	spec.TerminationGracePeriodSeconds = ptr(int64(1))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "chaos-oom-kill", Namespace: ns, Labels: map[string]string{hogLabel: "oom-kill"}},
		Spec:       *spec,
	}, nil
}

func (e *OOMKill) Inject(ctx context.Context, env *Env) error {
	p, err := e.hogPod(ctx, env)
	if err != nil {
		return err
	}
	if err := env.Scope.Check("Pod", p); err != nil {
		return err
	}
	limit := p.Spec.Containers[0].Resources.Limits.Memory()
	env.Record("memory_limit_bytes", float64(limit.Value()), "bytes", "")
	if _, err := env.Client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return err
	}
	e.ns, e.pod, e.created = p.Namespace, p.Name, env.Now()
	env.Logf("inject", "created %s/%s (limit %s)", p.Namespace, p.Name, limit)
	return nil
}

func (e *OOMKill) Observe(ctx context.Context, env *Env) (Verdict, error) {
	n, err := e.readyEndpoints(ctx, env)
	if err != nil {
		return Pending, err
	}
	e.minReady = min(e.minReady, n)
	if n == 0 {
		env.Record("ready_endpoints_min", 0, "endpoints", "")
		return Refuted, abortf("Service %s lost every ready endpoint", env.Opts.Service)
	}
	p, err := env.Client.CoreV1().Pods(e.ns).Get(ctx, e.pod, metav1.GetOptions{})
	if err != nil {
		return Pending, err
	}
	for _, cs := range p.Status.ContainerStatuses {
		t := cs.LastTerminationState.Terminated
		if t == nil || cs.State.Running == nil {
			continue
		}
		env.Record("exit_code", float64(t.ExitCode), "", t.Reason)
		env.Record("time_to_oom_seconds", t.FinishedAt.Sub(e.created).Seconds(), "s", "from create to the kill")
		restart := math.Max(0, cs.State.Running.StartedAt.Sub(t.FinishedAt.Time).Seconds())
		env.Record("restart_seconds", restart, "s", "from the kill to running again")
		env.Record("ready_endpoints_min", float64(e.minReady), "endpoints", "")
		if t.Reason == "OOMKilled" && t.ExitCode == 137 {
			return Held, nil
		}
		env.Logf("observe", "the hog ended with %s (exit %d), not an OOM kill", t.Reason, t.ExitCode)
		return Refuted, nil
	}
	return Pending, nil
}

func (e *OOMKill) Rollback(ctx context.Context, env *Env) error {
	if e.pod == "" {
		return nil
	}
	err := env.Client.CoreV1().Pods(e.ns).Delete(ctx, e.pod, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	env.Logf("rollback", "deleted %s/%s", e.ns, e.pod)
	return waitFor(ctx, time.Second, func() (bool, error) {
		_, err := env.Client.CoreV1().Pods(e.ns).Get(ctx, e.pod, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}
