package cluster

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type result struct {
	m           *mocks
	kubeconfig  internals.UnsafeAwaitOutputResult
	nodeNames   internals.UnsafeAwaitOutputResult
	apiEndpoint internals.UnsafeAwaitOutputResult
	// The certificate report (certs.go).
	notAfter, daysLeft, generation internals.UnsafeAwaitOutputResult
}

// run declares the component under mocks; vm stands for the infra layer's VMs.
func run(t *testing.T, args *KubeadmArgs, scripts fs.FS) result {
	t.Helper()
	m := newMocks()
	var r result
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		vm := &pulumi.CustomResourceState{}
		if err := ctx.RegisterResource("test:infra:Vm", "vms", pulumi.Map{}, vm); err != nil {
			return err
		}
		args.DependsOn = []pulumi.Resource{vm}
		k, err := newKubeadm(ctx, "lab", args, scripts)
		if err != nil {
			return err
		}
		for _, o := range []struct {
			out pulumi.Output
			dst *internals.UnsafeAwaitOutputResult
		}{{k.Kubeconfig, &r.kubeconfig}, {k.NodeNames, &r.nodeNames}, {k.APIEndpoint, &r.apiEndpoint},
			{k.CertificatesNotAfter, &r.notAfter}, {k.CertificatesExpireInDays, &r.daysLeft}, {k.KubeconfigGeneration, &r.generation}} {
			res, err := internals.UnsafeAwaitOutput(ctx.Context(), o.out)
			if err != nil {
				return err
			}
			*o.dst = res
		}
		return nil
	}, pulumi.WithMocks("infralab", "lab", m))
	require.NoError(t, err)
	r.m = m
	return r
}

func depSet(r registered) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range r.deps {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

func TestPhaseOrder(t *testing.T) {
	assert.Equal(t, []string{
		"wait-ssh", "prepare-node", "upgrade-precheck", "upgrade-control-plane", "kubeadm-init", "cert-renewal", "fetch-kubeconfig",
		"upgrade-node", "join-token", "join-worker", "remove-node", "calico", "wait-nodes-ready", "delete-join-token", "node-versions",
	}, PhaseNames())
}

func TestPhaseDependencies(t *testing.T) {
	r := run(t, testArgs(), Scripts())
	m := r.m
	want := map[string][]string{
		// After an upgrade of the control plane, init applies the new version's configuration.
		"lab-kubeadm-init":          {"lab-prepare-node-cp-1", "lab-upgrade-control-plane"},
		"lab-upgrade-precheck":      {"lab-prepare-node-cp-1", "lab-prepare-node-worker-1", "lab-prepare-node-worker-2", "lab-prepare-node-worker-3"},
		"lab-upgrade-control-plane": {"lab-upgrade-precheck"},
		"lab-node-versions":         {"lab-upgrade-control-plane", "lab-wait-nodes-ready"},
		"lab-cert-renewal":          {"lab-kubeadm-init"},
		"lab-fetch-kubeconfig":      {"lab-cert-renewal", "lab-kubeadm-init"},
		"lab-join-token":            {"lab-kubeadm-init"},
		"lab-calico":                {"lab-kubeadm-init"},
		"lab-wait-nodes-ready": {"lab-calico", "lab-join-worker-worker-1", "lab-join-worker-worker-2", "lab-join-worker-worker-3",
			"lab-remove-node-worker-1", "lab-remove-node-worker-2", "lab-remove-node-worker-3"},
		// The token is deleted only once every node is Ready.
		"lab-delete-join-token": {"lab-join-token", "lab-wait-nodes-ready"},
	}
	for _, n := range []string{"cp-1", "worker-1", "worker-2", "worker-3"} {
		want["lab-wait-ssh-"+n] = []string{"vms"}
		want["lab-prepare-node-"+n] = []string{"lab-wait-ssh-" + n}
	}
	// Workers join in parallel: each join waits for the token, its own node and its own upgrade
	// step (a no-op on a new worker), never another join. Upgrades go one worker at a time: a
	// worker's drain waits for the previous worker's uncordon, the first for kubeadm-init.
	prev := "lab-kubeadm-init"
	for _, n := range []string{"worker-1", "worker-2", "worker-3"} {
		want["lab-join-worker-"+n] = []string{"lab-join-token", "lab-prepare-node-" + n, "lab-upgrade-uncordon-" + n}
		want["lab-remove-node-"+n] = []string{"lab-join-worker-" + n}
		want["lab-upgrade-drain-"+n] = []string{prev}
		want["lab-upgrade-node-"+n] = []string{"lab-prepare-node-" + n, "lab-upgrade-drain-" + n}
		want["lab-upgrade-uncordon-"+n] = []string{"lab-upgrade-node-" + n}
		prev = "lab-upgrade-uncordon-" + n
	}
	cmds := m.commands()
	assert.Len(t, cmds, len(want), "unexpected set of commands")
	for name, deps := range want {
		got := m.get(t, name)
		assert.Equal(t, deps, depSet(got), "dependencies of %s", name)
		assert.Equal(t, "lab", got.parent, "%s must be a child of the component", name)
	}
}

func TestNoWorkersSkipsTokenAndJoins(t *testing.T) {
	a := testArgs()
	a.Workers = nil
	r := run(t, a, Scripts())
	for name := range r.m.commands() {
		assert.NotContains(t, name, "join")
	}
	assert.Equal(t, []string{"lab-calico"}, depSet(r.m.get(t, "lab-wait-nodes-ready")))
	assert.Equal(t, []string{"cp-1"}, r.nodeNames.Value)
}

func TestKubeconfigAndJoinTokenAreSecret(t *testing.T) {
	r := run(t, testArgs(), Scripts())
	assert.True(t, r.kubeconfig.Secret, "Kubeconfig output must be secret")
	assert.Contains(t, r.kubeconfig.Value, fakeClientKey)
	assert.False(t, r.apiEndpoint.Secret)
	assert.Equal(t, "https://10.10.10.10:6443", r.apiEndpoint.Value)
	assert.Equal(t, []string{"cp-1", "worker-1", "worker-2", "worker-3"}, r.nodeNames.Value)

	for _, name := range []string{"lab-fetch-kubeconfig", "lab-join-token"} {
		c := r.m.get(t, name)
		assert.Contains(t, c.args.RegisterRPC.GetAdditionalSecretOutputs(), "stdout", "%s stdout must be stored as a secret", name)
		assert.Equal(t, "none", c.args.Inputs["logging"].StringValue(), "%s must not log its output", name)
	}
	for _, name := range []string{"lab-kubeadm-init", "lab-join-worker-worker-1", "lab-join-worker-worker-2"} {
		c := r.m.get(t, name)
		assert.True(t, c.args.Inputs["stdin"].IsSecret(), "%s stdin carries a secret", name)
		assert.Equal(t, "stderr", c.args.Inputs["logging"].StringValue(), "%s must not log stdout", name)
	}
	assert.True(t, r.m.get(t, "lab-kubeadm-init").args.Inputs["connection"].IsSecret())

	// The secrets do arrive, inside the secret wrappers.
	join := r.m.get(t, "lab-join-worker-worker-2").args.Inputs["stdin"].SecretValue().Element.StringValue()
	assert.Contains(t, join, "kind: JoinConfiguration")
	assert.Contains(t, join, "token: "+fakeToken)
	assert.Contains(t, join, "name: worker-2")
	enc := r.m.get(t, "lab-kubeadm-init").args.Inputs["stdin"].SecretValue().Element.StringValue()
	assert.Contains(t, enc, "secret: "+fakeEncryptionKey)
}

// Walks every registered input, and every output the mock engine would store, looking for a
// secret value outside a secret wrapper.
func TestNoPlainValueHoldsASecret(t *testing.T) {
	r := run(t, testArgs(), Scripts())
	for name, c := range r.m.commands() {
		assertNoPlainSecret(t, name+".inputs", resource.NewObjectProperty(c.args.Inputs))
		id, outs, err := r.m.NewResource(c.args) // what the engine would keep in state
		require.NoError(t, err)
		require.NotEmpty(t, id)
		assertNoPlainSecret(t, name+".outputs", resource.NewObjectProperty(outs))
	}
	// And the walker itself finds a leak.
	leak := resource.NewObjectProperty(resource.PropertyMap{"create": resource.NewProperty("echo " + fakeToken)})
	ft := &testing.T{}
	assertNoPlainSecret(ft, "probe", leak)
	assert.True(t, ft.Failed(), "the leak detector must catch a plain token")
}

func assertNoPlainSecret(t testing.TB, path string, v resource.PropertyValue) {
	switch {
	case v.IsSecret():
		return
	case v.IsString():
		for _, s := range fakeSecrets {
			if strings.Contains(v.StringValue(), s) {
				t.Errorf("%s holds a secret in plain text", path)
			}
		}
	case v.IsArray():
		for i, e := range v.ArrayValue() {
			assertNoPlainSecret(t, fmt.Sprintf("%s[%d]", path, i), e)
		}
	case v.IsObject():
		for k, e := range v.ObjectValue() {
			assertNoPlainSecret(t, path+"."+string(k), e)
		}
	case v.IsOutput():
		if v.OutputValue().Secret {
			return
		}
		assertNoPlainSecret(t, path, v.OutputValue().Element)
	}
}

func triggersByCommand(r result) map[string]string {
	out := map[string]string{}
	for name, c := range r.m.commands() {
		var parts []string
		for _, v := range c.args.Inputs["triggers"].ArrayValue() {
			parts = append(parts, triggerText(v))
		}
		out[name] = strings.Join(parts, "|")
	}
	return out
}

// triggerText is a trigger's value; a secret one (a stdin digest, command.go) is marked as such.
func triggerText(v resource.PropertyValue) string {
	if v.IsSecret() {
		return "secret:" + v.SecretValue().Element.StringValue()
	}
	return v.StringValue()
}

func TestScriptEditChangesOnlyItsPhaseTriggers(t *testing.T) {
	base := triggersByCommand(run(t, testArgs(), Scripts()))
	scriptPhase := map[string][]string{
		"wait-ready.sh": {PhaseWaitSSH}, "prepare-node.sh": {PhasePrepareNode}, "kubeadm-init.sh": {PhaseKubeadmInit},
		"fetch-kubeconfig.sh": {PhaseFetchKubeconfig}, "join-token.sh": {PhaseJoinToken}, "join-worker.sh": {PhaseJoinWorker},
		"calico.sh": {PhaseCalico}, "wait-nodes.sh": {PhaseWaitNodesReady}, "delete-join-token.sh": {PhaseDeleteJoinToken},
		// The sealing helpers go with both secret phases.
		sealLib: {PhaseFetchKubeconfig, PhaseJoinToken},
		// remove-node's triggers never change (a replacement would drain a live node); an edit
		// changes its stored delete: TestRemoveNodeIsNeverReplacedWhileTheWorkerStays.
		"remove-node.sh": {},
		// renew-certs.sh is installed by cert-renewal (RENEW_SCRIPT_B64 is one of its triggers).
		"cert-renewal.sh": {PhaseCertRenewal}, "renew-certs.sh": {PhaseCertRenewal},
		// The imageRepository helpers (hosts.toml, CA) go with prepare-node.
		"registry-hosts.sh":   {PhasePrepareNode},
		"upgrade-precheck.sh": {PhaseUpgradePrecheck}, "upgrade-control-plane.sh": {PhaseUpgradeControlPlane},
		"upgrade-drain.sh": {PhaseUpgradeDrain}, "upgrade-node.sh": {PhaseUpgradeNode}, "upgrade-uncordon.sh": {PhaseUpgradeUncordon},
		"node-versions.sh": {PhaseNodeVersions},
		// The upgrade helpers go with every upgrade phase and with prepare-node (upgrade_path).
		upgradeLib: {PhasePrepareNode, PhaseUpgradePrecheck, PhaseUpgradeControlPlane, PhaseUpgradeDrain, PhaseUpgradeNode, PhaseUpgradeUncordon},
	}
	entries, err := fs.ReadDir(Scripts(), ".")
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() == libScript {
			continue
		}
		phases, ok := scriptPhase[e.Name()]
		require.True(t, ok, "script %s belongs to no phase in this test", e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			edited := copyScripts(t)
			edited[e.Name()].Data = append(edited[e.Name()].Data, []byte("\n# an edit\n")...)
			after := triggersByCommand(run(t, testArgs(), edited))
			for name, tr := range base {
				mine := false
				for _, phase := range phases {
					mine = mine || strings.HasPrefix(name, "lab-"+phase+"-") || name == "lab-"+phase
				}
				if mine {
					assert.NotEqual(t, tr, after[name], "%s: editing %s must change its triggers", name, e.Name())
				} else {
					assert.Equal(t, tr, after[name], "%s: editing %s must not touch other phases", name, e.Name())
				}
			}
		})
	}
}

func copyScripts(t *testing.T) fstest.MapFS {
	out := fstest.MapFS{}
	entries, err := fs.ReadDir(Scripts(), ".")
	require.NoError(t, err)
	for _, e := range entries {
		b, err := fs.ReadFile(Scripts(), e.Name())
		require.NoError(t, err)
		out[e.Name()] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
	return out
}

func TestVersionChangeRerunsPrepareButNeverDropsTheGuard(t *testing.T) {
	// Changing the version changes prepare-node's and init's triggers (so the scripts run), and
	// both scripts refuse to change a running cluster's version instead of re-initialising it.
	a := testArgs()
	base := triggersByCommand(run(t, a, Scripts()))
	b := testArgs()
	b.KubernetesVersion = "1.35.5"
	after := triggersByCommand(run(t, b, Scripts()))
	assert.NotEqual(t, base["lab-prepare-node-worker-1"], after["lab-prepare-node-worker-1"])
	assert.NotEqual(t, base["lab-kubeadm-init"], after["lab-kubeadm-init"])
	for _, s := range []string{"kubeadm-init.sh", "join-worker.sh"} {
		body, err := fs.ReadFile(Scripts(), s)
		require.NoError(t, err)
		assert.Contains(t, string(body), "refuse_version_change", s)
	}
	lib, err := fs.ReadFile(Scripts(), libScript)
	require.NoError(t, err)
	assert.Contains(t, string(lib), "the upgrade phases (upgrade-control-plane, upgrade-node) have not finished")
	// prepare-node leaves a joined node at another version to the upgrade phases, after checking
	// the path kubeadm can take (upgrade_path, run for real in upgrade_test.go).
	assert.Contains(t, string(prepareBody(t)), `why=$(upgrade_path "${have}" "${KUBERNETES_VERSION}") || die`)
	// What the guard and the package check do is tested by running them: scripts_test.go.
	prepare, err := fs.ReadFile(Scripts(), "prepare-node.sh")
	require.NoError(t, err)
	assert.Contains(t, string(prepare), "if k8s_packages_ready; then")
}

// A replaced VM re-running its node's phases is tested across the layers, with the instance ID
// the infra layer really produces: TestReplacedVMRerunsEveryPhaseOfItsNode in the root package.

func TestInvalidArgsDeclareNothing(t *testing.T) {
	m := newMocks()
	a := testArgs()
	a.KubernetesVersion = "v1.35"
	a.Workers[1].IP = "10.244.3.4"
	a.Workers[2].Name = "cp-1"
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		_, err := NewKubeadm(ctx, "lab", a)
		return err
	}, pulumi.WithMocks("infralab", "lab", m))
	require.Error(t, err)
	for _, want := range []string{
		"cluster.kubernetesVersion:", "cluster.workers[1].ip: 10.244.3.4 lies inside podCidr", "cluster.workers[2].name: \"cp-1\" is already used by controlPlane",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.Empty(t, m.commands(), "no command may be declared for invalid input")
}

func TestBadEncryptionKeyFailsWithoutEchoingIt(t *testing.T) {
	m := newMocks()
	a := testArgs()
	bad := "dG9vLXNob3J0LXRlc3Qta2V5" // 18 bytes
	a.EncryptionKey = pulumi.ToSecret(pulumi.String(bad)).(pulumi.StringOutput)
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		_, err := NewKubeadm(ctx, "lab", a)
		return err
	}, pulumi.WithMocks("infralab", "lab", m))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster.encryptionKey")
	assert.NotContains(t, err.Error(), bad)
}

// With a bastion every phase reaches its node through the Proxmox host, and the jump host's key
// is as secret as the node key.
func TestBastionCarriesEveryCommand(t *testing.T) {
	a := testArgs()
	a.Bastion = &Bastion{Host: "pve.example.com", User: "root",
		PrivateKey: pulumi.ToSecret(pulumi.String(fakeSSHKey)).(pulumi.StringOutput)}
	r := run(t, a, Scripts())
	assert.NotEmpty(t, r.m.commands())
	for name, c := range r.m.commands() {
		conn := c.args.Inputs["connection"]
		assert.True(t, conn.IsSecret(), "%s connection must be secret", name)
		proxy := conn.SecretValue().Element.ObjectValue()["proxy"]
		if assert.True(t, proxy.IsObject(), "%s has no proxy", name) {
			p := proxy.ObjectValue()
			assert.Equal(t, "pve.example.com", p["host"].StringValue(), name)
			assert.Equal(t, "root", p["user"].StringValue(), name)
			// Bounded explicitly: the provider's defaults would retry an unreachable jump host for minutes.
			assert.Equal(t, float64(bastionDialErrorLimit), p["dialErrorLimit"].NumberValue(), name)
			assert.Equal(t, float64(bastionPerDialTimeoutSeconds), p["perDialTimeout"].NumberValue(), name)
			assert.LessOrEqual(t, (bastionDialErrorLimit+1)*bastionPerDialTimeoutSeconds, 60, "a dead jump host must fail within a minute")
		}
	}
	a.Bastion = &Bastion{Host: "pve.example.com"}
	assert.ErrorContains(t, a.Validate(), "cluster.bastion")
}

// The workers' token is deleted by a final phase on the control plane, once every node is Ready,
// from its ID alone, which travels only on the secret stdin.
func TestDeleteJoinTokenRunsLastWithTheTokenIDOnly(t *testing.T) {
	names := PhaseNames()
	// Only node-versions, a report, comes after it.
	require.Equal(t, PhaseNodeVersions, names[len(names)-1], "node-versions reports last")
	require.Equal(t, PhaseDeleteJoinToken, names[len(names)-2], "delete-join-token must be the last bootstrap phase")
	require.Equal(t, PhaseWaitNodesReady, names[len(names)-3], "delete-join-token must run after wait-nodes-ready")

	r := run(t, testArgs(), Scripts())
	c := r.m.get(t, "lab-delete-join-token")
	assert.Equal(t, "lab", c.parent)
	assert.Equal(t, []string{"lab-join-token", "lab-wait-nodes-ready"}, depSet(c))
	create := c.args.Inputs["create"].StringValue()
	assert.Contains(t, create, "PHASE='delete-join-token'")
	assert.Contains(t, create, "kubeadm token delete", "the script is the one sent")
	assert.Contains(t, create, "sudo -n env -i ", "runs as root with a clean environment")
	assert.Equal(t, "10.10.10.10", c.args.Inputs["connection"].SecretValue().Element.ObjectValue()["host"].StringValue(), "runs on the control plane")

	stdin := c.args.Inputs["stdin"]
	require.True(t, stdin.IsSecret(), "the token ID travels only on the secret stdin")
	assert.Equal(t, strings.Split(fakeToken, ".")[0], stdin.SecretValue().Element.StringValue(), "stdin is the token ID, never the secret half")
	assert.Equal(t, "stderr", c.args.Inputs["logging"].StringValue(), "stdout of a command reading a secret is not logged")
	assertNoPlainSecret(t, "lab-delete-join-token.inputs", resource.NewObjectProperty(c.args.Inputs))
	for _, v := range c.args.Inputs["triggers"].ArrayValue() {
		assert.NotContains(t, triggerText(v), "abcdef", "the token ID must not be a trigger, not even a secret one")
	}
}

// A second `pulumi up` after a success must show no change: every input of every command is the
// same when the program runs again (no clock, no random value).
func TestSecondRunDeclaresIdenticalInputs(t *testing.T) {
	a, b := run(t, testArgs(), Scripts()), run(t, testArgs(), Scripts())
	first, second := a.m.commands(), b.m.commands()
	require.Equal(t, len(first), len(second))
	for name, c := range first {
		assert.True(t, c.args.Inputs.DeepEquals(second[name].args.Inputs), "%s: inputs differ between two runs", name)
	}
}

// A KubeletConfiguration change must reach every node: the control plane rewrites its own
// config.yaml and re-uploads the ConfigMaps (kubeadm-init), each worker fetches it (join-worker).
// Nothing else runs again.
func TestKubeletConfigChangeRerunsInitAndEveryJoinOnly(t *testing.T) {
	base := triggersByCommand(run(t, testArgs(), Scripts()))
	changed := testArgs()
	changed.PodPIDsLimit = 2048
	after := triggersByCommand(run(t, changed, Scripts()))
	require.Equal(t, len(base), len(after))
	for name, tr := range base {
		if name == "lab-kubeadm-init" || strings.HasPrefix(name, "lab-join-worker-") {
			assert.NotEqual(t, tr, after[name], "%s must run again when the kubelet config changes", name)
			assert.Contains(t, after[name], "KUBELET_CONFIG_SHA256=", name)
		} else {
			assert.Equal(t, tr, after[name], "%s must not run again for a kubelet config change", name)
		}
	}
}

func prepareBody(t *testing.T) []byte {
	t.Helper()
	body, err := fs.ReadFile(Scripts(), "prepare-node.sh")
	require.NoError(t, err)
	return body
}
