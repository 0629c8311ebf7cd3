package main

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// BadRollout rolls out an image that never becomes ready and checks that the old pods keep
// serving, that the stall shows in the Deployment's conditions, and rolls back.
type BadRollout struct {
	ns               string
	original         *corev1.PodTemplateSpec
	originalDeadline *int32
	baseline         int32
	injected         time.Time
	minAvail         int32
}

func (*BadRollout) Name() string { return "bad-rollout" }

func (*BadRollout) Hypothesis() string {
	return "A rollout whose pods never become ready leaves every old pod serving (maxUnavailable 0); " +
		"the Deployment reports Progressing=False/ProgressDeadlineExceeded and a rollback restores it."
}

func (*BadRollout) Defaults() Defaults {
	return Defaults{Namespaces: "healthcare", Selector: "app.kubernetes.io/name=healthcare-api", Target: "healthcare-api",
		Duration: 15 * time.Minute, Requests: 2000}
}

func (e *BadRollout) Plan(env *Env) []string {
	deadline := "the Deployment's own progressDeadlineSeconds"
	if env.Opts.ProgressDeadline > 0 {
		deadline = fmt.Sprintf("progressDeadlineSeconds %d (restored on rollback)", env.Opts.ProgressDeadline)
	}
	return []string{
		fmt.Sprintf("steady state: Deployment %s in %v is Available with >= %d ready replicas", env.Opts.Target, env.Scope.Namespaces, env.Opts.MinAvailable),
		fmt.Sprintf("inject: set every container image to %s, with %s", env.Opts.BadImage, deadline),
		fmt.Sprintf("observe: abort if available replicas fall below the steady-state count or %d; held when Progressing=False/ProgressDeadlineExceeded", env.Opts.MinAvailable),
		"rollback: restore the original pod template and progressDeadlineSeconds (what `kubectl rollout undo` does)",
	}
}

func (e *BadRollout) SteadyState(ctx context.Context, env *Env) error {
	d, err := scopedDeployment(ctx, env, env.Opts.Target)
	if err != nil {
		return err
	}
	if d.Spec.Strategy.RollingUpdate != nil && d.Spec.Strategy.RollingUpdate.MaxUnavailable != nil &&
		d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		env.Logf("steady-state", "note: maxUnavailable is %s, not 0: the hypothesis is expected to fail", d.Spec.Strategy.RollingUpdate.MaxUnavailable)
	}
	if d.Status.AvailableReplicas < int32(env.Opts.MinAvailable) {
		return fmt.Errorf("Deployment %s/%s has %d available replicas, want >= %d", d.Namespace, d.Name, d.Status.AvailableReplicas, env.Opts.MinAvailable)
	}
	if e.original == nil { // before inject
		e.ns, e.baseline = d.Namespace, d.Status.AvailableReplicas
		e.minAvail = max(e.baseline, int32(env.Opts.MinAvailable))
		env.Record("available_replicas_before", float64(d.Status.AvailableReplicas), "replicas", "")
	}
	return nil
}

func (e *BadRollout) Inject(ctx context.Context, env *Env) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := scopedDeployment(ctx, env, env.Opts.Target)
		if err != nil {
			return err
		}
		if e.original == nil {
			e.original = d.Spec.Template.DeepCopy()
			e.originalDeadline = d.Spec.ProgressDeadlineSeconds
		}
		for i := range d.Spec.Template.Spec.Containers {
			d.Spec.Template.Spec.Containers[i].Image = env.Opts.BadImage
		}
		if env.Opts.ProgressDeadline > 0 {
			d.Spec.ProgressDeadlineSeconds = ptr(env.Opts.ProgressDeadline)
		}
		if _, err := env.Client.AppsV1().Deployments(d.Namespace).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			return err
		}
		e.injected = env.Now()
		env.Logf("inject", "Deployment %s/%s now rolls out %s", d.Namespace, d.Name, env.Opts.BadImage)
		return nil
	})
}

func (e *BadRollout) Observe(ctx context.Context, env *Env) (Verdict, error) {
	d, err := scopedDeployment(ctx, env, env.Opts.Target)
	if err != nil {
		return Pending, err
	}
	if d.Status.AvailableReplicas < e.minAvail {
		env.Record("available_replicas_min", float64(d.Status.AvailableReplicas), "replicas", "below steady state")
		return Refuted, abortf("available replicas fell to %d (steady state %d): the bad rollout took serving pods away", d.Status.AvailableReplicas, e.minAvail)
	}
	if stalled, msg := rolloutStalled(d); stalled && d.Status.ObservedGeneration >= d.Generation {
		env.Record("stall_detected_seconds", env.Now().Sub(e.injected).Seconds(), "s", "from inject to ProgressDeadlineExceeded")
		env.Record("available_replicas_during", float64(d.Status.AvailableReplicas), "replicas", "")
		env.Logf("observe", "rollout stalled: %s", msg)
		return Held, nil
	}
	return Pending, nil
}

func (e *BadRollout) Rollback(ctx context.Context, env *Env) error {
	if e.original == nil {
		return nil // nothing was changed
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := env.Client.AppsV1().Deployments(e.ns).Get(ctx, env.Opts.Target, metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Spec.Template = *e.original.DeepCopy()
		d.Spec.ProgressDeadlineSeconds = e.originalDeadline
		_, err = env.Client.AppsV1().Deployments(e.ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return err
	}
	env.Logf("rollback", "original pod template restored; waiting for the bad ReplicaSet to scale to 0")
	return waitFor(ctx, 2*time.Second, func() (bool, error) {
		d, err := env.Client.AppsV1().Deployments(e.ns).Get(ctx, env.Opts.Target, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas <= d.Status.Replicas &&
			badReplicaSetsGone(ctx, env, d, env.Opts.BadImage), nil
	})
}

// badReplicaSetsGone reports whether no ReplicaSet of d running image still has replicas.
func badReplicaSetsGone(ctx context.Context, env *Env, d *appsv1.Deployment, image string) bool {
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	l, err := env.Client.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return false
	}
	for _, rs := range l.Items {
		for _, c := range rs.Spec.Template.Spec.Containers {
			if c.Image == image && rs.Spec.Replicas != nil && *rs.Spec.Replicas > 0 {
				return false
			}
		}
	}
	return true
}

// waitFor polls cond every interval until it is true, it fails, or ctx ends.
func waitFor(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
