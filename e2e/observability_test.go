package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/node"
)

// alertFor shortens the shipped `for:` durations through the stack's documented
// apps.monitoring.alertFor, so each alert is proven in about a minute instead of 5-10. The
// expressions (and their lookback windows) are the shipped ones.
var alertFor = map[string]string{
	"PodCrashLooping": "30s", "PostgresDown": "30s", "PersistentVolumeAlmostFull": "30s",
	"TooManyDBConnections": "30s", "APIHighErrorRate": "30s", "TargetDown": "30s",
}

// unprovenAlerts are the shipped alerts no fault here can raise, with the reason.
var unprovenAlerts = map[string]string{
	"NodeDown": "the embedded node is the only node: stopping its kubelet would also stop the Prometheus that must see it (promtool unit test only)",
}

// noDataQueries are dashboard queries that cannot return a series on the embedded node.
var noDataQueries = map[string]string{}

// webhook is the test's Alertmanager receiver on the node's bridge (pods cannot reach the
// host's loopback; docs/node.md).
type webhook struct {
	srv  *http.Server
	url  string
	mu   sync.Mutex
	seen map[string]map[string]bool // alertname -> status ("firing", "resolved") -> seen
}

func startWebhook(t *testing.T) *webhook {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(node.NodeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	w := &webhook{url: "http://" + l.Addr().String() + "/alerts", seen: map[string]map[string]bool{}}
	w.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []struct {
				Status string            `json:"status"`
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(body, &msg); err == nil {
			w.mu.Lock()
			for _, a := range msg.Alerts {
				n := a.Labels["alertname"]
				if w.seen[n] == nil {
					w.seen[n] = map[string]bool{}
				}
				w.seen[n][a.Status] = true
			}
			w.mu.Unlock()
		}
		rw.WriteHeader(http.StatusOK)
	})}
	go func() { _ = w.srv.Serve(l) }()
	t.Cleanup(func() { _ = w.srv.Close() })
	return w
}

func (w *webhook) got(alert, status string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[alert][status]
}

// promQuery returns the result vector of an instant query.
func promQuery(t *testing.T, prom, q string) ([]map[string]any, error) {
	t.Helper()
	code, out := httpDo(t, "GET", prom+"/api/v1/query?query="+url.QueryEscape(q), "")
	if code != 200 {
		return nil, fmt.Errorf("query %q: %d %s", q, code, out)
	}
	var r struct {
		Data struct {
			Result []map[string]any `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, err
	}
	return r.Data.Result, nil
}

// alertStates maps each alert in Prometheus's ALERTS to its state, firing winning over pending.
func alertStates(t *testing.T, prom string) map[string]string {
	t.Helper()
	res, err := promQuery(t, prom, "ALERTS")
	if err != nil {
		t.Logf("ALERTS: %v", err)
		return nil
	}
	out := map[string]string{}
	for _, r := range res {
		m, _ := r["metric"].(map[string]any)
		n, _ := m["alertname"].(string)
		st, _ := m["alertstate"].(string)
		if out[n] != "firing" {
			out[n] = st
		}
	}
	return out
}

// dashboardQueries reads every target expression of apps/dashboards with each $variable set to
// its default: "All" (.*) when the dashboard leaves current empty, as all three do.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "apps", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards (%v)", err)
	}
	varRE := regexp.MustCompile(`\$\{?([A-Za-z_]+)\}?`)
	out := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Templating struct {
				List []struct {
					Name    string `json:"name"`
					Current struct {
						Value any `json:"value"`
					} `json:"current"`
				} `json:"list"`
			} `json:"templating"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		defaults := map[string]string{}
		for _, v := range d.Templating.List {
			defaults[v.Name] = ".*"
			if s, ok := v.Current.Value.(string); ok && s != "" && s != "$__all" {
				defaults[v.Name] = regexp.QuoteMeta(s)
			}
		}
		for i, p := range d.Panels {
			for j, tg := range p.Targets {
				if tg.Expr == "" {
					continue
				}
				expr := varRE.ReplaceAllStringFunc(tg.Expr, func(m string) string {
					if v, ok := defaults[varRE.FindStringSubmatch(m)[1]]; ok {
						return v
					}
					return m
				})
				out[fmt.Sprintf("%s: %s (panel %d, target %d)", filepath.Base(f), p.Title, i, j)] = expr
			}
		}
	}
	return out
}

// checkDashboards runs every dashboard query against the live Prometheus.
func (s *nodeStack) checkDashboards(t *testing.T, prom string) {
	queries := dashboardQueries(t)
	names := make([]string, 0, len(queries))
	for n := range queries {
		names = append(names, n)
	}
	sort.Strings(names)
	withData := 0
	var empty []string
	eventually(t, 3*time.Minute, "every dashboard query has data", func() error {
		withData, empty = 0, nil
		for _, n := range names {
			res, err := promQuery(t, prom, queries[n])
			switch {
			case err != nil:
				empty = append(empty, n+": "+err.Error())
			case len(res) == 0:
				if _, ok := noDataQueries[n]; !ok {
					empty = append(empty, n+": "+queries[n])
				}
			default:
				withData++
			}
		}
		if len(empty) > 0 {
			return fmt.Errorf("%d of %d queries return no series:\n  %s", len(empty), len(names), strings.Join(empty, "\n  "))
		}
		return nil
	})
	t.Logf("dashboard queries with data: %d of %d (%d listed as impossible here)", withData, len(names), len(noDataQueries))
}

// kubectlExec runs a command in a pod, with stdin, and returns its output.
func (s *nodeStack) kubectlExec(ctx context.Context, ns, pod string, stdin io.Reader, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.kubectl, append([]string{"--kubeconfig", s.cp.KubeconfigPath(), "-n", ns, "exec", "-i", pod, "--"}, args...)...)
	cmd.Stdin = stdin
	return cmd
}

// psql runs one SQL statement as the superuser inside postgres-0 (password on stdin, never in
// arguments or logs).
func (s *nodeStack) psql(t *testing.T, db, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	script := "read -r PGPASSWORD; export PGPASSWORD; exec psql -h 127.0.0.1 -U postgres -d " + db + " -v ON_ERROR_STOP=1 -c \"$1\""
	cmd := s.kubectlExec(ctx, "database", "postgres-0", strings.NewReader(s.superuserPassword+"\n"), "sh", "-c", script, "sh", sql)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
}

// holdConnections opens n superuser connections from an api pod (asyncpg, already in its image)
// and holds them until the returned stop is called or 10 minutes pass.
const holdScript = `import asyncio, sys, asyncpg
pw = sys.stdin.readline().strip()
async def main():
    cs = [await asyncpg.connect(host="postgres.database.svc.cluster.local", user="postgres", password=pw, database="postgres") for _ in range(int(sys.argv[1]))]
    print("holding", len(cs), flush=True)
    await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, sys.stdin.read), 600)
asyncio.run(main())
`

func (s *nodeStack) holdConnections(t *testing.T, n int) (stop func()) {
	t.Helper()
	pod := s.readyPod(t, "healthcare", "app.kubernetes.io/name=healthcare-api")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 11*time.Minute)
	cmd := s.kubectlExec(ctx, "healthcare", pod, pr, "python3", "-c", holdScript, fmt.Sprint(n))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	_, _ = io.WriteString(pw, s.superuserPassword+"\n")
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return func() {
		_ = pw.Close()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cancel()
			<-done
		}
		cancel()
		t.Logf("connection holder: %s", strings.TrimSpace(out.String()))
	}
}

const alertsNS = "e2e-alerts"

// crashLoopRollout deploys a healthy Deployment, then rolls out a version whose process exits
// at once: the new ReplicaSet's pod crash-loops while the old one keeps serving.
func (s *nodeStack) crashLoopRollout(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	p := restrictedPod("flaky", s.refs["healthcare-api"], []string{"python3", "-c", "import time\ntime.sleep(3600)"})
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "flaky"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "flaky"}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "flaky"}}, Spec: p.Spec},
		},
	}
	if _, err := s.client.AppsV1().Deployments(alertsNS).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "flaky v1 available", func() error {
		d, err := s.client.AppsV1().Deployments(alertsNS).Get(ctx, "flaky", metav1.GetOptions{})
		if err != nil || d.Status.AvailableReplicas != 1 {
			return fmt.Errorf("not available (%v)", err)
		}
		return nil
	})
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"flaky","command":["python3","-c","raise SystemExit(3)"]}]}}}}`
	if _, err := s.client.AppsV1().Deployments(alertsNS).Patch(ctx, "flaky", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// oomLoop runs a pod that fills memory past its limit: the kernel kills it (OOMKilled) and the
// kubelet restarts it, again and again.
func (s *nodeStack) oomLoop(t *testing.T) {
	t.Helper()
	p := restrictedPod("hog", s.refs["healthcare-api"], []string{"python3", "-c", "import time\nx = b'x' * (256 << 20)\ntime.sleep(3600)"})
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("48Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("48Mi")},
	}
	if _, err := s.client.CoreV1().Pods(alertsNS).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// fillVolume binds a 16 MiB tmpfs as a local PersistentVolume, claims it, and fills it to
// about 94% from a pod; the returned function empties it again.
func (s *nodeStack) fillVolume(t *testing.T) (empty func()) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m,mode=0777", "e2e-pvc", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		// The pod first (the kubelet's bind mount goes with it), then the claim, the volume, ours.
		bg := context.Background()
		_ = s.client.CoreV1().Pods(alertsNS).Delete(bg, "filler", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		eventually(t, 2*time.Minute, "filler pod gone", func() error {
			if _, err := s.client.CoreV1().Pods(alertsNS).Get(bg, "filler", metav1.GetOptions{}); err == nil {
				return fmt.Errorf("still there")
			}
			return nil
		})
		_ = s.client.CoreV1().PersistentVolumeClaims(alertsNS).Delete(bg, "almost-full", metav1.DeleteOptions{})
		_ = s.client.CoreV1().PersistentVolumes().Delete(bg, "e2e-almost-full", metav1.DeleteOptions{})
		eventually(t, 2*time.Minute, "tmpfs unmounted", func() error {
			out, err := exec.Command("umount", dir).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v %s", err, out)
			}
			return nil
		})
	})
	class := "local-storage"
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-almost-full"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              class,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: alertsNS, Name: "almost-full"},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{s.node.Name()}}},
			}}}},
		},
	}
	if _, err := s.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.client.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "almost-full"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			VolumeName:       pv.Name,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")}},
		},
	}
	if _, err := s.client.CoreV1().PersistentVolumeClaims(alertsNS).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := restrictedPod("filler", s.refs["healthcare-api"], []string{"python3", "-c",
		"import time\nwith open('/data/fill', 'wb') as f:\n    f.write(b'x' * (15 << 20))\ntime.sleep(3600)"})
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}}}
	if _, err := s.client.CoreV1().Pods(alertsNS).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := s.kubectlExec(ctx, alertsNS, "filler", nil, "python3", "-c", "import os; os.remove('/data/fill')").CombinedOutput(); err != nil {
			t.Errorf("emptying the volume: %v %s", err, out)
		}
	}
}

// apiErrors breaks one table the api reads (as a bad migration would) and sends requests that
// need it until stop is called; /readyz stays green, so the api keeps its endpoints.
func (s *nodeStack) apiErrors(t *testing.T, api string) (stop func()) {
	t.Helper()
	code, out := httpDo(t, "POST", api+"/patients", `{"name":"Grace Hopper","birth_date":"1906-12-09"}`)
	var p struct {
		ID int `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &p); code != 201 || err != nil || p.ID == 0 {
		t.Fatalf("POST /patients: %d %s", code, out)
	}
	target := fmt.Sprintf("%s/patients/%d/appointments", api, p.ID)
	s.psql(t, "healthcare", "ALTER TABLE appointments RENAME TO appointments_broken")
	quit := make(chan struct{})
	done := make(chan int)
	go func() {
		errs := 0
		for {
			select {
			case <-quit:
				done <- errs
				return
			case <-time.After(250 * time.Millisecond):
			}
			if code, _ := httpDo(t, "GET", target, ""); code >= 500 {
				errs++
			}
		}
	}()
	return func() {
		close(quit)
		t.Logf("api answered %d requests with 5xx", <-done)
		s.psql(t, "healthcare", "ALTER TABLE appointments_broken RENAME TO appointments")
	}
}

func (s *nodeStack) scale(t *testing.T, kind, ns, name string, n int32) {
	t.Helper()
	ctx := context.Background()
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
	var err error
	if kind == "statefulset" {
		_, err = s.client.AppsV1().StatefulSets(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	} else {
		_, err = s.client.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// waitAlerts waits until every named alert is in Prometheus state want ("firing", or "" for
// gone) and, for firing and resolved, the webhook has received it in that status.
func (s *nodeStack) waitAlerts(t *testing.T, prom string, wh *webhook, names []string, want string, limit time.Duration) {
	t.Helper()
	begin := time.Now()
	eventually(t, limit, fmt.Sprintf("alerts %v %s", names, map[string]string{"firing": "firing and delivered", "": "resolved and delivered"}[want]), func() error {
		st := alertStates(t, prom)
		var off []string
		for _, n := range names {
			status := "resolved"
			if want == "firing" {
				status = "firing"
			}
			if st[n] != want || !wh.got(n, status) {
				off = append(off, fmt.Sprintf("%s (prometheus %q, webhook %s %v)", n, st[n], status, wh.got(n, status)))
			}
		}
		if len(off) > 0 {
			time.Sleep(4 * time.Second)
			return fmt.Errorf("%s; all alerts: %v", strings.Join(off, ", "), st)
		}
		return nil
	})
	t.Logf("%v %s after %.0fs", names, map[string]string{"firing": "firing and delivered", "": "resolved and delivered"}[want], time.Since(begin).Seconds())
}

// observability proves the monitoring of the local stack end to end on the real node.
func (s *nodeStack) observability(t *testing.T, api string) {
	prom := s.serviceURL(t, "monitoring", "prometheus")
	ctx := context.Background()

	t.Run("Prometheus scrapes kube-state-metrics, node-exporter, the kubelet and cAdvisor", func(t *testing.T) {
		eventually(t, 2*time.Minute, "every target up", func() error {
			res, err := promQuery(t, prom, "up")
			if err != nil {
				return err
			}
			up := map[string]string{}
			for _, r := range res {
				m, _ := r["metric"].(map[string]any)
				v, _ := r["value"].([]any)
				up[fmt.Sprint(m["job"])] = fmt.Sprint(v[1])
			}
			for _, job := range []string{"kube-state-metrics", "node-exporter", "kubelet", "cadvisor"} {
				if up[job] != "1" {
					return fmt.Errorf("job %s up=%q (all: %v)", job, up[job], up)
				}
			}
			return nil
		})
	})

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: alertsNS, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted"}}}
	if _, err := s.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.client.CoreV1().Namespaces().Delete(context.Background(), alertsNS, metav1.DeleteOptions{})
	})
	eventually(t, 30*time.Second, "default ServiceAccount in "+alertsNS, func() error {
		_, err := s.client.CoreV1().ServiceAccounts(alertsNS).Get(ctx, "default", metav1.GetOptions{})
		return err
	})

	proven := []string{}
	t.Run("crash loop, OOM kill, PVC almost full, connections near the limit and api errors fire and reach the webhook", func(t *testing.T) {
		s.crashLoopRollout(t)
		s.oomLoop(t)
		empty := s.fillVolume(t)
		stopConns := s.holdConnections(t, 78)
		stopErrors := s.apiErrors(t, api)
		// Every fault is undone whatever happens below, so the subtests after this one see a
		// healthy stack.
		undone := false
		undo := func() {
			if undone {
				return
			}
			undone = true
			stopErrors()
			stopConns()
			empty()
			if err := s.client.CoreV1().Pods(alertsNS).Delete(ctx, "hog", metav1.DeleteOptions{}); err != nil {
				t.Error(err)
			}
			// Roll the bad version back.
			patch := `{"spec":{"template":{"spec":{"containers":[{"name":"flaky","command":["python3","-c","import time\ntime.sleep(3600)"]}]}}}}`
			if _, err := s.client.AppsV1().Deployments(alertsNS).Patch(ctx, "flaky", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Error(err)
			}
		}
		defer undo()
		names := []string{"PodCrashLooping", "ContainerOOMKilled", "PersistentVolumeAlmostFull", "TooManyDBConnections", "APIHighErrorRate"}
		s.waitAlerts(t, prom, s.webhook, names, "firing", 5*time.Minute)
		proven = append(proven, names...)

		t.Run("every dashboard query returns a series", func(t *testing.T) { s.checkDashboards(t, prom) })
		undo()
	})

	t.Run("PostgreSQL down, then its exporter's target down, fire and reach the webhook", func(t *testing.T) {
		s.scale(t, "statefulset", "database", "postgres", 0)
		func() {
			defer s.scale(t, "statefulset", "database", "postgres", 1)
			// The exporter still answers, with pg_up 0.
			s.waitAlerts(t, prom, s.webhook, []string{"PostgresDown"}, "firing", 3*time.Minute)
			proven = append(proven, "PostgresDown")
			// The api replicas are scraped one by one even while unready, so the target that goes
			// is the exporter's: its Service loses its only endpoint.
			s.scale(t, "deployment", "database", "postgres-exporter", 0)
			defer s.scale(t, "deployment", "database", "postgres-exporter", 1)
			s.waitAlerts(t, prom, s.webhook, []string{"TargetDown"}, "firing", 3*time.Minute)
			proven = append(proven, "TargetDown")
		}()
		eventually(t, 3*time.Minute, "postgres and both api replicas Ready again", func() error {
			dep, err := s.client.AppsV1().Deployments("healthcare").Get(ctx, "healthcare-api", metav1.GetOptions{})
			if err != nil || dep.Status.ReadyReplicas != 2 {
				return fmt.Errorf("api not ready (%v)", err)
			}
			return nil
		})
	})

	t.Run("every proven alert resolves and the webhook hears it", func(t *testing.T) {
		if len(proven) == 0 {
			t.Skip("no alert fired")
		}
		// ContainerOOMKilled looks back 10 minutes and PodCrashLooping 5: that bounds this wait.
		s.waitAlerts(t, prom, s.webhook, proven, "", 12*time.Minute)
	})

	t.Run("every shipped alert is proven or listed with its reason", func(t *testing.T) {
		code, out := httpDo(t, "GET", prom+"/api/v1/rules?type=alert", "")
		if code != 200 {
			t.Fatalf("rules: %d %s", code, out)
		}
		var r struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name string `json:"name"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		done := map[string]bool{}
		for _, n := range proven {
			done[n] = true
		}
		total := 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				total++
				if _, listed := unprovenAlerts[rule.Name]; !done[rule.Name] && !listed {
					t.Errorf("alert %s was neither proven by a fault nor listed in unprovenAlerts", rule.Name)
				}
			}
		}
		t.Logf("alerts proven live: %d of %d (unproven, with reason: %v)", len(done), total, unprovenAlerts)
	})
}
