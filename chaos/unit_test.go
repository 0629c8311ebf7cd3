package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }

func TestHelpListsTheFiveExperiments(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"--help"}, &out, &errOut); code != 0 {
		t.Fatalf("--help exited %d: %s", code, errOut.String())
	}
	for _, name := range []string{"bad-rollout", "node-failure", "pg-migration", "oom-kill", "postgres-alert", "--dry-run", "--namespace", "--selector"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("--help does not mention %s", name)
		}
	}
}

func TestCLIRejectsBadInputBeforeTouchingTheCluster(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"nope"}, []string{`unknown experiment "nope"`, "bad-rollout"}},
		{[]string{"bad-rollout", "--namespace", "kube-system"}, []string{`--namespace: refusing "kube-system"`}},
		{[]string{"oom-kill", "--namespace", "healthcare,*", "--interval", "10ms", "--max-requests", "5"},
			[]string{`--namespace: "*" would be cluster-wide`, "--interval: 10ms is below 1s", "--max-requests: 5"}},
		{[]string{"bad-rollout", "--progress-deadline", "0"}, []string{"progress-deadline", "[1, 3600]"}},
		{[]string{"node-failure", "--abort-after-unavailable", "0s"}, []string{"--abort-after-unavailable: 0s must be positive"}},
		{[]string{"postgres-alert", "--max-downtime", "-1m"}, []string{"--max-downtime: -1m0s must be positive"}},
		// No kubeconfig anywhere: the error says where it looked.
		{[]string{"bad-rollout", "--kubeconfig", "/nonexistent/kubeconfig"}, []string{"--kubeconfig"}},
	} {
		var out, errOut strings.Builder
		code := run(context.Background(), tc.args, &out, &errOut)
		if code == 0 {
			t.Errorf("%v: exit 0", tc.args)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut.String(), w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, errOut.String())
			}
		}
	}
}

func TestParseScope(t *testing.T) {
	s, err := ParseScope("healthcare, database", "app.kubernetes.io/part-of=infralab")
	if err != nil || len(s.Namespaces) != 2 || !s.HasNamespace("database") || s.HasNamespace("default") {
		t.Fatalf("valid scope: %+v, %v", s, err)
	}
	for _, tc := range []struct{ ns, sel, want string }{
		{"kube-system", "a=b", "system namespaces"},
		{"kube-flannel", "a=b", "system namespaces"},
		{"", "a=b", "at least one namespace"},
		{"all", "a=b", "cluster-wide"},
		{"healthcare", "", "empty selector matches everything"},
		{"healthcare", "a==b==c", "--selector"},
	} {
		if _, err := ParseScope(tc.ns, tc.sel); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseScope(%q, %q) = %v, want %q", tc.ns, tc.sel, err, tc.want)
		}
	}
}

func TestParseAPIPath(t *testing.T) {
	for path, want := range map[string]apiPath{
		"/api/v1/namespaces/db/pods/pg-0/exec":                    {namespace: "db", resource: "pods", name: "pg-0", sub: "exec", prefix: "/api/v1"},
		"/apis/apps/v1/namespaces/hc/deployments":                 {namespace: "hc", resource: "deployments", prefix: "/apis/apps/v1"},
		"/apis/apps/v1/namespaces/db/statefulsets/postgres/scale": {namespace: "db", resource: "statefulsets", name: "postgres", sub: "scale", prefix: "/apis/apps/v1"},
		"/api/v1/namespaces/hc":                                   {resource: "namespaces", name: "hc", prefix: "/api/v1"},
		"/api/v1/nodes/worker-1":                                  {resource: "nodes", name: "worker-1", prefix: "/api/v1"},
	} {
		got, ok := parseAPIPath(path)
		if !ok || got != want {
			t.Errorf("parseAPIPath(%q) = %+v, %v; want %+v", path, got, ok, want)
		}
	}
	if _, ok := parseAPIPath("/healthz"); ok {
		t.Error("/healthz parsed as a resource path")
	}
}

// scripted is an Experiment whose phases do what a test tells them, to drive the runner alone.
type scripted struct {
	injectErr   error
	observe     func(n int) (Verdict, error)
	n           int
	rolledBack  bool
	rollbackCtx error
}

func (*scripted) Name() string                            { return "scripted" }
func (*scripted) Hypothesis() string                      { return "the runner always rolls back" }
func (*scripted) Plan(*Env) []string                      { return []string{"step"} }
func (*scripted) SteadyState(context.Context, *Env) error { return nil }
func (s *scripted) Inject(context.Context, *Env) error    { return s.injectErr }
func (s *scripted) Rollback(ctx context.Context, _ *Env) error {
	s.rolledBack, s.rollbackCtx = true, ctx.Err()
	return nil
}
func (s *scripted) Observe(context.Context, *Env) (Verdict, error) {
	s.n++
	return s.observe(s.n)
}

// unitEnv is an Env for runner tests: the runner itself makes no API calls and the scripted
// experiment none either, so the client points at a closed port and is never used.
func unitEnv(t *testing.T) *Env {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	scope, _ := ParseScope("healthcare", "a=b")
	guarded, g := NewGuard(cfg, scope, false, testLimits(time.Minute))
	return &Env{Client: kubernetes.NewForConfigOrDie(guarded), Scope: scope, Guard: g, Out: &strings.Builder{}, Now: time.Now}
}

func TestRunnerRollsBackOnEveryEnding(t *testing.T) {
	lim := Limits{Duration: 3 * time.Second, RollbackTimeout: time.Second, Interval: time.Second, MaxRequests: 10, RollbackRequests: 10}
	for _, tc := range []struct {
		name    string
		exp     *scripted
		outcome Outcome
		wantErr bool
	}{
		{"held", &scripted{observe: func(n int) (Verdict, error) { return map[bool]Verdict{true: Held}[n == 2], nil }}, OutcomeHeld, false},
		{"refuted", &scripted{observe: func(int) (Verdict, error) { return Refuted, nil }}, OutcomeRefuted, false},
		{"abort", &scripted{observe: func(int) (Verdict, error) { return Pending, abortf("error rate 50%%") }}, OutcomeAborted, true},
		{"inject fails", &scripted{injectErr: errors.New("boom")}, OutcomeAborted, true},
		{"timeout", &scripted{observe: func(int) (Verdict, error) { return Pending, nil }}, OutcomeTimeout, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res, err := Runner{Limits: lim}.Run(context.Background(), tc.exp, unitEnv(t))
			if (err != nil) != tc.wantErr || res.Outcome != tc.outcome {
				t.Fatalf("outcome %s err %v; want %s (error %v)", res.Outcome, err, tc.outcome, tc.wantErr)
			}
			if !tc.exp.rolledBack || !res.RolledBack || tc.exp.rollbackCtx != nil {
				t.Errorf("rollback ran %v (ctx err %v)", tc.exp.rolledBack, tc.exp.rollbackCtx)
			}
			if d := time.Since(start); d > lim.Duration+2*time.Second {
				t.Errorf("run took %s, beyond its %s limit", d, lim.Duration)
			}
		})
	}
}

func TestRunnerRollsBackAfterCancel(t *testing.T) {
	// ^C cancels the run; the rollback must still get a live context.
	lim := Limits{Duration: time.Minute, RollbackTimeout: time.Second, Interval: time.Second, MaxRequests: 10, RollbackRequests: 10}
	ctx, cancel := context.WithCancel(context.Background())
	exp := &scripted{observe: func(int) (Verdict, error) { cancel(); return Pending, nil }}
	res, err := Runner{Limits: lim}.Run(ctx, exp, unitEnv(t))
	if err == nil || !exp.rolledBack || exp.rollbackCtx != nil || !res.RolledBack {
		t.Fatalf("cancelled run: err %v, rolled back %v (ctx err %v)", err, exp.rolledBack, exp.rollbackCtx)
	}
}

func TestPostmortemDraftCarriesTheRun(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	r := &Result{
		Experiment: "oom-kill", Hypothesis: "restarts within ~10 s", Scope: "namespaces healthcare, selector x=y",
		Plan: []string{"exec the memfd writer into one api pod", "wait for its restart"}, Started: at, Ended: at.Add(42 * time.Second),
		Outcome: OutcomeHeld, SteadyStateBefore: "ok", SteadyStateAfter: "ok", RolledBack: true, Requests: 17, Mutations: 1,
		Measurements: []Measurement{{Name: "restart_seconds", Value: 9.5, Unit: "s", Note: "from the kill"}},
		Timeline:     []Event{{At: at.Add(time.Second), Phase: "inject", Message: "exec into healthcare-api-0"}},
	}
	md, err := RenderPostmortem(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Postmortem (draft): oom-kill", "**HYPOTHESIS-HELD**", "| Duration | 42s |", "restarts within ~10 s",
		"1. exec the memfd writer into one api pod", "| 2026-11-25 10:00:01Z | inject | exec into healthcare-api-0 |",
		"| restart_seconds | 9.5 | s | from the kill |", "## Root cause", "## What we change because of it", "17 (1 changes",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("postmortem lacks %q:\n%s", want, md)
		}
	}
	dir, err := r.Write(t.TempDir())
	if err != nil || !strings.HasSuffix(dir, "oom-kill-20261125T100000Z") {
		t.Fatalf("Write: %s, %v", dir, err)
	}
}

func TestPGMigrationParsesRowCountsAndRefs(t *testing.T) {
	got, err := parseCounts("public.patients|1200\npublic.visits|0\n")
	if err != nil || got["public.patients"] != 1200 || got["public.visits"] != 0 || len(got) != 2 || sum(got) != 1200 {
		t.Fatalf("parseCounts = %v, %v", got, err)
	}
	if _, err := parseCounts("ERROR: relation does not exist"); err == nil {
		t.Error("psql error text parsed as counts")
	}
	if n, err := splitRef("statefulset/postgres", "statefulset"); err != nil || n != "postgres" {
		t.Errorf("splitRef: %q %v", n, err)
	}
	if _, err := splitRef("deployment/postgres", "statefulset"); err == nil {
		t.Error("--to deployment/postgres accepted as a StatefulSet")
	}
}
