package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCA is a self-signed CA certificate as kubeadm writes it (PEM) and kubeadm's hash of it:
// sha256 of the public key's DER (SubjectPublicKeyInfo), as in a JoinConfiguration's caCertHashes.
func testCA(t *testing.T) (pemCert, hash string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	sum := sha256.Sum256(spki)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), hex.EncodeToString(sum[:])
}

// A worker joined to a control plane that was then rebuilt (a replaced VM: new CA) must join the
// new cluster: the marker alone would leave it on a cluster that no longer exists, and
// wait-nodes-ready would wait for it forever. The JoinConfiguration is the real rendered one.
func TestJoinWorkerRejoinsAfterTheControlPlaneWasRebuilt(t *testing.T) {
	oldCA, oldHash := testCA(t)
	_, newHash := testCA(t)
	withCA := joinedNode + "mkdir -p /etc/kubernetes/pki\ncat >/etc/kubernetes/pki/ca.crt <<'CA'\n" + oldCA + "CA\n"
	render := func(hash string) string {
		y, err := renderJoinConfig(joinConfig{Endpoint: "10.10.10.10:6443", Token: fakeToken,
			CACertHash: "sha256:" + hash, Node: Node{Name: "worker-1", IP: "10.10.10.21"}})
		require.NoError(t, err)
		return string(y)
	}
	env := map[string]string{
		"PHASE": PhaseJoinWorker, "NODE_NAME": "worker-1", "KUBERNETES_VERSION": "1.35.4", "STATE_DIR": stateDir,
		"API_ENDPOINT": "10.10.10.10:6443", "KUBELET_CONFIG_SHA256": fakeKubeletHash, "JOIN_TOKEN_RESOURCE": "lab-join-token", "JOIN_TOKEN_TTL": joinTokenTTL,
	}

	t.Run("same cluster: left alone", func(t *testing.T) {
		n := newFakeNode(t)
		n.set("kubelet", "active")
		_, log, err := n.run("join-worker.sh", env, render(oldHash), withCA)
		require.NoError(t, err, log)
		assert.NotContains(t, n.calls(), "kubeadm", "a node joined to this cluster is neither reset nor joined")
		assert.Contains(t, log, "already joined")
	})
	t.Run("rebuilt control plane: reset, then joined", func(t *testing.T) {
		n := newFakeNode(t)
		n.set("kubelet", "active")
		out, log, err := n.run("join-worker.sh", env, render(newHash), withCA)
		require.NoError(t, err, log)
		calls := n.calls()
		require.Contains(t, calls, "kubeadm reset --force\n", log)
		require.Contains(t, calls, "kubeadm join --config ")
		assert.Less(t, strings.Index(calls, "reset"), strings.Index(calls, "join"), "reset before the join")
		assert.Contains(t, log, "joined to another cluster")
		assert.Equal(t, "worker-1 joined\n", out)
		_, ok := n.file("/etc/kubernetes/infralab/join-done")
		assert.True(t, ok, "the new join is recorded")
	})
}
