package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"

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
		s.ProxmoxAPIToken, s.ProxmoxSSHPrivateKey, s.ProxmoxJumpPrivateKey, s.SSHPrivateKey, s.EncryptionKey,
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
	previous, ref, err := previousCertificates(ctx)
	if err != nil {
		return nil, err
	}
	// The version the cluster ran last time: a path kubeadm cannot take (a skipped minor, a
	// downgrade) is refused here, before any resource of any layer (cluster/upgrade.go); the
	// cluster layer's Validate and the nodes check it again.
	running, err := previousVersion(ctx, ref)
	if err != nil {
		return nil, err
	}
	if running != "" {
		if msg := clusterlayer.UpgradeProblem(running, cfg.Kubernetes.Version); msg != "" {
			return nil, fmt.Errorf("kubernetes.version (cluster.kubernetesVersion): the cluster runs %s: %s", running, msg)
		}
	}
	nodes, err := infra.NewNodes(ctx, "infra", infraArgs(ctx, cfg, secrets))
	if err != nil {
		return nil, err
	}
	if k := cfg.Kubernetes; !clusterlayer.CalicoManifestsPinned(k.CalicoVersion, k.CalicoManifestSHA256, k.CalicoCRDsSHA256) {
		_ = ctx.Log.Warn("Calico "+k.CalicoVersion+" has no pinned manifest sha256: its manifests will be applied as cluster-admin without a checksum; set kubernetes.calicoManifestSha256 and kubernetes.calicoCrdsSha256 (sha256 of tigera-operator.yaml and operator-crds.yaml), or use "+clusterlayer.DefaultCalicoVersion, nil)
	}
	if cfg.Proxmox.JumpUser == "" {
		_ = ctx.Log.Warn("proxmox.jumpUser is not set: the SSH jump host uses proxmox.hostSshUser, whose key can run commands (with sudo) on the Proxmox host; give the jump host a forwarding-only key (docs/infra.md, \"SSH logins and keys\")", nil)
	}
	ka := kubeadmArgs(cfg, secrets, nodes)
	ka.Previous, ka.RunningVersion = previous, running
	kubeadm, err := clusterlayer.NewKubeadm(ctx, "cluster", ka)
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
		// Read back by previousCertificates on the next run.
		ctx.Export(outputCertificatesNotAfter, k.kubeadm.CertificatesNotAfter)
		ctx.Export("certificatesExpireInDays", k.kubeadm.CertificatesExpireInDays)
		ctx.Export(outputKubeconfigGeneration, k.kubeadm.KubeconfigGeneration)
		ctx.Export(outputKubernetesVersion, k.kubeadm.KubernetesVersion)
		ctx.Export("nodeVersions", k.kubeadm.NodeVersions)
	}
}

// Stack outputs the next run reads back.
const (
	outputCertificatesNotAfter = "certificatesNotAfter"
	outputKubeconfigGeneration = "kubeconfigGeneration"
	outputKubernetesVersion    = "kubernetesVersion"
)

// previousVersion is the kubernetesVersion output of the last deployment ("" on the first, or
// when the engine has no value for it), awaited here because Validate needs a plain value. A
// StackReference is read in preview too; internals.UnsafeAwaitOutput reports an unknown value
// instead of blocking on it.
func previousVersion(ctx *pulumi.Context, ref *pulumi.StackReference) (string, error) {
	res, err := internals.UnsafeAwaitOutput(ctx.Context(), ref.GetOutput(pulumi.String(outputKubernetesVersion)))
	if err != nil || !res.Known {
		return "", err
	}
	s, _ := res.Value.(string)
	return s, nil
}

// previousCertificates is what the last deployment of this very stack reported about the stored
// kubeconfig's certificate, read from its own stack outputs with a StackReference (the engine's
// builtin provider reads the latest checkpoint: pulumi pkg/resource/deploy/builtins.go,
// readStackReference; during an update the stack's outputs there are still the previous run's).
// The cluster layer needs it to see the kubeconfig near NotAfter without a clock in a trigger
// (cluster/certs.go). A first deployment has no such outputs: nothing is due then.
func previousCertificates(ctx *pulumi.Context) (*clusterlayer.PreviousCertificates, *pulumi.StackReference, error) {
	name := ctx.Stack()
	if org := ctx.Organization(); org != "" {
		name = org + "/" + ctx.Project() + "/" + ctx.Stack()
	}
	ref, err := pulumi.NewStackReference(ctx, "previous-deployment", &pulumi.StackReferenceArgs{Name: pulumi.String(name)})
	if err != nil {
		return nil, nil, err
	}
	notAfter := ref.GetOutput(pulumi.String(outputCertificatesNotAfter)).ApplyT(func(v any) string {
		s, _ := v.(string)
		return s
	}).(pulumi.StringOutput)
	generation := ref.GetOutput(pulumi.String(outputKubeconfigGeneration)).ApplyT(func(v any) int {
		switch n := v.(type) {
		case float64: // numbers come back from the engine as float64
			return int(n)
		case int:
			return n
		}
		return 0
	}).(pulumi.IntOutput)
	return &clusterlayer.PreviousCertificates{NotAfter: notAfter, Generation: generation}, ref, nil
}
