package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/infralab/infralab/internal/memhog"
)

const (
	// oomWriterSlack is how far past the memory limit the writer goes before it gives up.
	oomWriterSlack = 64 << 20
	// oomWriterCap bounds the writer's own run time in seconds, whatever happens to its exec stream.
	oomWriterCap = 60
)

// OOMKill OOM-kills the container of one real replica of --target behind --service: it execs a
// memfd writer (internal/memhog) into one Ready pod, so the kernel kills the api process over the
// container's memory limit, and measures the kill (exit 137, OOMKilled, same pod, one restart),
// the time until the pod is Ready again, and the fewest ready endpoints of the Service meanwhile.
type OOMKill struct {
	checked        bool
	readyReplicas  int32
	readyBefore    int
	minReady       int
	zeroSince      time.Time
	ns, pod        string
	container      string
	uid            types.UID
	restartsBefore int32
	started        time.Time
	writer         *oomWriter
	killedAt       time.Time // when the kill was seen (the writer's exec ended, or the container's FinishedAt)
	restarted      bool      // the kill and the restart were recorded
	readyAt        time.Time
}

// oomWriter collects the writer's output and how its exec ended; the exec runs in a goroutine.
type oomWriter struct {
	mu    sync.Mutex
	out   bytes.Buffer
	done  bool
	err   error
	ended time.Time
}

func (w *oomWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}

func (w *oomWriter) state() (out string, done bool, err error, ended time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimSpace(w.out.String()), w.done, w.err, w.ended
}

func (*OOMKill) Name() string { return "oom-kill" }

func (*OOMKill) Hypothesis() string {
	return "An api replica's container over its memory limit is OOM-killed (exit 137) and restarted in the same pod " +
		"within ~10 s, while the multi-replica api Service keeps at least one ready endpoint."
}

func (*OOMKill) Defaults() Defaults {
	return Defaults{Namespaces: "healthcare", Selector: "app.kubernetes.io/name=healthcare-api", Target: "healthcare-api",
		Duration: 5 * time.Minute, Requests: 1000}
}

func (e *OOMKill) Plan(env *Env) []string {
	return []string{
		fmt.Sprintf("steady state: Deployment %s (within %s) has >= 2 ready replicas and a memory limit on its first container; "+
			"Service %s has >= 1 ready endpoint", env.Opts.Target, env.Scope, env.Opts.Service),
		fmt.Sprintf("inject: pick one Ready pod of %s; from then on the guard lets a change through to that pod only; exec (pods/exec) "+
			"into its first container a python3 writer that fills a memfd up to the memory limit + 64 MiB (at most %d s), "+
			"so the kernel's memcg OOM killer kills the container's largest process, the api itself", env.Opts.Target, oomWriterCap),
		fmt.Sprintf("observe: abort if Service %s has had no ready endpoint for %s or the writer fails; held when the container's "+
			"last state is OOMKilled with exit 137 in the same pod, its restart count went up by one, the pod is Ready again, "+
			"the Service has its ready endpoints back and never had fewer than 1", env.Opts.Service, unavailableGrace(env.Opts)),
		"rollback: nothing to change back: the restart of the killed container ends the writer and frees its memfd; " +
			"wait for the writer's exec to end (it also stops by itself at its size or time cap)",
	}
}

// victim picks the Ready pod of the Deployment the writer goes into: the first by name.
func (e *OOMKill) victim(ctx context.Context, env *Env) (*corev1.Pod, error) {
	d, err := scopedDeployment(ctx, env, env.Opts.Target)
	if err != nil {
		return nil, fmt.Errorf("--target: %w", err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	pods, err := scopedPods(ctx, env, sel.String())
	if err != nil {
		return nil, err
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	for i := range pods {
		p := &pods[i]
		if p.Namespace == d.Namespace && podReady(p) && len(p.Spec.Containers) > 0 && len(p.Status.ContainerStatuses) > 0 {
			return p, nil
		}
	}
	return nil, fmt.Errorf("Deployment %s/%s has no Ready pod within %s", d.Namespace, d.Name, env.Scope)
}

func (e *OOMKill) SteadyState(ctx context.Context, env *Env) error {
	n, found, err := serviceReadyEndpoints(ctx, env, env.Opts.Service)
	if err != nil {
		return err
	}
	if !found || n < 1 {
		return fmt.Errorf("Service %s has no ready endpoint in %v", env.Opts.Service, env.Scope.Namespaces)
	}
	d, err := scopedDeployment(ctx, env, env.Opts.Target)
	if err != nil {
		return fmt.Errorf("--target: %w", err)
	}
	if e.checked { // after the rollback: the Service and the Deployment are back where they were
		if d.Status.ReadyReplicas < e.readyReplicas {
			return fmt.Errorf("Deployment %s has %d ready replicas, %d before the run", d.Name, d.Status.ReadyReplicas, e.readyReplicas)
		}
		return nil
	}
	if d.Status.ReadyReplicas < 2 {
		return fmt.Errorf("Deployment %s/%s has %d ready replicas: refusing to OOM-kill one of fewer than 2", d.Namespace, d.Name, d.Status.ReadyReplicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Resources.Limits.Memory().IsZero() {
		return fmt.Errorf("Deployment %s/%s container %s has no memory limit: refusing to fill memory without one (it would be the node's)", d.Namespace, d.Name, c.Name)
	}
	e.checked, e.readyReplicas, e.readyBefore, e.minReady = true, d.Status.ReadyReplicas, n, n
	env.Record("ready_replicas_before", float64(d.Status.ReadyReplicas), "replicas", d.Name)
	env.Record("ready_endpoints_before", float64(n), "endpoints", env.Opts.Service)
	if env.DryRun {
		if p, err := e.victim(ctx, env); err == nil {
			env.Logf("dry-run", "would exec the writer into pod %s/%s, container %s (memory limit %s)", p.Namespace, p.Name, p.Spec.Containers[0].Name, p.Spec.Containers[0].Resources.Limits.Memory())
		} else {
			env.Logf("dry-run", "no pod to exec into: %v", err)
		}
	}
	return nil
}

func (e *OOMKill) Inject(ctx context.Context, env *Env) error {
	p, err := e.victim(ctx, env)
	if err != nil {
		return err
	}
	c := p.Spec.Containers[0]
	limit := c.Resources.Limits.Memory().Value()
	if limit == 0 {
		return fmt.Errorf("pod %s/%s container %s has no memory limit: refusing to fill memory without one", p.Namespace, p.Name, c.Name)
	}
	var restarts int32 = -1
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == c.Name {
			restarts = cs.RestartCount
		}
	}
	if restarts < 0 {
		return fmt.Errorf("pod %s/%s reports no status for container %s", p.Namespace, p.Name, c.Name)
	}
	// The blast radius shrinks to this one pod: any other change is refused from now on.
	env.Guard.AllowOnlyPod(p.Namespace, p.Name)
	e.ns, e.pod, e.container, e.uid, e.restartsBefore = p.Namespace, p.Name, c.Name, p.UID, restarts
	env.Record("memory_limit_bytes", float64(limit), "bytes", p.Name+"/"+c.Name)
	env.Record("restart_count_before", float64(restarts), "restarts", p.Name+"/"+c.Name)
	cmd := memhog.Command(limit+oomWriterSlack, oomWriterCap)
	e.writer = &oomWriter{}
	e.started = env.Now()
	env.Logf("inject", "exec the memfd writer into %s/%s container %s (uid %s, limit %s, restarts %d)", p.Namespace, p.Name, c.Name, p.UID, c.Resources.Limits.Memory(), restarts)
	go func(w *oomWriter) {
		err := execIn(ctx, env, p, c.Name, cmd, nil, w)
		w.mu.Lock()
		w.done, w.err, w.ended = true, err, env.Now()
		w.mu.Unlock()
	}(e.writer)
	return nil
}

func (e *OOMKill) Observe(ctx context.Context, env *Env) (Verdict, error) {
	n, _, err := serviceReadyEndpoints(ctx, env, env.Opts.Service)
	if err != nil {
		return Pending, err
	}
	now := env.Now()
	e.minReady = min(e.minReady, n)
	switch {
	case n > 0:
		e.zeroSince = time.Time{}
	case e.zeroSince.IsZero():
		e.zeroSince = now
		env.Logf("observe", "Service %s has no ready endpoint", env.Opts.Service)
	case now.Sub(e.zeroSince) >= unavailableGrace(env.Opts):
		env.Record("ready_endpoints_min", 0, "endpoints", env.Opts.Service)
		return Refuted, abortf("Service %s has had no ready endpoint for %s (--abort-after-unavailable)", env.Opts.Service, now.Sub(e.zeroSince).Round(time.Second))
	}

	out, done, werr, ended := e.writer.state()
	switch {
	case strings.Contains(out, "writer failed"):
		return Pending, abortf("the writer in %s/%s did not do its part: %s", e.ns, e.pod, out)
	case strings.Contains(out, "was not killed"):
		return Pending, abortf("the container of %s/%s was not OOM-killed: %s (swap can take the memfd's pages)", e.ns, e.pod, out)
	case done && !strings.Contains(out, "writing"):
		return Pending, abortf("the writer did not start in %s/%s: %v %s", e.ns, e.pod, werr, out)
	}

	p, err := env.Client.CoreV1().Pods(e.ns).Get(ctx, e.pod, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && p.UID != e.uid) {
		env.Logf("observe", "pod %s/%s was deleted or replaced, not restarted", e.ns, e.pod)
		return Refuted, nil
	}
	if err != nil {
		return Pending, err
	}
	var cs *corev1.ContainerStatus
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == e.container {
			cs = &p.Status.ContainerStatuses[i]
		}
	}
	if cs == nil || cs.RestartCount <= e.restartsBefore || cs.LastTerminationState.Terminated == nil {
		return Pending, nil
	}
	term := cs.LastTerminationState.Terminated
	if !e.restarted {
		e.restarted = true
		e.killedAt = term.FinishedAt.Time
		note := "from the writer's start to the container's FinishedAt (whole seconds)"
		if done {
			e.killedAt, note = ended, "from the writer's start to the end of its exec (the container died)"
		}
		env.Record("exit_code", float64(term.ExitCode), "", term.Reason)
		env.Record("restart_count_after", float64(cs.RestartCount), "restarts", fmt.Sprintf("before: %d", e.restartsBefore))
		env.Record("time_to_oom_seconds", e.killedAt.Sub(e.started).Seconds(), "s", note)
		env.Logf("observe", "%s/%s container %s ended %s (exit %d), restarts %d -> %d", e.ns, e.pod, e.container, term.Reason, term.ExitCode, e.restartsBefore, cs.RestartCount)
		if term.Reason != "OOMKilled" || term.ExitCode != 137 {
			env.Record("ready_endpoints_min", float64(e.minReady), "endpoints", env.Opts.Service)
			return Refuted, nil
		}
	}
	if cs.RestartCount != e.restartsBefore+1 {
		env.Logf("observe", "container %s restarted %d times, not once", e.container, cs.RestartCount-e.restartsBefore)
		env.Record("ready_endpoints_min", float64(e.minReady), "endpoints", env.Opts.Service)
		return Refuted, nil
	}
	if !podReady(p) {
		return Pending, nil
	}
	if e.readyAt.IsZero() {
		e.readyAt = now
		env.Record("restart_seconds", now.Sub(e.killedAt).Seconds(), "s", "from the kill to the pod Ready again, as seen by the polls (--interval)")
	}
	if n < e.readyBefore {
		return Pending, nil // the restarted replica is not back in the Service yet
	}
	env.Record("endpoints_restored_seconds", now.Sub(e.killedAt).Seconds(), "s", "from the kill to the Service's ready endpoints back at their count before")
	env.Record("ready_endpoints_min", float64(e.minReady), "endpoints", env.Opts.Service)
	if e.minReady < 1 {
		return Refuted, nil
	}
	return Held, nil
}

// Rollback has nothing to change back: the OOM kill restarted the container, which ended the
// writer and freed its memfd. It waits for the writer's exec to end and says how it ended.
func (e *OOMKill) Rollback(ctx context.Context, env *Env) error {
	if e.writer == nil {
		return nil
	}
	err := waitFor(ctx, 200*time.Millisecond, func() (bool, error) {
		_, done, _, _ := e.writer.state()
		return done, nil
	})
	out, _, werr, _ := e.writer.state()
	if err != nil {
		return fmt.Errorf("the writer's exec in %s/%s has not ended (%w); it stops by itself within %d s of its start, "+
			"or delete the pod: %s", e.ns, e.pod, err, oomWriterCap, out)
	}
	switch {
	case e.restarted:
		env.Logf("rollback", "nothing to undo: the container's restart ended the writer and freed its memfd")
	case !strings.Contains(out, "writing"):
		env.Logf("rollback", "nothing to undo: the writer never ran (%v)", werr)
	case errors.Is(werr, context.Canceled) || errors.Is(werr, context.DeadlineExceeded):
		env.Logf("rollback", "the writer's exec stream was closed before a kill; the writer stops by itself within %d s of its start", oomWriterCap)
	default:
		env.Logf("rollback", "nothing to undo: the writer ended by itself (%v): %s", werr, out)
	}
	return nil
}
