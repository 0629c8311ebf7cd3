package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PostgresAlert stops PostgreSQL (scales its StatefulSet to 0) and checks that the PostgresDown
// alert fires within its `for` window plus scrape and evaluation slack, then restores it.
type PostgresAlert struct {
	prom      *Prometheus
	ns        string
	replicas  int32
	forWindow time.Duration
	stopped   time.Time
	pending   bool
	maxDown   time.Duration
}

// maxDowntime is how long PostgreSQL may stay down without the alert firing before the run aborts.
func maxDowntime(o Options) time.Duration {
	if o.MaxDowntime > 0 {
		return o.MaxDowntime
	}
	return defaultMaxDowntime
}

func (*PostgresAlert) Name() string { return "postgres-alert" }

func (*PostgresAlert) Hypothesis() string {
	return "When PostgreSQL stops, the PostgresDown alert fires within its `for` window plus scrape and evaluation slack."
}

func (*PostgresAlert) Defaults() Defaults {
	return Defaults{Namespaces: "database", Selector: "app.kubernetes.io/name=postgres", Target: "postgres",
		Duration: 15 * time.Minute, Requests: 1500}
}

func (e *PostgresAlert) Plan(env *Env) []string {
	return []string{
		fmt.Sprintf("steady state: StatefulSet %s in %v has ready replicas; Prometheus at %s has rule %s and it is not firing", env.Opts.Target, env.Scope.Namespaces, env.Opts.PrometheusURL, env.Opts.AlertName),
		fmt.Sprintf("inject: scale StatefulSet %s to 0 (clients of the database fail until the rollback)", env.Opts.Target),
		fmt.Sprintf("observe: poll /api/v1/alerts; held when %s fires within its `for` + %s, refuted after that", env.Opts.AlertName, env.Opts.AlertMargin),
		fmt.Sprintf("abort if PostgreSQL has been down %s (--max-downtime) without %s firing; refuse to start when the rule's `for` is not shorter than that", maxDowntime(env.Opts), env.Opts.AlertName),
		fmt.Sprintf("rollback: scale the StatefulSet back to its replicas, wait until they are ready and %s has resolved; measure the downtime", env.Opts.AlertName),
	}
}

func (e *PostgresAlert) SteadyState(ctx context.Context, env *Env) error {
	if e.prom == nil {
		p, err := NewPrometheus(env.Opts.PrometheusURL)
		if err != nil {
			return err
		}
		e.prom = p
	}
	s, err := scopedStatefulSet(ctx, env, env.Opts.Target)
	if err != nil {
		return err
	}
	if s.Spec.Replicas == nil || *s.Spec.Replicas == 0 || s.Status.ReadyReplicas < *s.Spec.Replicas {
		return fmt.Errorf("StatefulSet %s/%s: %d of %d replicas ready", s.Namespace, s.Name, s.Status.ReadyReplicas, deref(s.Spec.Replicas))
	}
	rule, err := e.prom.AlertRule(ctx, env.Opts.AlertName)
	if err != nil {
		return err
	}
	alerts, err := e.prom.Alerts(ctx, env.Opts.AlertName)
	if err != nil {
		return err
	}
	for _, a := range alerts {
		if a.State == "firing" {
			return fmt.Errorf("%s is already firing (since %s): fix that before testing it", env.Opts.AlertName, a.ActiveAt)
		}
	}
	if e.stopped.IsZero() {
		e.ns, e.replicas = s.Namespace, *s.Spec.Replicas
		e.forWindow = time.Duration(rule.Duration * float64(time.Second))
		e.maxDown = maxDowntime(env.Opts)
		if e.forWindow >= e.maxDown {
			return fmt.Errorf("%s's `for` is %s, not shorter than --max-downtime %s: it could not fire before the abort; raise --max-downtime if that outage is acceptable",
				env.Opts.AlertName, e.forWindow, e.maxDown)
		}
		env.Record("alert_for_seconds", rule.Duration, "s", "the rule's `for`")
		env.Record("max_downtime_seconds", e.maxDown.Seconds(), "s", "abort when down this long without the alert firing")
	}
	return nil
}

func (e *PostgresAlert) Inject(ctx context.Context, env *Env) error {
	if err := e.scale(ctx, env, 0); err != nil {
		return err
	}
	e.stopped = env.Now()
	env.Logf("inject", "StatefulSet %s/%s scaled to 0", e.ns, env.Opts.Target)
	return nil
}

func (e *PostgresAlert) scale(ctx context.Context, env *Env, n int32) error {
	return scaleStatefulSet(ctx, env, e.ns, env.Opts.Target, n)
}

func (e *PostgresAlert) Observe(ctx context.Context, env *Env) (Verdict, error) {
	alerts, err := e.prom.Alerts(ctx, env.Opts.AlertName)
	if err != nil {
		return Pending, err
	}
	since := env.Now().Sub(e.stopped)
	for _, a := range alerts {
		switch a.State {
		case "pending":
			if !e.pending {
				e.pending = true
				env.Record("alert_pending_seconds", since.Seconds(), "s", "from stop to pending")
			}
		case "firing":
			env.Record("alert_firing_seconds", since.Seconds(), "s", "from stop to firing")
			return Held, nil
		}
	}
	if since >= e.maxDown {
		env.Record("alert_firing_seconds", -1, "s", fmt.Sprintf("not firing when the downtime cap %s was reached", e.maxDown))
		return Refuted, abortf("PostgreSQL has been down %s without %s firing (--max-downtime %s): scaling it back",
			since.Round(time.Second), env.Opts.AlertName, e.maxDown)
	}
	if since > e.forWindow+env.Opts.AlertMargin {
		env.Record("alert_firing_seconds", -1, "s", fmt.Sprintf("did not fire within %s", e.forWindow+env.Opts.AlertMargin))
		return Refuted, nil
	}
	return Pending, nil
}

func (e *PostgresAlert) Rollback(ctx context.Context, env *Env) error {
	if e.stopped.IsZero() {
		return nil
	}
	if err := e.scale(ctx, env, e.replicas); err != nil {
		return err
	}
	env.Logf("rollback", "scaled back to %d; waiting for ready replicas", e.replicas)
	err := waitFor(ctx, 2*time.Second, func() (bool, error) {
		s, err := env.Client.AppsV1().StatefulSets(e.ns).Get(ctx, env.Opts.Target, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return s.Status.ReadyReplicas >= e.replicas, nil
	})
	if err != nil {
		return err
	}
	ready := env.Now()
	env.Record("postgres_downtime_seconds", ready.Sub(e.stopped).Seconds(), "s", "from stop to ready again")
	// The alert resolves one scrape and one evaluation later; the rollback is done when it has.
	env.Logf("rollback", "waiting for %s to resolve", env.Opts.AlertName)
	err = waitFor(ctx, 2*time.Second, func() (bool, error) {
		alerts, err := e.prom.Alerts(ctx, env.Opts.AlertName)
		return err == nil && len(alerts) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%s still active after PostgreSQL is ready: %w", env.Opts.AlertName, err)
	}
	env.Record("alert_resolved_seconds", env.Now().Sub(ready).Seconds(), "s", "from ready to no alert")
	return nil
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
