package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PGMigration copies PostgreSQL from a Deployment to a StatefulSet (pg_dump piped into psql,
// nothing written to disk) and checks with a per-table row count that no row was lost.
type PGMigration struct {
	ns, from, to   string
	targetReplicas int32
	scaled         bool
	before         map[string]int64
}

func (*PGMigration) Name() string { return "pg-migration" }

func (*PGMigration) Hypothesis() string {
	return "PostgreSQL moves from a Deployment to a StatefulSet with no data loss: every table has the same row count after the copy."
}

func (*PGMigration) Defaults() Defaults {
	return Defaults{Namespaces: "database", Selector: "app.kubernetes.io/name=postgres", Duration: 30 * time.Minute, Requests: 1500}
}

func splitRef(ref, kind string) (string, error) {
	k, name, ok := strings.Cut(ref, "/")
	if !ok || !strings.EqualFold(k, kind) || name == "" {
		return "", fmt.Errorf("want %s/NAME, got %q", strings.ToLower(kind), ref)
	}
	return name, nil
}

func (e *PGMigration) Plan(env *Env) []string {
	return []string{
		fmt.Sprintf("steady state: %s has a Ready pod and %s exists, both within %s", env.Opts.From, env.Opts.To, env.Scope),
		fmt.Sprintf("count the rows of every table of database %s in the source (psql over the pod's local socket as %s)", env.Opts.Database, env.Opts.DBUser),
		fmt.Sprintf("scale %s to 1 if it is at 0 and wait until its pod is Ready", env.Opts.To),
		"stream `pg_dump --clean --if-exists` from the source into `psql` in the target (no copy on disk)",
		"observe: count the rows in the target and again in the source; held when every table matches",
		fmt.Sprintf("rollback: scale %s back to its replicas; the source keeps serving. Cut-over is a runbook step (docs/runbooks/restore-postgresql.md)", env.Opts.To),
	}
}

func (e *PGMigration) SteadyState(ctx context.Context, env *Env) error {
	from, err := splitRef(env.Opts.From, "deployment")
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	to, err := splitRef(env.Opts.To, "statefulset")
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	d, err := scopedDeployment(ctx, env, from)
	if err != nil {
		return err
	}
	if d.Status.ReadyReplicas < 1 {
		return fmt.Errorf("Deployment %s/%s has no Ready pod", d.Namespace, d.Name)
	}
	s, err := scopedStatefulSet(ctx, env, to)
	if err != nil {
		return err
	}
	if e.before == nil {
		e.ns, e.from, e.to, e.targetReplicas = d.Namespace, from, to, deref(s.Spec.Replicas)
	}
	return nil
}

// countSQL counts every base table in one round trip; query_to_xml runs a query per table.
const countSQL = `SELECT table_schema || '.' || table_name, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`

func (e *PGMigration) psql(env *Env) []string {
	return []string{"psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", env.Opts.DBUser, "-d", env.Opts.Database}
}

func (e *PGMigration) count(ctx context.Context, env *Env, pod *corev1.Pod) (map[string]int64, error) {
	var out bytes.Buffer
	cmd := append(e.psql(env), "-A", "-t", "-F", "|", "-c", countSQL)
	if err := execIn(ctx, env, pod, "", cmd, nil, &out); err != nil {
		return nil, err
	}
	return parseCounts(out.String())
}

func parseCounts(s string) (map[string]int64, error) {
	counts := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		table, n, ok := strings.Cut(line, "|")
		v, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("unexpected psql output line %q", line)
		}
		counts[table] = v
	}
	return counts, nil
}

func (e *PGMigration) readyPod(ctx context.Context, env *Env, owner string) (*corev1.Pod, error) {
	pods, err := env.Client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: env.Scope.Selector.String()})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if podReady(p) && strings.HasPrefix(p.Name, owner+"-") {
			return p, nil
		}
	}
	return nil, nil
}

func (e *PGMigration) Inject(ctx context.Context, env *Env) error {
	src, err := e.readyPod(ctx, env, e.from)
	if err != nil || src == nil {
		return fmt.Errorf("no Ready pod of Deployment %s: %v", e.from, err)
	}
	if e.before, err = e.count(ctx, env, src); err != nil {
		return err
	}
	env.Record("tables", float64(len(e.before)), "tables", "")
	env.Record("rows_before", float64(sum(e.before)), "rows", "source, before the copy")
	if e.targetReplicas == 0 {
		if err := scaleStatefulSet(ctx, env, e.ns, e.to, 1); err != nil {
			return err
		}
		e.scaled = true
		env.Logf("inject", "StatefulSet %s scaled to 1; waiting for its pod", e.to)
	}
	var dst *corev1.Pod
	if err := waitFor(ctx, 2*time.Second, func() (bool, error) {
		p, err := e.readyPod(ctx, env, e.to)
		dst = p
		return p != nil, err
	}); err != nil {
		return err
	}
	start := env.Now()
	env.Logf("inject", "copying %s -> %s with pg_dump | psql", src.Name, dst.Name)
	pr, pw := io.Pipe()
	dumpErr := make(chan error, 1)
	go func() {
		err := execIn(ctx, env, src, "", []string{"pg_dump", "-U", env.Opts.DBUser, "--clean", "--if-exists", "--no-owner", env.Opts.Database}, nil, pw)
		pw.CloseWithError(err)
		dumpErr <- err
	}()
	if err := execIn(ctx, env, dst, "", e.psql(env), pr, io.Discard); err != nil {
		return err
	}
	if err := <-dumpErr; err != nil {
		return err
	}
	env.Record("copy_seconds", env.Now().Sub(start).Seconds(), "s", "pg_dump | psql")
	return nil
}

func (e *PGMigration) Observe(ctx context.Context, env *Env) (Verdict, error) {
	dst, err := e.readyPod(ctx, env, e.to)
	if err != nil || dst == nil {
		return Pending, abortf("the StatefulSet pod is no longer Ready: %v", err)
	}
	src, err := e.readyPod(ctx, env, e.from)
	if err != nil || src == nil {
		return Pending, abortf("the source pod is no longer Ready: %v", err)
	}
	after, err := e.count(ctx, env, dst)
	if err != nil {
		return Pending, err
	}
	now, err := e.count(ctx, env, src)
	if err != nil {
		return Pending, err
	}
	env.Record("rows_after", float64(sum(after)), "rows", "target, after the copy")
	var diff []string
	for _, t := range slices.Sorted(maps.Keys(now)) {
		if after[t] != now[t] {
			diff = append(diff, fmt.Sprintf("%s: source %d, target %d", t, now[t], after[t]))
		}
	}
	if len(diff) > 0 {
		env.Record("tables_mismatched", float64(len(diff)), "tables", strings.Join(diff, "; "))
		env.Logf("observe", "row counts differ (writes during the copy?): %s", strings.Join(diff, "; "))
		return Refuted, nil
	}
	env.Record("tables_mismatched", 0, "tables", "")
	return Held, nil
}

func (e *PGMigration) Rollback(ctx context.Context, env *Env) error {
	if !e.scaled {
		return nil
	}
	env.Logf("rollback", "scaling StatefulSet %s back to %d (its PVC and the copied data stay)", e.to, e.targetReplicas)
	return scaleStatefulSet(ctx, env, e.ns, e.to, e.targetReplicas)
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
