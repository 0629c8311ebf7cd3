package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"golang.org/x/crypto/ssh"

	clusterlayer "github.com/infralab/infralab/cluster"
	"github.com/infralab/infralab/stacks"
)

// These tests run the whole program under pulumi.WithMocks: the proxmoxve and command provider
// plugins cannot be built on this machine, so the lab stack cannot run under the real engine here.
// The local stack runs for real in e2e/.

// recorder is a mock engine that remembers every resource the program registers.
type recorder struct {
	mu        sync.Mutex
	resources []pulumi.MockResourceArgs
}

func (r *recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resources = append(r.resources, args)
	outs := args.Inputs.Copy()
	if args.TypeToken == "command:remote:Command" {
		// What the cluster layer's scripts print, so the phases after them can be declared.
		stdout := "ok"
		switch {
		case strings.HasSuffix(args.Name, "-"+clusterlayer.PhaseFetchKubeconfig):
			stdout = "apiVersion: v1\nkind: Config\n"
		case strings.HasSuffix(args.Name, "-"+clusterlayer.PhaseJoinToken) &&
			!strings.HasSuffix(args.Name, "-"+clusterlayer.PhaseDeleteJoinToken):
			stdout = `{"token":"abcdef.0123456789abcdef","caCertHash":"sha256:` + strings.Repeat("ab", 32) + `"}`
		}
		outs["stdout"] = resource.NewProperty(stdout)
	}
	return args.Name + "-id", outs, nil
}

func (r *recorder) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return args.Args, nil
}

func (r *recorder) types() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, res := range r.resources {
		out[res.TypeToken]++
	}
	return out
}

// stackConfig is a shipped stack file plus generated secrets, as the engine would pass them.
type stackConfig struct {
	values  map[string]string
	secrets []string
}

func loadStack(t testing.TB, stack string) stackConfig {
	t.Helper()
	values, err := stacks.ReadStackFile(filepath.Join("stacks", "Pulumi."+stack+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc := stackConfig{values: values}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	if stack == "lab" {
		var sshCfg map[string]string
		_ = json.Unmarshal([]byte(values["ssh"]), &sshCfg)
		sshCfg["publicKey"] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
		b, _ := json.Marshal(sshCfg)
		values["ssh"] = string(b)
		sc.secret(stacks.KeyProxmoxAPIToken, "infralab@pve!pulumi=0b7d5f3e-9f3c-4a55-8a3e-2f4f8d4c1a90")
		sc.secret(stacks.KeySSHPrivateKey, string(pem.EncodeToMemory(block)))
		sc.secret(stacks.KeyProxmoxSSHPrivateKey, string(pem.EncodeToMemory(block)))
		sc.secret(stacks.KeyProxmoxJumpPrivateKey, jumpKeyPEM)
		sc.secret(stacks.KeyEncryptionKey, base64.StdEncoding.EncodeToString(make([]byte, 32)))
		sc.secret(stacks.KeyGrafanaAdminPassword, "grafana-test-password")
	}
	sc.secret(stacks.KeyPostgresPassword, "postgres-test-password")
	sc.secret(stacks.KeyAPIDBPassword, "api-test-password")
	sc.secret(stacks.KeyExporterDBPassword, "exporter-test-password")
	return sc
}

func (sc *stackConfig) secret(key, value string) {
	sc.values[key] = value
	sc.secrets = append(sc.secrets, stacks.Namespace+":"+key)
}

// run executes the program against the mock engine with this config.
func (sc stackConfig) run(t testing.TB) (*recorder, error) {
	t.Helper()
	cfg := map[string]string{}
	for k, v := range sc.values {
		cfg[stacks.Namespace+":"+k] = v
	}
	b, _ := json.Marshal(cfg)
	keys, _ := json.Marshal(sc.secrets)
	t.Setenv(pulumi.EnvConfig, string(b))
	t.Setenv(pulumi.EnvConfigSecretKeys, string(keys))
	rec := &recorder{}
	err := pulumi.RunErr(run, pulumi.WithMocks("infralab", "test", rec))
	return rec, err
}

func TestInvalidConfigDeclaresNothing(t *testing.T) {
	sc := loadStack(t, "lab")
	sc.values["kubernetes"] = `{"version":"1.28","calicoVersion":"v3.30.3"}`
	delete(sc.values, stacks.KeyEncryptionKey)
	var cluster map[string]any
	_ = json.Unmarshal([]byte(sc.values["cluster"]), &cluster)
	workers := cluster["workers"].(map[string]any)["nodes"].([]any)
	workers[1].(map[string]any)["ip"] = "10.10.20.12"
	b, _ := json.Marshal(cluster)
	sc.values["cluster"] = string(b)

	rec, err := sc.run(t)
	var list stacks.Errors
	if !errors.As(err, &list) {
		t.Fatalf("want stacks.Errors, got %v", err)
	}
	want := []string{"cluster.workers.nodes[1].ip", "encryptionKey", "kubernetes.version"}
	if got := list.Paths(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paths = %v, want %v", got, want)
	}
	if n := len(rec.resources); n != 0 {
		t.Fatalf("an invalid config registered %d resources (%v); want none", n, rec.types())
	}
}

func TestLabStackWiresEveryLayer(t *testing.T) {
	rec, err := loadStack(t, "lab").run(t)
	if err != nil {
		t.Fatal(err)
	}
	types := rec.types()
	for _, want := range []string{
		"infralab:infra:Nodes", "infralab:cluster:Kubeadm", "infralab:apps:Platform",
		"pulumi:providers:kubernetes", "pulumi:providers:proxmoxve",
	} {
		if types[want] == 0 {
			t.Errorf("lab stack declares no %s; got %v", want, types)
		}
	}
}

func TestLocalStackSkipsInfraAndCluster(t *testing.T) {
	sc := loadStack(t, "local")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sc.values["kubeconfig"] = kubeconfig
	rec, err := sc.run(t)
	if err != nil {
		t.Fatal(err)
	}
	types := rec.types()
	if types["infralab:apps:Platform"] != 1 || types["pulumi:providers:kubernetes"] != 1 {
		t.Fatalf("local stack must declare the apps and one kubernetes provider; got %v", types)
	}
	for typ := range types {
		if strings.HasPrefix(typ, "infralab:infra") || strings.HasPrefix(typ, "infralab:cluster") ||
			strings.Contains(typ, "proxmoxve") || strings.Contains(typ, "command") {
			t.Errorf("local stack declares %s", typ)
		}
	}
}

func TestLocalStackWithoutKubeconfigFailsClearly(t *testing.T) {
	sc := loadStack(t, "local")
	sc.values["kubeconfig"] = filepath.Join(t.TempDir(), "missing")
	rec, err := sc.run(t)
	if err == nil || !strings.Contains(err.Error(), "make demo") {
		t.Fatalf("want an error pointing at make demo, got %v", err)
	}
	if len(rec.resources) != 0 {
		t.Fatalf("registered %v before failing", rec.types())
	}
}

// The apps must wait for a working cluster: the provider built from the kubeadm kubeconfig
// depends on the phase that waits for every node to be Ready, not only on kubeadm init.
func TestLabProviderWaitsForReadyNodes(t *testing.T) {
	rec, err := loadStack(t, "lab").run(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rec.resources {
		if r.TypeToken != "pulumi:providers:kubernetes" || r.Name != "lab" {
			continue
		}
		for _, dep := range r.RegisterRPC.GetDependencies() {
			if strings.HasSuffix(dep, "-"+clusterlayer.PhaseWaitNodesReady) {
				return
			}
		}
		t.Fatalf("the lab provider depends on %v, not on %s", r.RegisterRPC.GetDependencies(), clusterlayer.PhaseWaitNodesReady)
	}
	t.Fatal("no lab kubernetes provider declared")
}
