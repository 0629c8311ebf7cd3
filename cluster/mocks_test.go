package cluster

// The pulumi-command provider plugin cannot be built on this machine (its module is refused by
// the Go proxy), so these tests run the component under pulumi.WithMocks. The mock stands in for
// the engine and the provider only: it records what the program registers, answers each phase
// with a plausible stdout, and applies additionalSecretOutputs the way the engine does.

import (
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/require"
)

const (
	fakeSSHKey        = "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKE-SSH-KEY-FOR-TESTS-ONLY\n-----END OPENSSH PRIVATE KEY-----\n"
	fakeEncryptionKey = "c2VjcmV0Ym94LWtleS1mb3ItdGVzdHMtb25seS0zMmI=" // 32 bytes
	fakeToken         = "abcdef.0123456789abcdef"
	fakeClientKey     = "FAKE-ADMIN-CLIENT-KEY-DATA"
)

var fakeSecrets = []string{"FAKE-SSH-KEY-FOR-TESTS-ONLY", fakeEncryptionKey, fakeToken, "0123456789abcdef", fakeClientKey}

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
			stdout = "apiVersion: v1\nkind: Config\nusers:\n- user:\n    client-key-data: " + fakeClientKey + "\n"
		case phase(PhaseJoinToken):
			stdout = `{"token":"` + fakeToken + `","caCertHash":"sha256:` + strings.Repeat("ab", 32) + `"}`
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
