package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/infralab/infralab/internal/testenv"
)

// scriptLibs are the helpers b.run puts in front of a script besides lib.sh (phases.go,
// upgrade.go), for the tests that run scripts as shipped.
func scriptLibs(script string) []string {
	switch {
	case script == "prepare-node.sh" || strings.HasPrefix(script, "upgrade-"):
		return []string{upgradeLib}
	case script == "fetch-kubeconfig.sh" || script == "join-token.sh":
		return []string{sealLib}
	}
	return nil
}

// upgradePaths: from, to, and the words the refusal must hold ("" = allowed).
var upgradePaths = []struct{ from, to, refusal string }{
	{"1.35.4", "1.35.4", ""},
	{"1.35.4", "1.35.9", ""},
	{"1.34.12", "1.35.4", ""},
	{"1.34.12", "1.35.0", ""},
	{"1.34.12", "1.36.0", "skips 1.35"},
	{"1.33.1", "1.36.2", "skips 1.34"},
	{"1.35.4", "1.35.3", "downgrade"},
	{"1.35.4", "1.34.12", "downgrade"},
	{"1.35.4", "2.0.0", "major"},
}

func TestUpgradeProblemAllowsOneMinorOrAnyPatchUpwards(t *testing.T) {
	for _, c := range upgradePaths {
		got := UpgradeProblem(c.from, c.to)
		if c.refusal == "" {
			assert.Empty(t, got, "%s -> %s", c.from, c.to)
			continue
		}
		assert.Contains(t, got, c.refusal, "%s -> %s", c.from, c.to)
	}
	// The path to take is spelled out, minor by minor.
	assert.Contains(t, UpgradeProblem("1.33.1", "1.36.2"), "set it to 1.34.<newest patch>, run pulumi up, then 1.35.<newest patch>, run pulumi up, then 1.36.2")
	assert.Contains(t, UpgradeProblem("1.35.4", "1.34.12"), "set it back to 1.35.4")
}

// The nodes check the same rule again (upgrade-lib.sh, run here by bash): Go and shell agree.
func TestUpgradePathInTheScriptsAgreesWithGo(t *testing.T) {
	lib, err := loadScript(Scripts(), upgradeLib)
	require.NoError(t, err)
	for _, c := range upgradePaths {
		out, err := exec.Command("bash", "-c", lib+"\nupgrade_path \"$1\" \"$2\"", "test", c.from, c.to).CombinedOutput()
		if c.refusal == "" {
			assert.NoError(t, err, "%s -> %s: %s", c.from, c.to, out)
			assert.Empty(t, string(out))
			continue
		}
		assert.Error(t, err, "%s -> %s must be refused", c.from, c.to)
		assert.Contains(t, string(out), c.refusal, "%s -> %s", c.from, c.to)
	}
}

// A path kubeadm cannot take is refused by Validate, with the field path, before the component
// or any command is registered.
func TestSkippedMinorIsRefusedBeforeAnyResource(t *testing.T) {
	a := testArgs()
	a.RunningVersion = "1.34.12"
	a.KubernetesVersion = "1.36.0"
	a.CalicoVersion = "v3.32.0" // unknown range: only the path is at fault
	m := newMocks()
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		_, err := newKubeadm(ctx, "lab", a, Scripts())
		return err
	}, pulumi.WithMocks("infralab", "lab", m))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster.kubernetesVersion: the cluster runs 1.34.12: 1.34.12 to 1.36.0 skips 1.35.<newest patch>")
	assert.Empty(t, m.res, "nothing may be registered for a refused upgrade")

	a.RunningVersion = "1.34.12"
	a.KubernetesVersion = "1.35.4"
	a.CalicoVersion = DefaultCalicoVersion
	assert.NoError(t, a.Validate())
	a.RunningVersion = "1.35"
	assert.ErrorContains(t, a.Validate(), "cluster.runningVersion")
}

func TestCalicoMustSupportTheTargetMinor(t *testing.T) {
	a := testArgs()
	a.KubernetesVersion = "1.36.1"
	err := a.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster.kubernetesVersion: Calico v3.31.0 supports Kubernetes 1.32 to 1.35, not 1.36.1")
	// The precheck gets the same range.
	r := run(t, testArgs(), Scripts())
	assert.Contains(t, r.m.get(t, "lab-upgrade-precheck").args.Inputs["create"].StringValue(), "CALICO_K8S_MINORS='32 35'")
}

// Changing the version replaces exactly the commands that must run for an upgrade (a trigger
// change is a replacement, which runs create: rerun_test.go), and cert-renewal, whose new stdout
// then re-fetches the kubeconfig: kubeadm upgrade apply renewed admin.conf.
func TestVersionChangeRunsTheUpgradeAndRefreshesTheKubeconfig(t *testing.T) {
	before := run(t, testArgs(), Scripts())
	b := testArgs()
	b.KubernetesVersion = "1.35.5"
	after := run(t, b, Scripts())
	old, neu := before.m.commands(), after.m.commands()
	require.Equal(t, len(old), len(neu))
	runs := map[string]bool{}
	for name, c := range neu {
		if providerRun(old[name].args.Inputs, c.args.Inputs) == c.args.Inputs["create"].StringValue() {
			runs[phaseOf(t, c)] = true
		}
	}
	for _, p := range []string{PhasePrepareNode, PhaseUpgradePrecheck, PhaseUpgradeControlPlane, PhaseKubeadmInit, PhaseCertRenewal,
		PhaseUpgradeDrain, PhaseUpgradeNode, PhaseUpgradeUncordon, PhaseJoinWorker, PhaseNodeVersions} {
		assert.True(t, runs[p], "phase %s must run for a new version", p)
	}
	for _, p := range []string{PhaseWaitSSH, PhaseCalico, PhaseJoinToken, PhaseDeleteJoinToken, PhaseRemoveNode} {
		assert.False(t, runs[p], "phase %s has nothing to do with the version", p)
	}
	// fetch-kubeconfig's triggers hold cert-renewal's stdout, the earliest expiry after the run.
	fetch := after.m.get(t, "lab-fetch-kubeconfig")
	assert.Contains(t, fetch.deps, "lab-cert-renewal")
	var trig []string
	for _, v := range fetch.args.Inputs["triggers"].ArrayValue() {
		trig = append(trig, triggerText(v))
	}
	assert.Contains(t, trig, "certificatesNotAfter=ok", "the mock's cert-renewal stdout must be a trigger of fetch-kubeconfig")
}

func TestNodeVersionsAreRecordedInTheOutputs(t *testing.T) {
	got := map[string]any{}
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		a, n := versionsOutputs(pulumi.String(`{"apiServer":"1.35.4","nodes":{"cp-1":"1.35.4","worker-1":"1.34.12"}}`).ToStringOutput())
		bad, badNodes := versionsOutputs(pulumi.String("ok").ToStringOutput())
		for k, o := range map[string]pulumi.Output{"api": a, "nodes": n, "bad": bad, "badNodes": badNodes} {
			res, err := internals.UnsafeAwaitOutput(ctx.Context(), o)
			if err != nil {
				return err
			}
			got[k] = res.Value
		}
		return nil
	}, pulumi.WithMocks("infralab", "lab", newMocks()))
	require.NoError(t, err)
	assert.Equal(t, "1.35.4", got["api"])
	assert.Equal(t, map[string]string{"cp-1": "1.35.4", "worker-1": "1.34.12"}, got["nodes"])
	assert.Equal(t, "", got["bad"])
	assert.Equal(t, map[string]string{}, got["badNodes"])
}

// fakeClusterKubectl keeps nodes in $FAKE: node-N-version, node-N-ready, node-N-drained
// (the annotation), node-N-cordoned; every call is logged.
const fakeClusterKubectl = `f=${FAKE}
echo "kubectl $*" >>"${f}/calls"
node=${3:-}
case "$1 $2" in
"get node")
	[[ -e "${f}/node-${node}-version" ]] || { echo "Error from server (NotFound): nodes \"${node}\" not found" >&2; exit 1; }
	case "$*" in
	*kubeletVersion*) cat "${f}/node-${node}-version" ;;
	*Ready*) cat "${f}/node-${node}-ready" 2>/dev/null || echo True ;;
	*upgrade-drained*) cat "${f}/node-${node}-drained" 2>/dev/null || true ;;
	esac
	exit 0
	;;
"annotate --overwrite") echo "${5#*=}" >"${f}/node-${4}-drained"; exit 0 ;;
"annotate node") rm -f "${f}/node-${3}-drained"; exit 0 ;;
esac
case "$1" in
drain) [[ -e "${f}/drain-fails" ]] && { echo "error when evicting pods/\"api-0\": Cannot evict pod as it would violate the pod's disruption budget." >&2; exit 1; }
	touch "${f}/node-$2-cordoned" ;;
uncordon) rm -f "${f}/node-$2-cordoned" ;;
esac
exit 0
`

const adminConfSetup = "mkdir -p /etc/kubernetes && echo admin >/etc/kubernetes/admin.conf"

// upgrade-drain and upgrade-uncordon run as shipped against a stateful kubectl: a worker at the
// old version is annotated, drained with the PDB-respecting flags, then uncordoned once Ready at
// the new version; a second run of either does nothing; a failed drain says how to resume.
func TestWorkerDrainAndUncordonResumeAndRespectBudgets(t *testing.T) {
	n := newFakeNodeWith(t, map[string]string{"kubectl": fakeClusterKubectl})
	env := map[string]string{"PHASE": PhaseUpgradeDrain, "NODE_NAME": "worker-1", "KUBERNETES_VERSION": "1.35.4", "DRAIN_TIMEOUT": "300"}
	uncordonEnv := map[string]string{"PHASE": PhaseUpgradeUncordon, "NODE_NAME": "worker-1", "KUBERNETES_VERSION": "1.35.4", "NODE_READY_TIMEOUT": "30"}

	// A new cluster: nothing to drain, nothing to uncordon.
	out, log, err := n.run("upgrade-drain.sh", env, "", adminConfSetup)
	require.NoError(t, err, log)
	assert.Contains(t, out, "worker-1 has not joined yet")
	assert.NotContains(t, n.calls(), "kubectl drain")

	n.set("node-worker-1-version", "v1.34.12")
	n.set("drain-fails", "")
	_, log, err = n.run("upgrade-drain.sh", env, "", adminConfSetup)
	require.Error(t, err)
	assert.Contains(t, log, "drain of worker-1 did not finish within 300s (a PodDisruptionBudget that allows no eviction? kubectl get pdb -A)")
	assert.Contains(t, log, "pulumi up again to resume")
	assert.Contains(t, n.calls(), "kubectl drain worker-1 --ignore-daemonsets --delete-emptydir-data --timeout=300s")

	require.NoError(t, removeFake(n, "drain-fails"))
	out, log, err = n.run("upgrade-drain.sh", env, "", adminConfSetup)
	require.NoError(t, err, log)
	assert.Equal(t, "worker-1 drained\n", out)
	assert.Contains(t, log, "worker-1: draining for the upgrade 1.34.12 -> 1.35.4")
	assert.FileExists(t, filepath.Join(n.fake, "node-worker-1-cordoned"))

	// upgrade-node has run: the kubelet reports the new version.
	n.set("node-worker-1-version", "v1.35.4")
	out, log, err = n.run("upgrade-uncordon.sh", uncordonEnv, "", adminConfSetup)
	require.NoError(t, err, log)
	assert.Equal(t, "worker-1 Ready at 1.35.4\n", out)
	assert.Contains(t, n.calls(), "kubectl uncordon worker-1")
	assert.NoFileExists(t, filepath.Join(n.fake, "node-worker-1-cordoned"))
	assert.NoFileExists(t, filepath.Join(n.fake, "node-worker-1-drained"))

	// Re-run after the upgrade (a resumed `up`): no drain, and no uncordon of a node this did
	// not cordon (an operator's cordon stays).
	out, log, err = n.run("upgrade-drain.sh", env, "", adminConfSetup)
	require.NoError(t, err, log)
	assert.Equal(t, "worker-1 already runs 1.35.4: no drain\n", out)
	_, log, err = n.run("upgrade-uncordon.sh", uncordonEnv, "", adminConfSetup)
	require.NoError(t, err, log)
	assert.NotContains(t, n.calls(), "uncordon")

	// A worker two minors behind is refused with the path before any drain.
	n.set("node-worker-1-version", "v1.33.7")
	_, log, err = n.run("upgrade-drain.sh", env, "", adminConfSetup)
	require.Error(t, err)
	assert.Contains(t, log, "worker-1 runs 1.33.7: 1.33.7 to 1.35.4 skips 1.34")
	assert.NotContains(t, n.calls(), "kubectl drain")
}

// The upgrade scripts use flags of the real binaries: checked against kubeadm and kubectl v1.35.4
// (make tools), and the previous minor's kubeadm (make test-tools) is the one the box starts at.
func TestUpgradeCommandsExistInTheRealBinaries(t *testing.T) {
	kubeadm := testenv.Tool(t, "kubeadm")
	kubectl := testenv.Tool(t, "kubectl")
	help := func(bin string, args ...string) string {
		out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
		require.NoError(t, err, "%s %v: %s", bin, args, out)
		return string(out)
	}
	apply := help(kubeadm, "upgrade", "apply")
	for _, f := range []string{"--yes", "--patches", "--certificate-renewal"} {
		assert.Contains(t, apply, f, "kubeadm upgrade apply")
	}
	assert.Contains(t, help(kubeadm, "upgrade", "plan"), "[version]")
	assert.Contains(t, help(kubeadm, "upgrade", "node"), "--patches")
	drain := help(kubectl, "drain")
	for _, f := range []string{"--ignore-daemonsets", "--delete-emptydir-data", "--timeout"} {
		assert.Contains(t, drain, f, "kubectl drain")
	}

	prev := testenv.PinnedVersions(t)["KUBERNETES_PREVIOUS_VERSION"]
	require.NotEmpty(t, prev, "hack/versions.env: KUBERNETES_PREVIOUS_VERSION")
	assert.Empty(t, UpgradeProblem(prev, testenv.PinnedVersions(t)["KUBERNETES_VERSION"]), "the previous version must upgrade to the pinned one in one step")
	bin := filepath.Join(testenv.CacheDir(), "tools", "kubernetes-v"+prev, "kubeadm")
	out, err := exec.Command(bin, "version", "-o", "short").CombinedOutput()
	if err != nil && !testenv.Required() {
		t.Skipf("no kubeadm v%s (hack/tools.sh kube-previous): %v", prev, err)
	}
	require.NoError(t, err, "%s: %s (make test-tools builds it)", bin, out)
	assert.Equal(t, "v"+prev, strings.TrimSpace(string(out)))
}

func removeFake(n *fakeNode, name string) error { return os.Remove(filepath.Join(n.fake, name)) }

// fakeApt keeps packages in $FAKE/pkg-NAME as "STATUS VERSION" ("hold ok installed 1.34.12-1.1")
// and answers dpkg-query, apt-get install, apt-mark and apt-cache from it; the repository has
// every upstream version with package revision -1.1.
var fakeApt = map[string]string{
	"dpkg-query": `pkg=${*: -1}
fmt=""
for a in "$@"; do case "$a" in -f=*) fmt=${a#-f=} ;; esac; done
read -r s1 s2 s3 v <"${FAKE}/pkg-${pkg}" 2>/dev/null || exit 1
out=${fmt//'${Status}'/${s1} ${s2} ${s3}}
printf '%s' "${out//'${Version}'/${v}}"
`,
	"dpkg": "exit 0\n",
	"apt-get": `echo "apt-get $*" >>"${FAKE}/calls"
[[ " $* " == *" install "* ]] || exit 0
for a in "$@"; do
	[[ "$a" == *=* && "$a" != -* ]] || continue
	echo "install ok installed ${a#*=}" >"${FAKE}/pkg-${a%%=*}"
done
`,
	"apt-mark": `echo "apt-mark $*" >>"${FAKE}/calls"
op=$1; shift
for p in "$@"; do
	read -r _ s2 s3 v <"${FAKE}/pkg-${p}"
	[[ "$op" == hold ]] && echo "hold ${s2} ${s3} ${v}" >"${FAKE}/pkg-${p}" || echo "install ${s2} ${s3} ${v}" >"${FAKE}/pkg-${p}"
done
`,
	"apt-cache": `v=$(cat "${FAKE}/repo-version")
case "$1" in
madison) echo " $2 | ${v}-1.1 | https://pkgs.k8s.io/core:/stable:/v1.35/deb  Packages" ;;
policy) echo "$2:"; echo "  Candidate: ${v}-1.1"; echo "     ${v}-1.1 500" ;;
esac
`,
	"curl":  "out=\"\"; while (($#)); do [[ \"$1\" == -o ]] && out=$2; shift; done; echo key >\"${out}\"\n",
	"gpg":   "out=\"\"; while (($#)); do [[ \"$1\" == -o ]] && out=$2; shift; done; echo keyring >\"${out}\"\n",
	"sleep": "exit 0\n",
	"kubeadm": `echo "kubeadm $*" >>"${FAKE}/calls"
[[ "$1 $2" == "upgrade node" && -e "${FAKE}/fail-upgrade-node" ]] && { echo "[upgrade] error: boom"; exit 1; }
exit 0
`,
}

// upgrade-node as shipped, on a worker at 1.34.12: a failure of `kubeadm upgrade node` stops with
// the node drained and says how to resume; the next run resumes without reinstalling what is
// done (kubeadm), finishes (kubelet, kubectl, held, kubelet restarted); a third run does nothing.
func TestUpgradeNodeResumesAndHoldsThePackages(t *testing.T) {
	tools := map[string]string{}
	for k, v := range fakeApt {
		tools[k] = v
	}
	n := newFakeNodeWith(t, tools)
	for _, p := range []string{"kubelet", "kubeadm", "kubectl"} {
		n.set("pkg-"+p, "hold ok installed 1.34.12-1.1")
	}
	n.set("repo-version", "1.35.4")
	n.set("fail-upgrade-node", "")
	env := map[string]string{"PHASE": PhaseUpgradeNode, "NODE_NAME": "worker-1", "KUBERNETES_VERSION": "1.35.4", "STATE_DIR": stateDir}
	joined := "mkdir -p /etc/kubernetes && echo kubeconfig >/etc/kubernetes/kubelet.conf"

	_, log, err := n.run("upgrade-node.sh", env, "", joined)
	require.Error(t, err)
	assert.Contains(t, log, "kubeadm upgrade node failed on worker-1")
	assert.Contains(t, log, "The node stays drained; fix the cause and pulumi up again to resume")
	assert.Contains(t, n.calls(), "apt-get -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3 -q -y install --allow-change-held-packages --no-install-recommends -o Dpkg::Options::=--force-confold kubeadm=1.35.4-1.1")
	assert.Contains(t, n.calls(), "apt-mark unhold kubeadm")
	assert.NotContains(t, n.calls(), "kubelet=")
	list, _ := n.file("/etc/apt/sources.list.d/kubernetes.list")
	assert.Contains(t, list, "https://pkgs.k8s.io/core:/stable:/v1.35/deb/ /", "the repository of the new minor")

	require.NoError(t, removeFake(n, "fail-upgrade-node"))
	out, log, err := n.run("upgrade-node.sh", env, "", joined)
	require.NoError(t, err, log)
	assert.Equal(t, "worker-1 upgraded to 1.35.4\n", out)
	calls := n.calls()
	assert.NotContains(t, calls, "kubeadm=1.35.4", "kubeadm is already at the version: not installed again")
	assert.Contains(t, calls, "kubeadm upgrade node")
	assert.Contains(t, calls, "kubelet=1.35.4-1.1 kubectl=1.35.4-1.1")
	assert.Contains(t, calls, "systemctl restart kubelet")
	for _, p := range []string{"kubelet", "kubeadm", "kubectl"} {
		st, _ := os.ReadFile(filepath.Join(n.fake, "pkg-"+p))
		assert.Equal(t, "hold ok installed 1.35.4-1.1\n", string(st), p)
	}
	assert.Regexp(t, `\[upgrade-node\] worker-1: kubelet 1.35.4 running \([0-9]+s\)`, log, "progress with the elapsed time")

	out, log, err = n.run("upgrade-node.sh", env, "", joined)
	require.NoError(t, err, log)
	assert.Equal(t, "worker-1 already upgraded to 1.35.4\n", out)
	assert.Empty(t, n.calls())

	// A node not joined yet: join-worker installs the version.
	out, log, err = n.run("upgrade-node.sh", env, "", "rm -f /etc/kubernetes/kubelet.conf")
	require.NoError(t, err, log)
	assert.Contains(t, out, "has not joined yet")
}

// upgrade-control-plane as shipped, against fake apt and a kubectl whose API server version is
// $FAKE/api-version and whose node reports the installed kubelet package: a cut-off run (apply
// done, kubelet not yet) resumes without a second `kubeadm upgrade apply`; a finished one does
// nothing.
func TestUpgradeControlPlaneAppliesOnceAndResumes(t *testing.T) {
	tools := map[string]string{}
	for k, v := range fakeApt {
		tools[k] = v
	}
	tools["kubectl"] = `f=${FAKE}
case "$*" in
"version -o json") printf '{"serverVersion": {"gitVersion": "v%s"}}\n' "$(cat "${f}/api-version")" ;;
"get --raw=/readyz") ;;
*kubeletVersion*) read -r _ _ _ v <"${f}/pkg-kubelet"; echo "v${v%%-*}" ;;
*Ready*) echo True ;;
esac
exit 0
`
	tools["kubeadm"] = `f=${FAKE}
echo "kubeadm $*" >>"${f}/calls"
case "$1 $2" in
"version -o") read -r _ _ _ v <"${f}/pkg-kubeadm"; echo "v${v%%-*}" ;;
"upgrade apply")
	[[ -e "${f}/cut-after-apply" ]] && rm -f "${f}/cut-after-apply" && kill_after=1
	mkdir -p /etc/kubernetes/manifests && echo "    image: registry.k8s.io/kube-apiserver:$3" >/etc/kubernetes/manifests/kube-apiserver.yaml
	echo "${3#v}" >"${f}/api-version"
	[[ -n "${kill_after:-}" ]] && exit 1
	;;
esac
exit 0
`
	n := newFakeNodeWith(t, tools)
	for _, p := range []string{"kubelet", "kubeadm", "kubectl"} {
		n.set("pkg-"+p, "hold ok installed 1.34.12-1.1")
	}
	n.set("repo-version", "1.35.4")
	n.set("api-version", "1.34.12")
	setup := "mkdir -p /etc/kubernetes/manifests && echo admin >/etc/kubernetes/admin.conf && echo '    image: registry.k8s.io/kube-apiserver:v1.34.12' >/etc/kubernetes/manifests/kube-apiserver.yaml"
	env := map[string]string{"PHASE": PhaseUpgradeControlPlane, "NODE_NAME": "cp-1", "KUBERNETES_VERSION": "1.35.4", "STATE_DIR": stateDir, "NODE_READY_TIMEOUT": "30"}

	// apply went through but the run failed right after (as a cut SSH session would leave it).
	n.set("cut-after-apply", "")
	_, log, err := n.run("upgrade-control-plane.sh", env, "", setup)
	require.Error(t, err)
	assert.Contains(t, log, "kubeadm upgrade apply v1.35.4 failed on cp-1")
	calls := n.calls()
	assert.Contains(t, calls, "kubeadm upgrade plan v1.35.4")
	assert.Contains(t, calls, "kubeadm upgrade apply v1.35.4 -y --patches /etc/kubernetes/infralab/patches")

	out, log, err := n.run("upgrade-control-plane.sh", env, "", "")
	require.NoError(t, err, log)
	assert.Equal(t, "control plane cp-1 runs Kubernetes 1.35.4\n", out)
	calls = n.calls()
	assert.NotContains(t, calls, "upgrade apply", "the API server already runs 1.35.4: no second apply")
	assert.Contains(t, log, "kubeadm upgrade apply v1.35.4 already done")
	assert.Contains(t, calls, "kubelet=1.35.4-1.1 kubectl=1.35.4-1.1")
	assert.Contains(t, calls, "systemctl restart kubelet")

	out, log, err = n.run("upgrade-control-plane.sh", env, "", "")
	require.NoError(t, err, log)
	assert.Equal(t, "control plane cp-1 already runs Kubernetes 1.35.4\n", out)
	assert.Empty(t, n.calls())

	// A skipped minor is refused before any package moves.
	n.set("api-version", "1.33.3")
	_, log, err = n.run("upgrade-control-plane.sh", map[string]string{"PHASE": PhaseUpgradeControlPlane, "NODE_NAME": "cp-1", "KUBERNETES_VERSION": "1.35.4", "STATE_DIR": stateDir, "NODE_READY_TIMEOUT": "30"}, "", "")
	require.Error(t, err)
	assert.Contains(t, log, "the cluster runs 1.33.3: 1.33.3 to 1.35.4 skips 1.34")
}
