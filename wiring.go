package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/infralab/infralab/apps"
	clusterlayer "github.com/infralab/infralab/cluster"
	"github.com/infralab/infralab/infra"
	"github.com/infralab/infralab/stacks"
)

// cluster is what the apps layer needs from whichever layer produced the Kubernetes cluster.
type cluster struct {
	provider *kubernetes.Provider
	// Set by the lab stack only.
	nodes    *infra.Nodes
	kubeadm  *clusterlayer.Kubeadm
	endpoint string
}

// secretValues are the stack's secrets as Pulumi secret outputs: they never exist as plain strings
// in the program.
type secretValues map[string]pulumi.StringOutput

func readSecrets(ctx *pulumi.Context, cfg *stacks.Config) (secretValues, error) {
	out := secretValues{}
	s := cfg.Secrets
	for _, sec := range []stacks.Secret{
		s.ProxmoxAPIToken, s.ProxmoxSSHPrivateKey, s.SSHPrivateKey, s.EncryptionKey,
		s.PostgresPassword, s.APIDBPassword, s.ExporterDBPassword, s.GrafanaAdminPassword,
	} {
		if !sec.Set {
			continue
		}
		v, err := config.TrySecret(ctx, stacks.Namespace+":"+sec.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sec.Key, err)
		}
		out[sec.Key] = v
	}
	return out, nil
}

// buildLab declares the Proxmox VMs, bootstraps Kubernetes on them and returns a provider for it.
func buildLab(ctx *pulumi.Context, cfg *stacks.Config, secrets secretValues) (*cluster, error) {
	nodes, err := infra.NewNodes(ctx, "infra", infraArgs(ctx, cfg, secrets))
	if err != nil {
		return nil, err
	}
	if k := cfg.Kubernetes; !clusterlayer.CalicoManifestsPinned(k.CalicoVersion, k.CalicoManifestSHA256, k.CalicoCRDsSHA256) {
		_ = ctx.Log.Warn("Calico "+k.CalicoVersion+" has no pinned manifest sha256: its manifests will be applied as cluster-admin without a checksum; set kubernetes.calicoManifestSha256 and kubernetes.calicoCrdsSha256 (sha256 of tigera-operator.yaml and operator-crds.yaml), or use "+clusterlayer.DefaultCalicoVersion, nil)
	}
	kubeadm, err := clusterlayer.NewKubeadm(ctx, "cluster", kubeadmArgs(cfg, secrets, nodes))
	if err != nil {
		return nil, err
	}
	provider, err := kubernetes.NewProvider(ctx, "lab", &kubernetes.ProviderArgs{
		Kubeconfig: kubeadm.Kubeconfig,
		// Server-side apply makes a second `up` a no-op and lets the apps share fields safely.
		EnableServerSideApply: pulumi.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	return &cluster{provider: provider, nodes: nodes, kubeadm: kubeadm,
		endpoint: "https://" + cfg.Cluster.ControlPlane.Nodes[0].IP + ":6443"}, nil
}

// useKubeconfig builds the provider of the local stack from a kubeconfig file.
func useKubeconfig(ctx *pulumi.Context, cfg *stacks.Config) (*cluster, error) {
	// renderYamlTo (hack/bench.sh only) writes the manifests to a folder instead of applying
	// them, for `kubectl apply` of the very same objects. Its Secrets are plain YAML.
	if dir := cfg.RenderYAMLTo; dir != "" {
		p, err := kubernetes.NewProvider(ctx, "render", &kubernetes.ProviderArgs{RenderYamlToDirectory: pulumi.String(dir)})
		return &cluster{provider: p}, err
	}
	raw, err := os.ReadFile(cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: cannot read %s: %v (fix: run `make demo` to start the embedded control plane, or `pulumi config set kubeconfig PATH`)", cfg.Kubeconfig, err)
	}
	provider, err := kubernetes.NewProvider(ctx, "local", &kubernetes.ProviderArgs{
		// The content, not the path: the state then does not depend on where the clone lives. It
		// holds client keys, so it is a secret.
		Kubeconfig:            pulumi.ToSecret(pulumi.String(string(raw))).(pulumi.StringOutput),
		EnableServerSideApply: pulumi.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	return &cluster{provider: provider}, nil
}

func exportOutputs(ctx *pulumi.Context, cfg *stacks.Config, k *cluster, p *apps.Platform) {
	ctx.Export("mode", pulumi.String(string(cfg.Mode)))
	ctx.Export("apiNamespace", p.APINamespace)
	ctx.Export("databaseNamespace", p.DatabaseNamespace)
	ctx.Export("monitoringMode", p.MonitoringMode)
	ctx.Export("nextSteps", p.NextSteps)
	if k.nodes != nil {
		ctx.Export("nodes", k.nodes.Summary)
		ctx.Export("sshUser", k.nodes.SSHUser)
		ctx.Export("apiEndpoint", pulumi.String(k.endpoint))
		ctx.Export("kubeconfig", k.kubeadm.Kubeconfig)
	}
}
