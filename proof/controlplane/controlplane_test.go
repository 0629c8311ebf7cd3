package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/infralab/infralab/internal/testenv"

	"github.com/infralab/infralab/internal/proc"
)

// requireBinaries skips (or fails under INFRALAB_REQUIRE_TOOLS=1) without the real binaries.
func requireBinaries(t *testing.T) {
	t.Helper()
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		testenv.Tool(t, name)
	}
}

func TestStartServesAPIAndStopEndsProcesses(t *testing.T) {
	requireBinaries(t)
	var log strings.Builder
	begin := time.Now()
	cp, err := Start(context.Background(), Options{Dir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	t.Logf("cold start (no hardening): %.1fs\n%s", time.Since(begin).Seconds(), log.String())

	cfg, err := clientcmd.RESTConfigFromKubeConfig(cp.Kubeconfig())
	if err != nil {
		t.Fatalf("kubeconfig does not parse: %v", err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("default ServiceAccount: %v", err)
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.GitVersion, "v1.") {
		t.Errorf("server version %q", v.GitVersion)
	}
	onDisk, err := os.ReadFile(cp.KubeconfigPath())
	if err != nil || string(onDisk) != string(cp.Kubeconfig()) {
		t.Errorf("KubeconfigPath does not hold Kubeconfig(): %v", err)
	}
	if st, _ := os.Stat(cp.KubeconfigPath()); st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600 (it holds a client key)", st.Mode().Perm())
	}

	// Anonymous requests must be refused: the admin certificate is the only way in.
	anon := *cfg
	anon.TLSClientConfig.CertData, anon.TLSClientConfig.KeyData = nil, nil
	if _, err := kubernetes.NewForConfigOrDie(&anon).CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("an anonymous client could list namespaces")
	}

	// A fault a test can inject: the API server goes away and comes back with the data intact.
	_, err = client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "survives"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.StopAPIServer(); err != nil {
		t.Fatalf("StopAPIServer: %v", err)
	}
	if _, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("the API answered after StopAPIServer")
	}
	if err := cp.Err(); err != nil {
		t.Errorf("Err() reports the deliberately stopped API server: %v", err)
	}
	restart := time.Now()
	if err := cp.StartAPIServer(ctx); err != nil {
		t.Fatalf("StartAPIServer: %v", err)
	}
	t.Logf("API server restart: %.1fs", time.Since(restart).Seconds())
	if cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, "survives", metav1.GetOptions{}); err != nil || cm.Data["k"] != "v" {
		t.Errorf("ConfigMap after restart: %v %v", cm, err)
	}

	pids := cp.Pids()
	if len(pids) != 3 {
		t.Fatalf("Pids() = %v, want etcd, kube-apiserver, kube-controller-manager", pids)
	}
	if err := cp.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("%s (pid %d) still runs after Stop", name, pid)
		}
	}
}

func TestFailingComponentErrorQuotesItsLog(t *testing.T) {
	requireBinaries(t)
	dir := t.TempDir()
	_, err := Start(context.Background(), Options{
		Dir:       dir,
		Hardening: &Hardening{EncryptionConfig: []byte("kind: NotAnEncryptionConfiguration\n")},
		Timeout:   time.Minute,
	})
	if err == nil {
		t.Fatal("Start succeeded with a broken encryption config")
	}
	msg := err.Error()
	t.Logf("error (as users see it):\n%s", msg)
	for _, want := range []string{"kube-apiserver", "exited", filepath.Join(dir, "logs", "kube-apiserver.log"), "encryption"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		opts Options
		want string
	}{
		"no dir":        {Options{}, "Options.Dir is empty"},
		"non-empty dir": {Options{Dir: full}, "is not empty"},
		"no binaries":   {Options{Dir: t.TempDir(), BinDir: t.TempDir()}, "run `make tools`"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if tt.want == "run `make tools`" {
				// Only meaningful when the tools are not also on PATH.
				t.Setenv("PATH", t.TempDir())
			}
			_, err := Start(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestAPIServerArgsDropFlagsOfAbsentFiles(t *testing.T) {
	p := &pki{}
	args, err := apiServerArgs(t.TempDir(), p, 6443, "https://127.0.0.1:2379", &Hardening{AuditPolicy: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"--audit-policy-file=", "--audit-log-maxage=", "--anonymous-auth=false", "--authorization-mode=Node,RBAC", "--endpoint-reconciler-type=none"} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %s", want)
		}
	}
	for _, unwanted := range []string{"--encryption-provider-config", "--authentication-config", "--admission-control-config-file"} {
		if strings.Contains(joined, unwanted) {
			t.Errorf("args carry %s although its file is absent", unwanted)
		}
	}
	seen := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if seen[name] {
			t.Errorf("flag %s given twice", name)
		}
		seen[name] = true
	}
}

func TestPortRaceIsRetriedWithNewPorts(t *testing.T) {
	var log strings.Builder
	s := &starter{cp: &ControlPlane{dir: t.TempDir(), paused: map[string]bool{}}, log: &log, begin: time.Now()}
	logs := t.TempDir()
	var seen [][]int
	err := s.withFreePorts(2, func(ports []int) (*process, error) {
		seen = append(seen, ports)
		if len(seen) > 1 {
			return nil, nil
		}
		// What etcd prints when another process took its port between freePorts and bind.
		p, err := proc.Start("etcd", "/bin/sh", []string{"-c", "echo 'listen tcp 127.0.0.1:1: bind: address already in use' >&2; exit 1"}, logs, nil)
		if err != nil {
			return nil, err
		}
		<-p.Done()
		return p, p.ExitError()
	})
	if err != nil {
		t.Fatalf("withFreePorts: %v", err)
	}
	if len(seen) != 2 {
		t.Fatalf("start ran %d times, want 2 (one retry)", len(seen))
	}
	if !strings.Contains(log.String(), "retrying with new ports") {
		t.Errorf("the retry is not reported: %q", log.String())
	}

	// Any other failure is returned at once.
	calls := 0
	err = s.withFreePorts(1, func([]int) (*process, error) {
		calls++
		p, err := proc.Start("etcd", "/bin/sh", []string{"-c", "echo 'bad flag' >&2; exit 2"}, t.TempDir(), nil)
		if err != nil {
			return nil, err
		}
		<-p.Done()
		return p, p.ExitError()
	})
	if err == nil || calls != 1 || !strings.Contains(err.Error(), "bad flag") {
		t.Errorf("other failures: calls=%d err=%v, want one call and the log quoted", calls, err)
	}
}
