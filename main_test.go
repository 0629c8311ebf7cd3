package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"golang.org/x/crypto/ssh"

	clusterlayer "github.com/infralab/infralab/cluster"
	"github.com/infralab/infralab/cluster/sealed"
	"github.com/infralab/infralab/stacks"
)

// These tests run the whole program under pulumi.WithMocks: the proxmoxve and command provider
// plugins cannot be built on this machine, so the lab stack cannot run under the real engine here.
// The local stack runs for real in e2e/.

// recorder is a mock engine that remembers every resource the program registers.
type recorder struct {
	mu        sync.Mutex
	resources []pulumi.MockResourceArgs
	// previous are the stack outputs of the last deployment, as a StackReference reads them.
	previous resource.PropertyMap
	// vms plays the provider's state of each VM between runs: what it created, by name.
	vms map[string]vmState
	// replace makes the next run re-create these VMs, as `pulumi up --replace URN` does.
	replace map[string]bool
	// agentIPs overrides what a VM's guest agent reports, by VM name.
	agentIPs map[string]string
}

// vmState is what a created VM keeps across updates.
type vmState struct {
	vmID int
	uuid string
}

// smbiosUUID plays Proxmox and bpg for the VM's SMBIOS UUID. On create the provider generates a
// random one when the config sets none (proxmoxtf/resource/vm/vm.go, vmGetSMBIOS: uuid.New()), and
// Proxmox stores it in smbios1; on an update the attribute is Optional+Computed and unset in the
// config, so the SDK keeps the state's value and the provider sends it back unchanged. A new VM is
// a create: a replaced VM, or a changed vmId (ForceNew in the provider's CustomizeDiff).
func (r *recorder) smbiosUUID(name string, vmID int) string {
	if r.vms == nil {
		r.vms = map[string]vmState{}
	}
	if st, ok := r.vms[name]; ok && st.vmID == vmID && !r.replace[name] {
		return st.uuid
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	r.vms[name] = vmState{vmID: vmID, uuid: id}
	return id
}

func (r *recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resources = append(r.resources, args)
	outs := args.Inputs.Copy()
	if args.TypeToken == "pulumi:pulumi:StackReference" {
		outs["outputs"] = resource.NewObjectProperty(r.previous.Copy())
	}
	if args.TypeToken == "proxmoxve:VM/virtualMachine:VirtualMachine" {
		// What bpg reads back from the guest agent: one address list per interface, loopback
		// first (proxmoxtf/resource/vm/network/network.go, ReadNetworkValues). The VM booted
		// with the address cloud-init was given.
		ipcfg := args.Inputs["initialization"].ObjectValue()["ipConfigs"].ArrayValue()[0].ObjectValue()
		addr, _, _ := strings.Cut(ipcfg["ipv4"].ObjectValue()["address"].StringValue(), "/")
		name := args.Inputs["name"].StringValue()
		if a, ok := r.agentIPs[name]; ok {
			addr = a
		}
		smbios := resource.PropertyMap{}
		if in, ok := args.Inputs["smbios"]; ok && in.IsObject() {
			smbios = in.ObjectValue().Copy()
		}
		smbios["uuid"] = resource.NewProperty(r.smbiosUUID(name, int(args.Inputs["vmId"].NumberValue())))
		outs["smbios"] = resource.NewProperty(smbios)
		outs["ipv4Addresses"] = resource.NewProperty([]resource.PropertyValue{
			resource.NewProperty([]resource.PropertyValue{resource.NewProperty("127.0.0.1")}),
			resource.NewProperty([]resource.PropertyValue{resource.NewProperty(addr)}),
		})
	}
	if args.TypeToken == "command:remote:Command" {
		// What the cluster layer's scripts print, so the phases after them can be declared.
		stdout := "ok"
		// The secret phases print their value sealed to the keys on their stdin (cluster/sealed).
		switch {
		case strings.HasSuffix(args.Name, "-"+clusterlayer.PhaseFetchKubeconfig):
			stdout = sealLikeTheNode(args, "apiVersion: v1\nkind: Config\n")
		case strings.HasSuffix(args.Name, "-"+clusterlayer.PhaseJoinToken) &&
			!strings.HasSuffix(args.Name, "-"+clusterlayer.PhaseDeleteJoinToken):
			stdout = sealLikeTheNode(args, `{"token":"abcdef.0123456789abcdef","caCertHash":"sha256:`+strings.Repeat("ab", 32)+`"}`)
		}
		outs["stdout"] = resource.NewProperty(stdout)
	}
	return args.Name + "-id", outs, nil
}

func sealLikeTheNode(args pulumi.MockResourceArgs, value string) string {
	stdin := args.Inputs["stdin"]
	if !stdin.IsSecret() {
		return "no keys on stdin"
	}
	keys, err := sealed.ParseStdin(stdin.SecretValue().Element.StringValue())
	if err != nil {
		return err.Error()
	}
	out, err := sealed.Seal(keys, []byte(value), rand.Reader)
	if err != nil {
		return err.Error()
	}
	return out
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
	return sc.runWith(t, &recorder{})
}

// runWith executes the program against a given mock engine, e.g. a second time against the same
// one, as a second `pulumi up` runs against the state of the first.
func (sc stackConfig) runWith(t testing.TB, rec *recorder) (*recorder, error) {
	t.Helper()
	rec.mu.Lock()
	rec.resources = nil
	rec.mu.Unlock()
	cfg := map[string]string{}
	for k, v := range sc.values {
		cfg[stacks.Namespace+":"+k] = v
	}
	b, _ := json.Marshal(cfg)
	keys, _ := json.Marshal(sc.secrets)
	t.Setenv(pulumi.EnvConfig, string(b))
	t.Setenv(pulumi.EnvConfigSecretKeys, string(keys))
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

// clusterCommands maps every cluster-layer command to its triggers and the host it runs on. A
// command whose triggers differ between two runs is replaced by pulumi-command, which runs its
// create again: triggers are replaceOnChanges (pulumi-command v1.1.0,
// provider/pkg/provider/common/inputs.go).
func clusterCommands(rec *recorder) map[string]struct{ triggers, host string } {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := map[string]struct{ triggers, host string }{}
	for _, r := range rec.resources {
		if r.TypeToken != "command:remote:Command" || !strings.HasPrefix(r.Name, "cluster-") {
			continue
		}
		conn := unsecret(r.Inputs["connection"])
		b, _ := json.Marshal(unsecret(r.Inputs["triggers"]).Mappable())
		out[r.Name] = struct{ triggers, host string }{string(b), unsecret(conn.ObjectValue()["host"]).StringValue()}
	}
	return out
}

func unsecret(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

// A replaced VM is a new machine and must be bootstrapped again. The cluster layer puts each
// node's InstanceID into every command's triggers; that ID has to change with every VM instance
// (issue 14, item 1), while an update of the same VM must leave it alone. The engine and the
// provider are played by the recorder across two runs (smbiosUUID); everything in between is the
// real program: infra's outputs, the wiring, the cluster layer.
func TestReplacedVMRerunsEveryPhaseOfItsNode(t *testing.T) {
	sc := loadStack(t, "lab")
	hostOf := map[string]string{"k8s-cp-1": "10.10.10.10", "k8s-worker-1": "10.10.10.11", "k8s-worker-2": "10.10.10.12"}
	for _, replaced := range []string{"k8s-worker-1", "k8s-cp-1"} {
		t.Run(replaced, func(t *testing.T) {
			rec := &recorder{}
			if _, err := sc.runWith(t, rec); err != nil {
				t.Fatal(err)
			}
			before := clusterCommands(rec)
			if _, err := sc.runWith(t, rec); err != nil {
				t.Fatal(err)
			}
			if again := clusterCommands(rec); !reflect.DeepEqual(before, again) {
				t.Fatalf("a second up of an unchanged stack changes cluster commands")
			}
			rec.replace = map[string]bool{replaced: true}
			if _, err := sc.runWith(t, rec); err != nil {
				t.Fatal(err)
			}
			after := clusterCommands(rec)
			onNode := 0
			for name, b := range before {
				a, ok := after[name]
				if !ok {
					t.Errorf("%s vanished after the replacement", name)
					continue
				}
				switch {
				case strings.HasPrefix(name, "cluster-"+clusterlayer.PhaseRemoveNode+"-"):
					// Runs only on delete (drains a removed worker), so it is never re-triggered:
					// cluster's TestRemoveNodeIsNeverReplacedWhileTheWorkerStays.
					if a.triggers != b.triggers {
						t.Errorf("%s changed its triggers: a replacement would drain a worker that stays", name)
					}
				case b.host == hostOf[replaced]:
					onNode++
					if a.triggers == b.triggers {
						t.Errorf("%s runs on the replaced %s but would not run again (triggers unchanged)", name, replaced)
					}
				case replaced == "k8s-worker-1" && b.host == hostOf["k8s-worker-2"]:
					if a.triggers != b.triggers {
						t.Errorf("%s runs on k8s-worker-2, which was not replaced, yet would run again", name)
					}
				}
			}
			if replaced == "k8s-cp-1" {
				// A rebuilt control plane is a new cluster: every worker joins it again.
				for _, w := range []string{"k8s-worker-1", "k8s-worker-2"} {
					name := "cluster-" + clusterlayer.PhaseJoinWorker + "-" + w
					if before[name].triggers == after[name].triggers {
						t.Errorf("%s would not run again for the rebuilt control plane", name)
					}
				}
			}
			if replaced == "k8s-worker-1" {
				// A fresh worker needs a fresh token (the old one may have expired), and the token
				// may be deleted only after that worker is Ready again.
				for _, name := range []string{"cluster-" + clusterlayer.PhaseJoinToken, "cluster-" + clusterlayer.PhaseWaitNodesReady} {
					if before[name].triggers == after[name].triggers {
						t.Errorf("%s would not run again for the replaced worker", name)
					}
				}
			}
			if onNode < 3 {
				t.Fatalf("only %d cluster commands run on %s; is the host lookup broken? %v", onNode, replaced, before)
			}
		})
	}
}

// An update that keeps the VM (here: more memory) is not a new instance: no phase re-runs.
func TestUpdatedVMRerunsNoPhase(t *testing.T) {
	sc := loadStack(t, "lab")
	rec := &recorder{}
	if _, err := sc.runWith(t, rec); err != nil {
		t.Fatal(err)
	}
	before := clusterCommands(rec)
	var cluster map[string]any
	_ = json.Unmarshal([]byte(sc.values["cluster"]), &cluster)
	cluster["workers"].(map[string]any)["memory"] = "16Gi"
	b, _ := json.Marshal(cluster)
	sc.values["cluster"] = string(b)
	if _, err := sc.runWith(t, rec); err != nil {
		t.Fatal(err)
	}
	if after := clusterCommands(rec); !reflect.DeepEqual(before, after) {
		for name := range before {
			if before[name] != after[name] {
				t.Errorf("%s would run again after a memory change", name)
			}
		}
	}
}

// A VM whose guest agent does not report its configured address gets no cluster command at all:
// its instance ID is derived through infra's address check.
func TestNodeWithoutItsAddressGetsNoClusterPhase(t *testing.T) {
	rec := &recorder{agentIPs: map[string]string{"k8s-worker-2": "10.10.10.200"}}
	_, err := loadStack(t, "lab").runWith(t, rec)
	if err == nil || !strings.Contains(err.Error(), "VM k8s-worker-2 (vmId 202): its guest agent reports [10.10.10.200], not the configured 10.10.10.12") {
		t.Fatalf("want the address check to fail the run, got %v", err)
	}
	for name, c := range clusterCommands(rec) {
		if c.host == "10.10.10.12" {
			t.Errorf("%s was declared for a VM that never reported its address", name)
		}
	}
}
