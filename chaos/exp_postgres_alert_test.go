package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	bin := testenv.Tool(t, "prometheus")
	dir := t.TempDir()
	rules := fmt.Sprintf("groups:\n- name: infralab\n  rules:\n  - alert: PostgresDown\n    expr: %s\n    for: 3s\n    labels: {severity: critical}\n", postgresDownExpr)
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

// TestPostgresAlertFiresOnRealPrometheus scales a real StatefulSet to 0 on the real API server;
// a stand-in for postgres_exporter on loopback reports pg_up from the StatefulSet's ready
// replicas (no Postgres runs on this control plane), and the real Prometheus evaluates the apps
// layer's PostgresDown expression.
func TestPostgresAlertFiresOnRealPrometheus(t *testing.T) {
	cfg, _ := realCluster(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	defer exporter.Close()
	promURL := startPrometheus(t, l.Addr().String())
	// Wait for the first scrape, so absent(pg_up) does not fire before the experiment starts.
	prom, _ := NewPrometheus(promURL)
	waitUntil(t, 30*time.Second, "rule loaded and quiet", func() bool {
		r, err := prom.AlertRule(ctx, "PostgresDown")
		return err == nil && r.State == "inactive"
	})

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
