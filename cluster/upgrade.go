package cluster

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Kubernetes upgrades. Changing KubernetesVersion by a patch or by one minor upgrades the running
// cluster the way kubeadm documents it (kubeadm v1.35 "Upgrading kubeadm clusters"), as ordered
// phases, each an idempotent remote.Command whose KUBERNETES_VERSION input (a trigger) makes it
// run again for a new version:
//
//	upgrade-precheck       control plane: version path, kubelet skew, Calico support, nodes Ready
//	upgrade-control-plane  control plane: repository of the minor, kubeadm (unhold, install, hold),
//	                       `kubeadm upgrade plan`, `kubeadm upgrade apply`, kubelet and kubectl,
//	                       kubelet restart
//	then per worker, one at a time, each waiting for the previous worker:
//	upgrade-drain-W        control plane: `kubectl drain` (evictions honour PodDisruptionBudgets)
//	upgrade-node-W         worker: kubeadm, `kubeadm upgrade node`, kubelet and kubectl, restart
//	upgrade-uncordon-W     control plane: wait until W is Ready at the new version, uncordon
//	node-versions          control plane: the version each node runs, recorded in the state
//
// On a new cluster (or a new worker) every upgrade phase finds nothing to upgrade and says so;
// kubeadm-init and join-worker, which wait for them, install the requested version. Every script
// checks what is done first (versions running, packages held, a drain annotation), so a run cut
// off half-way resumes on the next `pulumi up`.
const (
	PhaseUpgradePrecheck     = "upgrade-precheck"
	PhaseUpgradeControlPlane = "upgrade-control-plane"
	PhaseUpgradeDrain        = "upgrade-drain"
	PhaseUpgradeNode         = "upgrade-node"
	PhaseUpgradeUncordon     = "upgrade-uncordon"
	PhaseNodeVersions        = "node-versions"
)

// upgradeLib holds the package, repository and version-path helpers of the upgrade phases.
const upgradeLib = "upgrade-lib.sh"

// calicoKubernetesMinors: the Kubernetes minors each Calico minor supports. Calico v3.31: its
// requirements page (docs.tigera.io/calico/3.31/getting-started/kubernetes/requirements) lists
// the minors it is tested against; v1.35 was added to it after the release (projectcalico
// discussion #11717: "v1.35 has been added", the e2e runs float stable, stable-1, stable-2).
// The lower bound 1.32 follows the four-minor window the same thread quotes for v3.29
// (v1.29-v1.32). A Calico minor missing here is not checked (a warning in the precheck).
var calicoKubernetesMinors = map[string][2]int{
	"v3.31": {32, 35},
}

// calicoSupport is the first and last Kubernetes minor a Calico version supports; !ok if unknown.
func calicoSupport(calicoVersion string) (lo, hi int, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(calicoVersion, "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	r, ok := calicoKubernetesMinors["v"+parts[0]+"."+parts[1]]
	return r[0], r[1], ok
}

// parseK8sVersion reads x.y.z (an optional leading v).
func parseK8sVersion(v string) (major, minor, patch int, ok bool) {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return 0, 0, 0, false
		}
		n[i] = x
	}
	return n[0], n[1], n[2], true
}

// UpgradeProblem says why a cluster running `from` cannot go to `to` in one `pulumi up`, with the
// path to take, or "" when it can: the same version, any patch of the same minor upwards, or any
// patch of the next minor (kubeadm upgrades one minor at a time: its upgrade plan refuses a
// skipped minor, cmd/kubeadm/app/phases/upgrade/policy.go EnforceVersionPolicies). The same rule
// is in upgrade-lib.sh (upgrade_path), which the nodes check again.
func UpgradeProblem(from, to string) string {
	fM, fm, fp, ok1 := parseK8sVersion(from)
	tM, tm, tp, ok2 := parseK8sVersion(to)
	switch {
	case !ok1 || !ok2:
		return fmt.Sprintf("cannot compare %q with %q (want x.y.z)", from, to)
	case tM != fM:
		return fmt.Sprintf("%s to %s changes the major version; kubeadm cannot do that", from, to)
	case tm < fm || (tm == fm && tp < fp):
		return fmt.Sprintf("%s to %s is a downgrade, which kubeadm does not support: set it back to %s (an older version means a rebuild and a restore, docs/runbooks/rebuild-from-bare-metal.md)", from, to, from)
	case tm > fm+1:
		var steps []string
		for m := fm + 1; m < tm; m++ {
			steps = append(steps, fmt.Sprintf("%d.%d.<newest patch>", fM, m))
		}
		return fmt.Sprintf("%s to %s skips %s: kubeadm upgrades one minor at a time; set it to %s, run pulumi up, then %s (docs/runbooks/upgrade-kubernetes.md)",
			from, to, strings.Join(steps, ", "), strings.Join(steps, ", run pulumi up, then "), to)
	}
	return ""
}

// validateUpgrade adds the problems of going from RunningVersion to KubernetesVersion.
func (a *KubeadmArgs) validateUpgrade(add func(field, format string, v ...any)) {
	_, tm, _, ok := parseK8sVersion(a.KubernetesVersion)
	if !ok {
		return // reported by Validate
	}
	if a.RunningVersion != "" {
		if msg := UpgradeProblem(a.RunningVersion, a.KubernetesVersion); msg != "" {
			add("kubernetesVersion", "the cluster runs %s: %s", a.RunningVersion, msg)
		}
	}
	if lo, hi, known := calicoSupport(a.CalicoVersion); known && (tm < lo || tm > hi) {
		add("kubernetesVersion", "Calico %s supports Kubernetes 1.%d to 1.%d, not %s: pick a version in that range or a Calico release that supports it (calicoVersion)",
			a.CalicoVersion, lo, hi, a.KubernetesVersion)
	}
}

func (a *KubeadmArgs) calicoMinors() string {
	if lo, hi, ok := calicoSupport(a.CalicoVersion); ok {
		return fmt.Sprintf("%d %d", lo, hi)
	}
	return ""
}

// ensureUpgradePrecheck runs before anything of an upgrade changes a node.
func (b *bootstrap) ensureUpgradePrecheck() error {
	var deps []pulumi.Resource
	for _, n := range b.args.nodes() {
		deps = append(deps, b.prepared[n.Name])
	}
	var err error
	b.upgradeCheck, err = b.run(step{
		name: b.resName(PhaseUpgradePrecheck, nil), phase: PhaseUpgradePrecheck, node: b.args.ControlPlane,
		script: "upgrade-precheck.sh", libs: []string{upgradeLib},
		env: map[string]string{
			"NODE_NAME": b.args.ControlPlane.Name, "KUBERNETES_VERSION": b.args.KubernetesVersion,
			"CALICO_VERSION": b.args.CalicoVersion, "CALICO_K8S_MINORS": b.args.calicoMinors(),
		},
		dependsOn: deps,
	})
	return err
}

func (b *bootstrap) ensureControlPlaneUpgrade() error {
	var err error
	b.upgradeCP, err = b.run(step{
		name: b.resName(PhaseUpgradeControlPlane, nil), phase: PhaseUpgradeControlPlane, node: b.args.ControlPlane,
		script: "upgrade-control-plane.sh", libs: []string{upgradeLib},
		env: b.args.PackageRepository.env(map[string]string{
			"NODE_NAME": b.args.ControlPlane.Name, "KUBERNETES_VERSION": b.args.KubernetesVersion, "STATE_DIR": stateDir,
			"NODE_READY_TIMEOUT": strconv.Itoa(b.args.nodeReadyTimeout()),
		}),
		dependsOn: []pulumi.Resource{b.upgradeCheck},
	})
	return err
}

// ensureWorkerUpgrades chains the workers: drain, upgrade and uncordon of one worker wait for the
// previous worker's uncordon, so at most one worker is out of service at a time. The first waits
// for kubeadm-init, which applies the new version's configuration on the control plane.
func (b *bootstrap) ensureWorkerUpgrades() error {
	prev := b.init
	for _, w := range b.args.Workers {
		var wID pulumi.Array
		if w.InstanceID != nil {
			wID = pulumi.Array{w.InstanceID}
		}
		env := map[string]string{"NODE_NAME": w.Name, "KUBERNETES_VERSION": b.args.KubernetesVersion}
		drain, err := b.run(step{
			name: b.resName(PhaseUpgradeDrain, &w), phase: PhaseUpgradeDrain, node: b.args.ControlPlane,
			script: "upgrade-drain.sh", libs: []string{upgradeLib},
			env:       withEnv(env, "DRAIN_TIMEOUT", strconv.Itoa(b.args.drainTimeout())),
			dependsOn: []pulumi.Resource{prev}, extraTriggers: wID,
		})
		if err != nil {
			return err
		}
		node, err := b.run(step{
			name: b.resName(PhaseUpgradeNode, &w), phase: PhaseUpgradeNode, node: w,
			script: "upgrade-node.sh", libs: []string{upgradeLib},
			env:       b.args.PackageRepository.env(withEnv(env, "STATE_DIR", stateDir)),
			dependsOn: []pulumi.Resource{drain, b.prepared[w.Name]},
		})
		if err != nil {
			return err
		}
		uncordon, err := b.run(step{
			name: b.resName(PhaseUpgradeUncordon, &w), phase: PhaseUpgradeUncordon, node: b.args.ControlPlane,
			script: "upgrade-uncordon.sh", libs: []string{upgradeLib},
			env:       withEnv(env, "NODE_READY_TIMEOUT", strconv.Itoa(b.args.nodeReadyTimeout())),
			dependsOn: []pulumi.Resource{node}, extraTriggers: wID,
		})
		if err != nil {
			return err
		}
		b.workerUpgraded[w.Name] = uncordon
		prev = uncordon
	}
	return nil
}

// ensureNodeVersions reads the version every node runs once all are Ready; its stdout is the
// component's NodeVersions output (JSON: node name to kubelet version, plus the API server's).
func (b *bootstrap) ensureNodeVersions() error {
	var names []string
	var vmIDs pulumi.Array
	for _, n := range b.args.nodes() {
		names = append(names, n.Name)
		if n.InstanceID != nil && n.Name != b.args.ControlPlane.Name {
			vmIDs = append(vmIDs, n.InstanceID)
		}
	}
	var err error
	b.nodeVersions, err = b.run(step{
		name: b.resName(PhaseNodeVersions, nil), phase: PhaseNodeVersions, node: b.args.ControlPlane,
		script: "node-versions.sh",
		env:    map[string]string{"EXPECTED_NODES": strings.Join(names, " "), "KUBERNETES_VERSION": b.args.KubernetesVersion},
		// After the last worker's uncordon too: on a cluster without workers that is the
		// control plane's upgrade.
		dependsOn: []pulumi.Resource{b.nodesReady, b.upgradeCP}, extraTriggers: vmIDs,
	})
	return err
}

func withEnv(env map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range env {
		out[key] = val
	}
	return out
}

// workerUpgradeOf is what a worker's join waits for: that worker's upgrade (a new worker's is a
// no-op), so join-worker never meets a node still at the old version.
func (b *bootstrap) workerUpgradeOf(name string) []pulumi.Resource {
	if c, ok := b.workerUpgraded[name]; ok {
		return []pulumi.Resource{c}
	}
	return nil
}

// versionsOutputs reads node-versions' stdout: {"apiServer":"1.35.4","nodes":{"cp-1":"1.35.4"}}.
// Anything else (a mock, an older script) gives "" and an empty map rather than an error: the
// versions are a report, not an input of any phase.
func versionsOutputs(stdout pulumi.StringOutput) (pulumi.StringOutput, pulumi.StringMapOutput) {
	parsed := stdout.ApplyT(func(s string) nodeVersionsReport {
		var r nodeVersionsReport
		if json.Unmarshal([]byte(s), &r) != nil {
			return nodeVersionsReport{}
		}
		return r
	})
	api := parsed.ApplyT(func(r any) string { return r.(nodeVersionsReport).APIServer }).(pulumi.StringOutput)
	nodes := parsed.ApplyT(func(r any) map[string]string {
		if n := r.(nodeVersionsReport).Nodes; n != nil {
			return n
		}
		return map[string]string{}
	}).(pulumi.StringMapOutput)
	return api, nodes
}

type nodeVersionsReport struct {
	APIServer string            `json:"apiServer"`
	Nodes     map[string]string `json:"nodes"`
}
