package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/infralab/infralab/cluster/hardening"
	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/controlplane"
)

// The encryption key rotation (hardening.RotationSteps) on a real kube-apiserver and etcd: each
// step's EncryptionConfiguration is written where the API server reads it and the API server is
// restarted (a static pod restart on the lab's control plane); the rewrite step runs
// hardening.RewriteSecretsCommand with the real kubectl. Afterwards every Secret in etcd is
// stored with the new key, and the API server, now without the old key, still reads them all.
func TestEncryptionKeyRotationOnARealAPIServer(t *testing.T) {
	for _, tool := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		testenv.Tool(t, tool)
	}
	kubectl := testenv.Tool(t, "kubectl")
	oldKey := base64.StdEncoding.EncodeToString([]byte(randomHex(t) + randomHex(t)))
	newKey := base64.StdEncoding.EncodeToString([]byte(randomHex(t) + randomHex(t)))
	h, err := controlplane.LabHardening()
	require.NoError(t, err)
	h.EncryptionConfig, err = hardening.EncryptionConfig(oldKey)
	require.NoError(t, err)
	dir := t.TempDir()
	cp, err := controlplane.Start(context.Background(), controlplane.Options{Dir: dir, Hardening: h})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cp.Stop()) })
	cfg, err := clientcmd.RESTConfigFromKubeConfig(cp.Kubeconfig())
	require.NoError(t, err)
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	// Secrets in two namespaces, written with the old key.
	values := map[string]string{}
	for i, ns := range []string{"default", "kube-system"} {
		for j := 0; j < 3; j++ {
			name := fmt.Sprintf("rot-%d-%d", i, j)
			v := "value-" + randomHex(t)
			values[ns+"/"+name] = v
			_, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{"v": v}}, metav1.CreateOptions{})
			require.NoError(t, err)
		}
	}
	for k := range values {
		require.True(t, strings.HasPrefix(etcdGet(t, cp, "/registry/secrets/"+k), hardening.EncryptedPrefix), "%s before the rotation", k)
	}

	steps, err := hardening.RotationSteps(hardening.EncryptionKeyName, oldKey, "infralab-2", newKey)
	require.NoError(t, err)
	confPath := filepath.Join(dir, "hardening", "encryption-config.yaml")
	kubeconfig := cp.KubeconfigPath()
	for _, s := range steps {
		begin := time.Now()
		if s.RewriteSecrets {
			for attempt := 0; attempt < 2; attempt++ { // twice: the step is idempotent
				cmd := exec.Command("bash", "-o", "pipefail", "-c", hardening.RewriteSecretsCommand)
				cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+filepath.Dir(kubectl)+":"+os.Getenv("PATH"))
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s: %s", hardening.RewriteSecretsCommand, out)
			}
		} else {
			require.NoError(t, os.WriteFile(confPath, s.Config, 0o600))
			require.NoError(t, cp.StopAPIServer())
			require.NoError(t, cp.StartAPIServer(ctx))
		}
		t.Logf("step %s: %.1fs", s.Name, time.Since(begin).Seconds())
		if s.Name == "new-key-primary" {
			// Not rewritten yet: still stored with the old key, and readable.
			for k := range values {
				assert.True(t, strings.HasPrefix(etcdGet(t, cp, "/registry/secrets/"+k), hardening.EncryptedPrefix), "%s before the rewrite", k)
			}
		}
	}

	newPrefix := hardening.EncryptedPrefixFor("infralab-2")
	n := 0
	raw := etcdList(t, cp, "/registry/secrets/")
	for key, v := range raw {
		n++
		assert.True(t, strings.HasPrefix(v, newPrefix), "%s is stored as %q..., want %q", key, truncate(v, 32), newPrefix)
	}
	require.GreaterOrEqual(t, n, len(values), "every Secret in etcd was checked")
	for k, want := range values {
		ns, name, _ := strings.Cut(k, "/")
		s, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err, "%s unreadable after the old key was removed", k)
		assert.Equal(t, want, string(s.Data["v"]))
	}
	t.Logf("%d Secrets in etcd, all %s after the rotation; the API server without the old key reads them", n, newPrefix)
}

// etcdList reads every key under prefix, raw, with their values.
func etcdList(t *testing.T, cp *controlplane.ControlPlane, prefix string) map[string]string {
	t.Helper()
	ca, cert, keyFile := cp.EtcdClientTLS()
	cmd := exec.Command(testenv.Tool(t, "etcdctl"), "--endpoints", cp.EtcdEndpoint(),
		"--cacert", ca, "--cert", cert, "--key", keyFile, "get", prefix, "--prefix", "--keys-only")
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.Output()
	require.NoError(t, err, "etcdctl get --prefix %s", prefix)
	res := map[string]string{}
	for _, k := range strings.Fields(string(out)) {
		res[k] = etcdGet(t, cp, k)
	}
	return res
}
