package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/infralab/infralab/cluster/hardening"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Phase names; each is also the middle of its commands' resource names.
const (
	PhaseWaitSSH         = "wait-ssh"
	PhasePrepareNode     = "prepare-node"
	PhaseKubeadmInit     = "kubeadm-init"
	PhaseCertRenewal     = "cert-renewal"
	PhaseFetchKubeconfig = "fetch-kubeconfig"
	PhaseJoinToken       = "join-token"
	PhaseJoinWorker      = "join-worker"
	PhaseCalico          = "calico"
	PhaseWaitNodesReady  = "wait-nodes-ready"
	PhaseDeleteJoinToken = "delete-join-token"
	PhaseRemoveNode      = "remove-node"
)

type phase struct {
	name   string
	ensure func(*bootstrap) error
}

// phases is the whole bootstrap, in order. Each phase declares its commands with explicit
// dependencies on the commands it needs, so independent work (nodes, joins) runs in parallel.
func phases() []phase {
	return []phase{
		{PhaseWaitSSH, (*bootstrap).ensureReachable},
		{PhasePrepareNode, (*bootstrap).ensureNodesPrepared},
		{PhaseUpgradePrecheck, (*bootstrap).ensureUpgradePrecheck},
		{PhaseUpgradeControlPlane, (*bootstrap).ensureControlPlaneUpgrade},
		{PhaseKubeadmInit, (*bootstrap).ensureControlPlane},
		{PhaseCertRenewal, (*bootstrap).ensureCertRenewal},
		{PhaseFetchKubeconfig, (*bootstrap).fetchKubeconfig},
		{PhaseUpgradeNode, (*bootstrap).ensureWorkerUpgrades},
		{PhaseJoinToken, (*bootstrap).ensureJoinToken},
		{PhaseJoinWorker, (*bootstrap).ensureWorkersJoined},
		{PhaseRemoveNode, (*bootstrap).ensureNodeRemoval},
		{PhaseCalico, (*bootstrap).ensureCalico},
		{PhaseWaitNodesReady, (*bootstrap).waitNodesReady},
		{PhaseDeleteJoinToken, (*bootstrap).deleteJoinToken},
		{PhaseNodeVersions, (*bootstrap).ensureNodeVersions},
	}
}

// PhaseNames lists the phases in order (for docs and progress output).
func PhaseNames() []string {
	var names []string
	for _, p := range phases() {
		names = append(names, p.name)
	}
	return names
}

func (b *bootstrap) resName(phase string, n *Node) string {
	if n == nil {
		return b.name + "-" + phase
	}
	return b.name + "-" + phase + "-" + n.Name
}

// ensureReachable: SSH dial with up to 20 attempts (the provider backs off between them), then
// a bounded wait for cloud-init.
func (b *bootstrap) ensureReachable() error {
	for _, n := range b.args.nodes() {
		c, err := b.run(step{
			name: b.resName(PhaseWaitSSH, &n), phase: PhaseWaitSSH, node: n, script: "wait-ready.sh",
			env:            map[string]string{"NODE_NAME": n.Name, "CLOUD_INIT_TIMEOUT": strconv.Itoa(b.args.cloudInitTimeout())},
			dialErrorLimit: 20,
			dependsOn:      b.args.DependsOn,
		})
		if err != nil {
			return err
		}
		b.reachable[n.Name] = c
	}
	return nil
}

func (b *bootstrap) ensureNodesPrepared() error {
	for _, n := range b.args.nodes() {
		env := map[string]string{"NODE_NAME": n.Name, "KUBERNETES_VERSION": b.args.KubernetesVersion,
			"CONTAINERD_VERSION": b.args.containerdVersion(), "SANDBOX_IMAGE": b.args.sandboxImageRef()}
		for k, v := range b.args.imageRepositoryEnv() {
			env[k] = v
		}
		c, err := b.run(step{
			name: b.resName(PhasePrepareNode, &n), phase: PhasePrepareNode, node: n, script: "prepare-node.sh",
			libs: []string{"registry-hosts.sh", upgradeLib}, env: b.args.PackageRepository.env(env),
			dependsOn: []pulumi.Resource{b.reachable[n.Name]},
		})
		if err != nil {
			return err
		}
		b.prepared[n.Name] = c
	}
	return nil
}

func (b *bootstrap) ensureControlPlane() error {
	cp := b.args.ControlPlane
	kubeadmConfig, err := renderKubeadmConfig(b.args.clusterConfig())
	if err != nil {
		return fmt.Errorf("render kubeadm config: %w", err)
	}
	files, err := hardeningFiles()
	if err != nil {
		return err
	}
	patch, err := renderAPIServerPatch(files)
	if err != nil {
		return err
	}
	enc := b.args.EncryptionKey.ToStringOutput().ApplyT(func(k string) (string, error) {
		out, err := hardening.EncryptionConfig(k)
		if err != nil {
			return "", fmt.Errorf("cluster.encryptionKey: %w", err)
		}
		return string(out), nil
	}).(pulumi.StringOutput)
	kubeletHash, err := b.args.clusterConfig().kubeletSHA256()
	if err != nil {
		return err
	}
	b64 := func(p []byte) string { return base64.StdEncoding.EncodeToString(p) }
	b.init, err = b.run(step{
		name: b.resName(PhaseKubeadmInit, nil), phase: PhaseKubeadmInit, node: cp, script: "kubeadm-init.sh",
		env: map[string]string{
			"NODE_NAME":              cp.Name,
			"KUBERNETES_VERSION":     b.args.KubernetesVersion,
			"STATE_DIR":              stateDir,
			"KUBEADM_CONFIG_B64":     b64(kubeadmConfig),
			"APISERVER_PATCH_B64":    b64(patch),
			"HARDENING_DIR":          hardening.ConfigDir,
			"ENCRYPTION_CONFIG_PATH": hardening.EncryptionConfigPath,
			"AUDIT_POLICY_PATH":      hardening.AuditPolicyPath,
			"AUDIT_POLICY_B64":       b64(files[hardening.AuditPolicyPath]),
			"ADMISSION_CONFIG_PATH":  hardening.AdmissionConfigPath,
			"ADMISSION_CONFIG_B64":   b64(files[hardening.AdmissionConfigPath]),
			"AUTHN_CONFIG_PATH":      hardening.AuthnConfigPath,
			"AUTHN_CONFIG_B64":       b64(files[hardening.AuthnConfigPath]),
			"AUDIT_LOG_DIR":          hardening.AuditLogDir,
			"KUBELET_CONFIG_SHA256":  kubeletHash,
		},
		stdin: enc,
		// After an upgrade of the control plane, init applies the new version's configuration.
		dependsOn: []pulumi.Resource{b.prepared[cp.Name], b.upgradeCP},
	})
	return err
}

// fetchKubeconfig returns admin.conf, sealed (seal.go), for the component's Kubeconfig output.
func (b *bootstrap) fetchKubeconfig() error {
	var err error
	b.kubeconfig, err = b.run(step{
		name: b.resName(PhaseFetchKubeconfig, nil), phase: PhaseFetchKubeconfig, node: b.args.ControlPlane,
		script: "fetch-kubeconfig.sh", libs: []string{sealLib}, env: map[string]string{"STATE_DIR": stateDir},
		stdin: b.sealKeys(), secretStdout: true, dependsOn: []pulumi.Resource{b.init, b.certRenewal},
		// Fetched again when the stored one nears NotAfter (certs.go), and right after the
		// cert-renewal phase renewed admin.conf (its stdout, the earliest expiry, then changes).
		extraTriggers: pulumi.Array{b.generationTrigger(), pulumi.Sprintf("certificatesNotAfter=%s", b.certRenewal.Stdout)},
	})
	if err != nil {
		return err
	}
	b.adminConf = b.opened(PhaseFetchKubeconfig, b.kubeconfig)
	return nil
}

// ensureJoinToken makes one token for all workers. Its triggers include the worker list and
// their VM IDs, so adding or replacing a worker mints a fresh token instead of reusing one that
// delete-join-token already deleted (or that expired).
func (b *bootstrap) ensureJoinToken() error {
	if len(b.args.Workers) == 0 {
		return nil
	}
	var workers []string
	var vmIDs pulumi.Array
	for _, w := range b.args.Workers {
		workers = append(workers, w.Name+"/"+w.IP)
		if w.InstanceID != nil {
			vmIDs = append(vmIDs, w.InstanceID)
		}
	}
	var err error
	b.token, err = b.run(step{
		name: b.resName(PhaseJoinToken, nil), phase: PhaseJoinToken, node: b.args.ControlPlane, script: "join-token.sh",
		libs: []string{sealLib},
		env: map[string]string{
			"TOKEN_TTL": joinTokenTTL, "TOKEN_DESCRIPTION": joinTokenDescription,
			"WORKERS": strings.Join(workers, " "),
		},
		stdin: b.sealKeys(), secretStdout: true, dependsOn: []pulumi.Resource{b.init}, extraTriggers: vmIDs,
	})
	if err != nil {
		return err
	}
	b.joinSecret = b.opened(PhaseJoinToken, b.token)
	return nil
}

// joinSecret is what join-token.sh seals.
type joinSecret struct {
	Token      string `json:"token"`
	CACertHash string `json:"caCertHash"`
}

// parseJoinSecret reads join-token's opened output for the phase that needs it. The error never
// includes out: it is the token.
func parseJoinSecret(phase, out string) (joinSecret, error) {
	var s joinSecret
	if err := json.Unmarshal([]byte(out), &s); err != nil || !bootstrapTokenRe.MatchString(s.Token) || s.CACertHash == "" {
		return joinSecret{}, fmt.Errorf("phase %s: unexpected output of %s; replace that command and run again", phase, PhaseJoinToken)
	}
	return s, nil
}

// bootstrapTokenRe is kubeadm's token format: a public ID, a dot, the secret.
var bootstrapTokenRe = regexp.MustCompile(`^([a-z0-9]{6})\.[a-z0-9]{16}$`)

// ensureWorkersJoined joins every worker in parallel: each join needs only the token and its
// own prepared node, never another worker.
func (b *bootstrap) ensureWorkersJoined() error {
	endpoint := b.args.clusterConfig().endpoint()
	kubeletHash, err := b.args.clusterConfig().kubeletSHA256()
	if err != nil {
		return err
	}
	var cpInstance pulumi.Array
	if id := b.args.ControlPlane.InstanceID; id != nil {
		cpInstance = pulumi.Array{id}
	}
	for _, w := range b.args.Workers {
		joinConf := b.joinSecret.ApplyT(func(out string) (string, error) {
			s, err := parseJoinSecret(PhaseJoinWorker, out)
			if err != nil {
				return "", err
			}
			y, err := renderJoinConfig(joinConfig{Endpoint: endpoint, Token: s.Token, CACertHash: s.CACertHash, Node: w})
			return string(y), err
		}).(pulumi.StringOutput)
		c, err := b.run(step{
			name: b.resName(PhaseJoinWorker, &w), phase: PhaseJoinWorker, node: w, script: "join-worker.sh",
			env: map[string]string{
				"NODE_NAME": w.Name, "KUBERNETES_VERSION": b.args.KubernetesVersion,
				"STATE_DIR": stateDir, "API_ENDPOINT": endpoint,
				// A joined worker applies a changed kubelet configuration when this differs
				// from its marker.
				"KUBELET_CONFIG_SHA256": kubeletHash,
				// Named in the message for an unknown or expired token.
				"JOIN_TOKEN_RESOURCE": b.resName(PhaseJoinToken, nil), "JOIN_TOKEN_TTL": joinTokenTTL,
			},
			stdin:     joinConf,
			dependsOn: append([]pulumi.Resource{b.token, b.prepared[w.Name]}, b.workerUpgradeOf(w.Name)...),
			// A rebuilt control plane is a new cluster (new CA): every worker joins it again
			// (join-worker.sh resets a node joined to another cluster).
			extraTriggers: cpInstance,
		})
		if err != nil {
			return err
		}
		b.joins = append(b.joins, c)
	}
	return nil
}

func (b *bootstrap) ensureCalico() error {
	installation, err := renderCalicoInstallation(b.args.PodCIDR, b.args.ImageRepository)
	if err != nil {
		return err
	}
	operatorSHA, crdsSHA := calicoSHA256s(b.args.CalicoVersion, b.args.CalicoManifestSHA256, b.args.CalicoCRDsSHA256)
	b.calico, err = b.run(step{
		name: b.resName(PhaseCalico, nil), phase: PhaseCalico, node: b.args.ControlPlane, script: "calico.sh",
		env: map[string]string{
			"CALICO_VERSION":         b.args.CalicoVersion,
			"CALICO_MANIFEST_SHA256": operatorSHA,
			"CALICO_CRDS_SHA256":     crdsSHA,
			// The operator's image follows the Installation's registry (calico.sh rewrites it).
			"CALICO_IMAGE_REGISTRY":    b.args.ImageRepository,
			"CALICO_MANIFEST_BASE_URL": b.args.calicoManifestBaseURL(),
			"STATE_DIR":                stateDir,
			"INSTALLATION_B64":         base64.StdEncoding.EncodeToString(installation),
		},
		dependsOn: []pulumi.Resource{b.init},
	})
	return err
}

func (b *bootstrap) waitNodesReady() error {
	var names []string
	// Every node's VM ID is a trigger: a replaced worker is waited for again before
	// delete-join-token removes the token it joined with.
	var vmIDs pulumi.Array
	for _, n := range b.args.nodes() {
		names = append(names, n.Name)
		if n.InstanceID != nil && n.Name != b.args.ControlPlane.Name {
			vmIDs = append(vmIDs, n.InstanceID)
		}
	}
	deps := []pulumi.Resource{b.calico}
	for _, j := range b.joins {
		deps = append(deps, j)
	}
	// On a destroy, the drains come after the apps (which wait for this phase) are gone.
	for _, r := range b.removals {
		deps = append(deps, r)
	}
	var err error
	b.nodesReady, err = b.run(step{
		name: b.resName(PhaseWaitNodesReady, nil), phase: PhaseWaitNodesReady, node: b.args.ControlPlane, script: "wait-nodes.sh",
		env: map[string]string{
			"EXPECTED_NODES":     strings.Join(names, " "),
			"NODE_READY_TIMEOUT": strconv.Itoa(b.args.nodeReadyTimeout()),
		},
		dependsOn: deps, extraTriggers: vmIDs,
	})
	return err
}

// deleteJoinToken deletes the workers' bootstrap token once every node is Ready, so the
// credential exists only while joins are pending. stdin carries only the token's public ID
// (still a secret Output, since it comes from join-token's secret stdout); the script never
// needs the secret half. A new token (new worker, replaced VM, replaced join-token) changes
// stdin, so this phase runs again and deletes that one too; otherwise it stays unchanged.
func (b *bootstrap) deleteJoinToken() error {
	if b.token == nil {
		return nil
	}
	tokenID := b.joinSecret.ApplyT(func(out string) (string, error) {
		s, err := parseJoinSecret(PhaseDeleteJoinToken, out)
		if err != nil {
			return "", err
		}
		return bootstrapTokenRe.FindStringSubmatch(s.Token)[1], nil
	}).(pulumi.StringOutput)
	var err error
	b.tokenDeleted, err = b.run(step{
		name: b.resName(PhaseDeleteJoinToken, nil), phase: PhaseDeleteJoinToken, node: b.args.ControlPlane,
		script: "delete-join-token.sh", stdin: tokenID,
		dependsOn: []pulumi.Resource{b.token, b.nodesReady},
	})
	return err
}
