package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The fixture e2e/testdata/broken: namespace e2e-broken with a Secret (plaintext stringData in
// the broken variant), a ConfigMap and a Deployment.
const (
	brokenNamespace = "e2e-broken"
	brokenApp       = "app"
	brokenSecret    = "app-db"
	brokenConfig    = "app-config"
)

// brokenViolations are the rules the broken variant trips and a piece of each message.
var brokenViolations = []struct{ rule, message string }{
	{"pod-run-as-non-root", "runAsNonRoot is false"},
	{"pod-run-as-user-group", "runAsUser is 0"},
	{"configmap-no-credentials", "ConfigMap key DB_PASSWORD looks like a credential"},
	{"env-credentials-from-secret", "env var DB_PASSWORD looks like a credential"},
}

// checkBrokenVariant deploys the fixture with a root container and a plaintext password against
// the same control plane: `pulumi up` with the pack must fail in its preview, naming each rule,
// and nothing may be written to the cluster. The clean variant of the same program then
// deploys, which shows the lookups below would have found the objects.
func checkBrokenVariant(t *testing.T, ls *localStack) {
	cli := ls.ws.project(t, filepath.Join(ls.root, "e2e", "testdata", "broken"), "broken", "")
	cli.setConfig(t, "kubeconfig", ls.cp.KubeconfigPath())
	cli.setConfig(t, "variant", "broken")
	auditFrom := auditLines(t, ls)
	out, took, err := cli.run(t, cli.stackArgs("up", "--policy-pack", ls.pack, "--policy-pack-config", ls.packConfig, "--yes")...)
	if err == nil {
		t.Fatal("pulumi up of the broken program succeeded")
	}
	for _, v := range brokenViolations {
		if !regexp.MustCompile(`\[mandatory\]\s+`+regexp.QuoteMeta(v.rule)+`\b`).MatchString(out) || !strings.Contains(out, v.message) {
			t.Errorf("the output lacks rule %s with %q", v.rule, v.message)
		}
	}
	t.Logf("the policy pack stopped the broken program in %.1fs", took.Seconds())

	ctx := context.Background()
	_, nsErr := ls.client.CoreV1().Namespaces().Get(ctx, brokenNamespace, metav1.GetOptions{})
	_, secErr := ls.client.CoreV1().Secrets(brokenNamespace).Get(ctx, brokenSecret, metav1.GetOptions{})
	_, cmErr := ls.client.CoreV1().ConfigMaps(brokenNamespace).Get(ctx, brokenConfig, metav1.GetOptions{})
	_, depErr := ls.client.AppsV1().Deployments(brokenNamespace).Get(ctx, brokenApp, metav1.GetOptions{})
	for what, err := range map[string]error{"namespace": nsErr, "Secret": secErr, "ConfigMap": cmErr, "Deployment": depErr} {
		if !apierrors.IsNotFound(err) {
			t.Errorf("the broken program's %s reached the cluster (err=%v)", what, err)
		}
	}
	// The audit log sees every request: none may have written one of the fixture's objects.
	writes, dryRuns := auditWrites(t, ls, auditFrom, brokenNamespace)
	for _, w := range writes {
		t.Errorf("the API server received a write for the broken program: %s", w)
	}
	t.Logf("audit log: %d writes, %d dry-run requests for namespace %s", len(writes), dryRuns, brokenNamespace)

	cli.setConfig(t, "variant", "clean")
	if _, _, err := cli.run(t, cli.stackArgs("up", "--policy-pack", ls.pack, "--policy-pack-config", ls.packConfig, "--yes", "--skip-preview")...); err != nil {
		t.Fatalf("the clean variant of the fixture failed: %v", err)
	}
	if _, err := ls.client.AppsV1().Deployments(brokenNamespace).Get(ctx, brokenApp, metav1.GetOptions{}); err != nil {
		t.Errorf("the clean variant's Deployment is not in the cluster: %v", err)
	}
	if _, err := ls.client.CoreV1().Secrets(brokenNamespace).Get(ctx, brokenSecret, metav1.GetOptions{}); err != nil {
		t.Errorf("the clean variant's Secret is not in the cluster: %v", err)
	}
	cli.must(t, cli.stackArgs("destroy", "--yes", "--skip-preview")...)
	waitNamespaceGone(t, ls, brokenNamespace, time.Minute)
}

func auditLines(t *testing.T, ls *localStack) int {
	t.Helper()
	data, err := os.ReadFile(ls.cp.AuditLogPath())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

// auditWrites lists the persisted (not dry-run) create/update/patch/delete requests for objects
// in namespace ns (or the namespace itself) after line `from` of the audit log, and counts the
// dry runs.
func auditWrites(t *testing.T, ls *localStack, from int, ns string) (writes []string, dryRuns int) {
	t.Helper()
	// The API server flushes audit events in batches; give it a moment.
	time.Sleep(2 * time.Second)
	f, err := os.Open(ls.cp.AuditLogPath())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 0; sc.Scan(); line++ {
		if line < from {
			continue
		}
		var ev struct {
			Verb       string `json:"verb"`
			RequestURI string `json:"requestURI"`
			ObjectRef  struct {
				Resource, Namespace, Name string
			} `json:"objectRef"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		ref := ev.ObjectRef
		if ref.Namespace != ns && !(ref.Resource == "namespaces" && ref.Name == ns) {
			continue
		}
		switch ev.Verb {
		case "create", "update", "patch", "delete", "deletecollection":
		default:
			continue
		}
		if strings.Contains(ev.RequestURI, "dryRun=All") {
			dryRuns++
			continue
		}
		writes = append(writes, ev.Verb+" "+ev.RequestURI)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return writes, dryRuns
}

func waitNamespaceGone(t *testing.T, ls *localStack, ns string, limit time.Duration) {
	t.Helper()
	begin := time.Now()
	for {
		_, err := ls.client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Since(begin) > limit {
			t.Fatalf("namespace %s is still there %v after destroy (err=%v)", ns, limit, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
