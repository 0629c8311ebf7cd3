package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/infralab/infralab/internal/testenv"
)

func testCAPEM(t *testing.T, isCA bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestImageRepositoryIsValidatedWithFieldPaths(t *testing.T) {
	for _, c := range []struct{ repo, ca, want string }{
		{"https://10.77.0.1:5000/k8s", "", "cluster.imageRepository: "},
		{"10.77.0.1:5000", "", "cluster.imageRepository: "}, // a path is needed: kubeadm appends /<name>
		{"Registry.example/K8s", "", "cluster.imageRepository: "},
		{"", testCAPEM(t, true), "cluster.imageRepositoryCa: is set without imageRepository"},
		{"10.77.0.1:5000/k8s", "not pem", "cluster.imageRepositoryCa: "},
		{"10.77.0.1:5000/k8s", testCAPEM(t, false), "is not a CA certificate"},
	} {
		a := testArgs()
		a.ImageRepository, a.ImageRepositoryCA = c.repo, c.ca
		err := a.Validate()
		require.Error(t, err, c.repo)
		assert.Contains(t, err.Error(), c.want, c.repo)
	}
	a := testArgs()
	a.ImageRepository, a.ImageRepositoryCA = "10.77.0.1:5000/k8s", testCAPEM(t, true)
	assert.NoError(t, a.Validate())
}

// Unset, nothing changes: no imageRepository in the kubeadm config, registry.k8s.io's pause, no
// registry inputs on prepare-node. Set, kubeadm and containerd's pinned sandbox both use it and
// every node's prepare-node gets the host and the CA.
func TestImageRepositoryReachesKubeadmAndPrepareNode(t *testing.T) {
	cfg, err := KubeadmConfig(testArgs())
	require.NoError(t, err)
	assert.NotContains(t, string(cfg), "imageRepository")
	r := run(t, testArgs(), Scripts())
	for _, n := range testArgs().nodes() {
		create := r.m.get(t, "lab-prepare-node-"+n.Name).args.Inputs["create"].StringValue()
		assert.Contains(t, create, "SANDBOX_IMAGE="+shellQuote("registry.k8s.io/pause:3.10.1"))
		assert.NotContains(t, create, "IMAGE_REGISTRY_HOST=")
	}

	a := testArgs()
	ca := testCAPEM(t, true)
	a.ImageRepository, a.ImageRepositoryCA = "10.77.0.1:5000/k8s", ca
	cfg, err = KubeadmConfig(a)
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "imageRepository: 10.77.0.1:5000/k8s\n")
	r = run(t, a, Scripts())
	for _, n := range a.nodes() {
		create := r.m.get(t, "lab-prepare-node-"+n.Name).args.Inputs["create"].StringValue()
		assert.Contains(t, create, "SANDBOX_IMAGE="+shellQuote("10.77.0.1:5000/k8s/pause:3.10.1"), n.Name)
		assert.Contains(t, create, "IMAGE_REGISTRY_HOST="+shellQuote("10.77.0.1:5000"), n.Name)
		assert.Contains(t, create, "REGISTRY_CERTS_DIR="+shellQuote(registryCertsDir), n.Name)
		assert.Contains(t, create, "IMAGE_REGISTRY_CA_B64=", n.Name)
	}
}

// registry-hosts.sh writes containerd's hosts.toml and the CA for the registry's host, and a
// second run changes nothing; containerd_config then names the hosts directory, and a real
// containerd 2.x takes it as its CRI registry config_path.
func TestRegistryHostsAndConfigPathInARealContainerd(t *testing.T) {
	bin := containerdBinary(t)
	dir := t.TempDir()
	require.NoError(t, os.Symlink(bin, filepath.Join(dir, "containerd")))
	scripts := filepath.Join(testenv.RepoRoot(), "cluster", "scripts")
	certs := filepath.Join(dir, "certs.d")
	ca := testCAPEM(t, true)
	a := &KubeadmArgs{ImageRepository: "10.77.0.1:5000/k8s", ImageRepositoryCA: ca}
	env := []string{"PATH=" + dir + ":/usr/bin:/bin", "PHASE=test", "NODE_NAME=n1", "SANDBOX=" + a.sandboxImageRef()}
	for k, v := range a.imageRepositoryEnv() {
		if k == "REGISTRY_CERTS_DIR" {
			v = certs
		}
		env = append(env, k+"="+v)
	}
	sh := func(script string) string {
		cmd := exec.Command("bash", "-c", `set -euo pipefail; source "$1"; source "$2"; `+script, "test",
			filepath.Join(scripts, "lib.sh"), filepath.Join(scripts, "registry-hosts.sh"))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	sh("ensure_registry_hosts")
	hostDir := filepath.Join(certs, "10.77.0.1:5000")
	toml, err := os.ReadFile(filepath.Join(hostDir, "hosts.toml"))
	require.NoError(t, err)
	assert.Contains(t, string(toml), `server = "https://10.77.0.1:5000"`)
	assert.Contains(t, string(toml), `[host."https://10.77.0.1:5000"]`)
	assert.Contains(t, string(toml), `ca = "`+hostDir+`/ca.crt"`)
	assert.NotContains(t, string(toml), "skip_verify")
	got, err := os.ReadFile(filepath.Join(hostDir, "ca.crt"))
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(ca), strings.TrimSpace(string(got)))
	st1, _ := os.Stat(filepath.Join(hostDir, "hosts.toml"))
	time.Sleep(10 * time.Millisecond)
	sh("ensure_registry_hosts")
	st2, _ := os.Stat(filepath.Join(hostDir, "hosts.toml"))
	assert.Equal(t, st1.ModTime(), st2.ModTime(), "a second run rewrote hosts.toml")

	cfg := sh(`containerd_config "$SANDBOX"`)
	cfgPath := filepath.Join(dir, "config.toml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	dump, err := exec.Command(bin, "--config", cfgPath, "config", "dump").Output()
	require.NoError(t, err)
	assert.Contains(t, string(dump), "config_path = '"+certs+"'")
}
