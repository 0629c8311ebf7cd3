package cluster

// The pulumi-command provider plugin cannot be built on this machine (its module is refused by
// the Go proxy), so these tests run the component under pulumi.WithMocks. The mock stands in for
// the engine and the provider only: it records what the program registers, answers each phase
// with a plausible stdout, and applies additionalSecretOutputs the way the engine does.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/require"

	"github.com/infralab/infralab/cluster/sealed"
)

const (
	fakeSSHKey        = "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKE-SSH-KEY-FOR-TESTS-ONLY\n-----END OPENSSH PRIVATE KEY-----\n"
	fakeEncryptionKey = "c2VjcmV0Ym94LWtleS1mb3ItdGVzdHMtb25seS0zMmI=" // 32 bytes
	fakeToken         = "abcdef.0123456789abcdef"
	fakeClientKey     = "FAKE-ADMIN-CLIENT-KEY-DATA"
)

// fakeSecrets are every secret a test run holds, the sealing keys derived from the encryption
// key included.
var fakeSecrets = append([]string{"FAKE-SSH-KEY-FOR-TESTS-ONLY", fakeEncryptionKey, fakeToken, "0123456789abcdef", fakeClientKey},
	sealed.Derive(fakeEncryptionKey).Secrets()...)

type registered struct {
	args   pulumi.MockResourceArgs
	deps   []string // resource names this one depends on explicitly
	parent string
}

type mocks struct {
	mu  sync.Mutex
	res map[string]registered
}

func newMocks() *mocks { return &mocks{res: map[string]registered{}} }

func urnName(urn string) string { return urn[strings.LastIndex(urn, "::")+2:] }

func (m *mocks) NewResource(a pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	r := registered{args: a, parent: urnName(a.RegisterRPC.GetParent())}
	for _, d := range a.RegisterRPC.GetDependencies() {
		r.deps = append(r.deps, urnName(d))
	}
	m.mu.Lock()
	m.res[a.Name] = r
	m.mu.Unlock()

	outs := a.Inputs.Copy()
	if a.TypeToken == "command:remote:Command" {
		stdout := "ok"
		// The phase as the command line names it (resource names alone are ambiguous:
		// "lab-delete-join-token" ends in "-join-token" too).
		phase := func(p string) bool {
			return strings.Contains(a.Inputs["create"].StringValue(), " PHASE="+shellQuote(p)+" ")
		}
		switch {
		case phase(PhaseFetchKubeconfig):
			stdout = sealAsTheNode(a, fakeAdminConf)
		case phase(PhaseJoinToken):
			stdout = sealAsTheNode(a, `{"token":"`+fakeToken+`","caCertHash":"sha256:`+strings.Repeat("ab", 32)+`"}`)
		}
		outs["stdout"] = resource.NewProperty(stdout)
		outs["stderr"] = resource.NewProperty("")
		for _, k := range a.RegisterRPC.GetAdditionalSecretOutputs() {
			if v, ok := outs[resource.PropertyKey(k)]; ok {
				outs[resource.PropertyKey(k)] = resource.MakeSecret(v)
			}
		}
	}
	return a.Name + "_id", outs, nil
}

// fakeNotAfter is when the client certificate in fakeAdminConf expires.
var fakeNotAfter = time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeAdminConf is admin.conf as kubeadm writes it (clientcmd's layout), with a real client
// certificate, so the component can read its NotAfter, and a fake key.
var fakeAdminConf = func() string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"kubeadm:cluster-admins"}},
		NotBefore: fakeNotAfter.Add(-365 * 24 * time.Hour), NotAfter: fakeNotAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return "apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.10.10.10:6443\n  name: lab\n" +
		"contexts:\n- context:\n    cluster: lab\n    user: kubernetes-admin\n  name: kubernetes-admin@lab\n" +
		"current-context: kubernetes-admin@lab\nkind: Config\nusers:\n- name: kubernetes-admin\n  user:\n" +
		"    client-certificate-data: " + cert + "\n    client-key-data: " + fakeClientKey + "\n"
}()

// sealAsTheNode is what a secret phase prints: its value sealed to the keys on its stdin
// (seal.sh; TestSealShOpensInGo checks the Go and shell sides against each other).
func sealAsTheNode(a pulumi.MockResourceArgs, value string) string {
	stdin, ok := a.Inputs["stdin"]
	if !ok || !stdin.IsSecret() {
		return "no keys on stdin"
	}
	keys, err := sealed.ParseStdin(stdin.SecretValue().Element.StringValue())
	if err != nil {
		return "no keys on stdin"
	}
	out, err := sealed.Seal(keys, []byte(value), rand.Reader)
	if err != nil {
		return err.Error()
	}
	return out
}

func (m *mocks) Call(pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

func (m *mocks) get(t *testing.T, name string) registered {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.res[name]
	require.True(t, ok, "resource %s not registered", name)
	return r
}

func (m *mocks) commands() map[string]registered {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]registered{}
	for n, r := range m.res {
		if r.args.TypeToken == "command:remote:Command" {
			out[n] = r
		}
	}
	return out
}

func testArgs() *KubeadmArgs {
	return &KubeadmArgs{
		ClusterName:       "lab",
		KubernetesVersion: "1.35.4",
		ControlPlane:      Node{Name: "cp-1", IP: "10.10.10.10"},
		Workers:           []Node{{Name: "worker-1", IP: "10.10.10.21"}, {Name: "worker-2", IP: "10.10.10.22"}, {Name: "worker-3", IP: "10.10.10.23"}},
		SSHUser:           "debian",
		SSHPrivateKey:     pulumi.ToSecret(pulumi.String(fakeSSHKey)).(pulumi.StringOutput),
		PodCIDR:           "10.244.0.0/16",
		ServiceCIDR:       "10.96.0.0/12",
		EncryptionKey:     pulumi.ToSecret(pulumi.String(fakeEncryptionKey)).(pulumi.StringOutput),
		CalicoVersion:     DefaultCalicoVersion,
	}
}
