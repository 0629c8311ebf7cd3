package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/infralab/infralab/internal/testenv"
)

// postgresDownExpr is the apps layer's PostgresDown expression (apps/rules.go); the test shortens
// only its `for` so the run takes seconds.
const postgresDownExpr = `pg_up == 0 or absent(pg_up) == 1`

// startPrometheus runs the real Prometheus on loopback, scraping target every second with the
// PostgresDown rule, and returns its base URL.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	return startPrometheusWithRule(t, target, postgresDownExpr)
}

// startPrometheusWithRule is startPrometheus with another PostgresDown expression.
func startPrometheusWithRule(t *testing.T, target, expr string) string {
	t.Helper()
	bin := testenv.Tool(t, "prometheus")
	dir := t.TempDir()
	rules := fmt.Sprintf("groups:\n- name: infralab\n  rules:\n  - alert: PostgresDown\n    expr: %s\n    for: 3s\n    labels: {severity: critical}\n", expr)
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [%s]\nscrape_configs:\n- job_name: postgres\n  static_configs: [{targets: ['%s']}]\n",
		filepath.Join(dir, "rules.yml"), target)
	for name, body := range map[string]string{"rules.yml": rules, "prometheus.yml": cfg} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	log, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + addr
	waitUntil(t, 30*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

// postgresAlertFixture creates StatefulSet postgres (1 replica, made ready by the stand-in
// kubelet) in a fresh namespace, a stand-in for postgres_exporter on loopback that reports pg_up
// from the StatefulSet's ready replicas (no Postgres runs on this control plane), and the real
// Prometheus evaluating PostgresDown with expr (`for` 3s) against it; it returns the namespace and
// Prometheus's URL once the rule is loaded and quiet.
func postgresAlertFixture(ctx context.Context, t *testing.T, admin kubernetes.Interface, expr string) (string, string) {
	t.Helper()
	db := newNamespaces(t, admin, "database")[0]
	if _, err := admin.AppsV1().StatefulSets(db).Create(ctx, statefulSet(db, "postgres", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	standInKubelet(ctx, t, admin, []string{db}, nil)
	waitUntil(t, 30*time.Second, "postgres ready", func() bool {
		s, err := admin.AppsV1().StatefulSets(db).Get(ctx, "postgres", metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == 1
	})

	exporter := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := 0
		if s, err := admin.AppsV1().StatefulSets(db).Get(r.Context(), "postgres", metav1.GetOptions{}); err == nil && s.Status.ReadyReplicas > 0 {
			up = 1
		}
		fmt.Fprintf(w, "# TYPE pg_up gauge\npg_up %d\n", up)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = exporter.Serve(l) }()
	t.Cleanup(func() { exporter.Close() })
	promURL := startPrometheusWithRule(t, l.Addr().String(), expr)
	// Wait for the first scrape, so absent(pg_up) does not fire before the experiment starts.
	prom, _ := NewPrometheus(promURL)
	waitUntil(t, 30*time.Second, "rule loaded and quiet", func() bool {
		r, err := prom.AlertRule(ctx, "PostgresDown")
		return err == nil && r.State == "inactive"
	})
	return db, promURL
}

// TestPostgresAlertFiresOnRealPrometheus scales a real StatefulSet to 0 on the real API server;
// a stand-in for postgres_exporter on loopback reports pg_up from the StatefulSet's ready
// replicas (no Postgres runs on this control plane), and the real Prometheus evaluates the apps
// layer's PostgresDown expression.
func TestPostgresAlertFiresOnRealPrometheus(t *testing.T) {
	cfg, _ := realCluster(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, promURL := postgresAlertFixture(ctx, t, admin, postgresDownExpr)

	opts := Options{Target: "postgres", PrometheusURL: promURL, AlertName: "PostgresDown", AlertMargin: 20 * time.Second}
	lim := testLimits(90 * time.Second)
	env, out := testEnv(t, cfg, db, "app.kubernetes.io/name=postgres", false, lim, opts)
	res, err := Runner{Limits: lim}.Run(ctx, &PostgresAlert{}, env)
	t.Log(out.String())
	if err != nil || res.Outcome != OutcomeHeld || !res.RolledBack || res.SteadyStateAfter != "ok" {
		t.Fatalf("outcome %s, rolled back %v, steady state after %q, err %v", res.Outcome, res.RolledBack, res.SteadyStateAfter, err)
	}
	if f, _ := env.Measured("alert_for_seconds"); f != 3 {
		t.Errorf("alert_for_seconds = %v, want the rule's 3", f)
	}
	firing, _ := env.Measured("alert_firing_seconds")
	if firing < 3 || firing > 23 {
		t.Errorf("alert_firing_seconds = %v, want within [for, for+margin] = [3, 23]", firing)
	}
	for _, m := range []string{"postgres_downtime_seconds", "alert_resolved_seconds"} {
		if _, ok := env.Measured(m); !ok {
			t.Errorf("no %s", m)
		}
	}
	s, _ := admin.AppsV1().StatefulSets(db).Get(ctx, "postgres", metav1.GetOptions{})
	if *s.Spec.Replicas != 1 {
		t.Errorf("after rollback the StatefulSet has %d replicas, want 1", *s.Spec.Replicas)
	}
}

// TestPostgresAlertAbortsAtTheDowntimeCap runs against a broken rule (it compares pg_up with 2,
// so it never fires) with a margin far longer than --max-downtime: the run must not leave
// PostgreSQL down until for + margin, but abort at the cap and scale the StatefulSet back. A cap
// not longer than the rule's `for` is refused before anything changes.
func TestPostgresAlertAbortsAtTheDowntimeCap(t *testing.T) {
	cfg, _ := realCluster(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, promURL := postgresAlertFixture(ctx, t, admin, "pg_up == 2")

	opts := Options{Target: "postgres", PrometheusURL: promURL, AlertName: "PostgresDown", AlertMargin: 5 * time.Minute, MaxDowntime: 6 * time.Second}
	lim := testLimits(90 * time.Second)
	env, out := testEnv(t, cfg, db, "app.kubernetes.io/name=postgres", false, lim, opts)
	start := time.Now()
	res, err := Runner{Limits: lim}.Run(ctx, &PostgresAlert{}, env)
	t.Log(out.String())
	const reason = "without PostgresDown firing (--max-downtime 6s)"
	if err == nil || res.Outcome != OutcomeAborted || !strings.Contains(res.AbortReason, reason) {
		t.Fatalf("want an abort at the downtime cap, got outcome %s, reason %q, err %v", res.Outcome, res.AbortReason, err)
	}
	if !res.RolledBack || res.SteadyStateAfter != "ok" {
		t.Fatalf("rolled back %v (%s), steady state after %q", res.RolledBack, res.RollbackError, res.SteadyStateAfter)
	}
	if d := time.Since(start); d > 45*time.Second {
		t.Errorf("the run took %s; the cap is 6s", d)
	}
	s, _ := admin.AppsV1().StatefulSets(db).Get(ctx, "postgres", metav1.GetOptions{})
	if *s.Spec.Replicas != 1 || s.Status.ReadyReplicas != 1 {
		t.Errorf("after rollback the StatefulSet has %d replicas (%d ready), want 1", *s.Spec.Replicas, s.Status.ReadyReplicas)
	}
	if v, _ := env.Measured("alert_firing_seconds"); v != -1 {
		t.Errorf("alert_firing_seconds = %v, want -1 (never fired)", v)
	}
	if v, ok := env.Measured("postgres_downtime_seconds"); !ok || v < 6 {
		t.Errorf("postgres_downtime_seconds = %v (recorded %v), want >= the 6 s cap", v, ok)
	}
	if v, _ := env.Measured("max_downtime_seconds"); v != 6 {
		t.Errorf("max_downtime_seconds = %v, want 6", v)
	}
	assertAbortRecorded(t, res, reason)

	// A cap the rule's `for` (3s) cannot fit in: refuse before scaling anything.
	opts.MaxDowntime = 3 * time.Second
	env, _ = testEnv(t, cfg, db, "app.kubernetes.io/name=postgres", false, lim, opts)
	res, err = Runner{Limits: lim}.Run(ctx, &PostgresAlert{}, env)
	if err == nil || res.Outcome != OutcomeNoStart || !strings.Contains(res.SteadyStateBefore, "not shorter than --max-downtime 3s") || res.Mutations != 0 {
		t.Errorf("cap <= for: want a refusal with no change, got %s %q, %d mutations, %v", res.Outcome, res.SteadyStateBefore, res.Mutations, err)
	}
}
