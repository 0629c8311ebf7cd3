package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/infralab/infralab/cluster/hardening"
	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/controlplane"
)

// The control plane here runs with exactly the files the lab cluster's kubeadm bootstrap writes
// (package cluster/hardening), so these tests prove those files do what the CIS review expects.
func startHardened(t *testing.T) (*controlplane.ControlPlane, *kubernetes.Clientset) {
	t.Helper()
	for _, tool := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		testenv.Tool(t, tool)
	}
	h, err := controlplane.LabHardening()
	require.NoError(t, err)
	var log strings.Builder
	begin := time.Now()
	cp, err := controlplane.Start(context.Background(), controlplane.Options{Dir: t.TempDir(), Log: &log, Hardening: h})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cp.Stop()) })
	t.Logf("hardened control plane cold start: %.1fs\n%s", time.Since(begin).Seconds(), log.String())
	cfg, err := clientcmd.RESTConfigFromKubeConfig(cp.Kubeconfig())
	require.NoError(t, err)
	return cp, kubernetes.NewForConfigOrDie(cfg)
}

func TestHardenedControlPlane(t *testing.T) {
	cp, client := startHardened(t)
	ctx := context.Background()
	marker := "plaintext-" + randomHex(t)

	_, err := client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db-password"},
		StringData: map[string]string{"password": marker},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "plain"},
		Data:       map[string]string{"note": marker},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	t.Run("Secrets are encrypted in etcd", func(t *testing.T) {
		raw := etcdGet(t, cp, "/registry/secrets/default/db-password")
		assert.True(t, strings.HasPrefix(raw, hardening.EncryptedPrefix),
			"raw etcd value starts with %q, want %q", truncate(raw, 40), hardening.EncryptedPrefix)
		assert.NotContains(t, raw, marker, "the Secret's value is readable in etcd")
		// The same read shows a ConfigMap in clear, so the check above can tell the difference.
		assert.Contains(t, etcdGet(t, cp, "/registry/configmaps/default/plain"), marker)
		// And the API server still decrypts it for authorised clients.
		s, err := client.CoreV1().Secrets("default").Get(ctx, "db-password", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, marker, string(s.Data["password"]))
	})

	t.Run("audit log records requests without secret values", func(t *testing.T) {
		var log string
		require.Eventually(t, func() bool {
			data, _ := os.ReadFile(cp.AuditLogPath())
			log = string(data)
			return strings.Contains(log, `"resource":"secrets"`) && strings.Contains(log, `"name":"db-password"`)
		}, 15*time.Second, 200*time.Millisecond, "no audit event for the Secret in %s", cp.AuditLogPath())
		assert.Contains(t, log, `"verb":"create"`)
		assert.Contains(t, log, `"username":"infralab-admin"`)
		assert.NotContains(t, log, marker, "a Secret's value reached the audit log")
	})

	t.Run("Pod Security restricted is the default", func(t *testing.T) {
		ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "fresh-"},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		assert.Empty(t, ns.Labels["pod-security.kubernetes.io/enforce"], "the namespace must carry no Pod Security label")
		waitDefaultServiceAccount(t, client, ns.Name)

		_, err = client.CoreV1().Pods(ns.Name).Create(ctx, rootPod(), metav1.CreateOptions{})
		require.Error(t, err, "a root Pod was admitted in an unlabelled namespace")
		assert.True(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)
		assert.Contains(t, err.Error(), `violates PodSecurity "restricted:latest"`)

		// The same workload, hardened, is admitted: the default refuses root, not Pods.
		_, err = client.CoreV1().Pods(ns.Name).Create(ctx, hardenedPod(), metav1.CreateOptions{})
		assert.NoError(t, err)
	})

	t.Run("kube-system stays exempt for the CNI", func(t *testing.T) {
		_, err := client.CoreV1().Pods("kube-system").Create(ctx, rootPod(), metav1.CreateOptions{})
		assert.NoError(t, err)
	})

	// docs/hardening.md: anonymous requests are authenticated only on the health paths and the
	// cluster-info ConfigMap (kubeadm's token discovery); everything else is 401 before RBAC.
	t.Run("anonymous clients reach only health endpoints and cluster-info", func(t *testing.T) {
		anon := anonymousClient(t, cp)
		for path, want := range map[string]int{
			"/readyz": 200, "/livez": 200, "/healthz": 200,
			// Authenticated as system:anonymous, then refused by RBAC: this control plane has no
			// kubeadm role letting anonymous read it (a kubeadm cluster has, so discovery works there).
			"/api/v1/namespaces/kube-public/configmaps/cluster-info": 403,
			"/api/v1/namespaces":                        401,
			"/api/v1/namespaces/kube-public/configmaps": 401,
			"/version": 401,
		} {
			resp, err := anon.Get(cp.ServerURL() + path)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			assert.Equal(t, want, resp.StatusCode, "anonymous GET %s", path)
			if want == 403 {
				assert.Contains(t, string(body), `User \"system:anonymous\" cannot get resource \"configmaps\"`,
					"GET %s must be refused by RBAC, as system:anonymous", path)
			}
		}
	})
}

// etcdGet reads a raw key with etcdctl over mutual TLS, as an attacker with etcd access would.
func etcdGet(t *testing.T, cp *controlplane.ControlPlane, key string) string {
	t.Helper()
	ca, cert, keyFile := cp.EtcdClientTLS()
	cmd := exec.Command(testenv.Tool(t, "etcdctl"), "--endpoints", cp.EtcdEndpoint(),
		"--cacert", ca, "--cert", cert, "--key", keyFile, "get", key, "--print-value-only")
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.Output()
	require.NoError(t, err, "etcdctl get %s", key)
	require.NotEmpty(t, out, "etcd has no key %s", key)
	return string(out)
}

func waitDefaultServiceAccount(t *testing.T, client *kubernetes.Clientset, ns string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(context.Background(), "default", metav1.GetOptions{})
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "kube-controller-manager created no default ServiceAccount in %s", ns)
}

func rootPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "root-"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "busybox:1.36", Command: []string{"sleep", "3600"},
		}}},
	}
}

func hardenedPod() *corev1.Pod {
	no, yes, uid := false, true, int64(10001)
	p := rootPod()
	p.GenerateName = "hardened-"
	p.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot: &yes, RunAsUser: &uid,
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: &no,
		ReadOnlyRootFilesystem:   &yes,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	return p
}

func anonymousClient(t *testing.T, cp *controlplane.ControlPlane) *http.Client {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(cp.Kubeconfig())
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(cfg.TLSClientConfig.CAData))
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
