package cluster

import (
	"fmt"
	"io/fs"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Kubeadm is a kubeadm-bootstrapped, hardened cluster with Calico.
type Kubeadm struct {
	pulumi.ResourceState

	// Kubeconfig is the cluster-admin kubeconfig (secret).
	Kubeconfig pulumi.StringOutput `pulumi:"kubeconfig"`
	// NodeNames resolves once every node is Ready.
	NodeNames pulumi.StringArrayOutput `pulumi:"nodeNames"`
	// APIEndpoint is https://<control plane IP>:6443, resolved after kubeadm init.
	APIEndpoint pulumi.StringOutput `pulumi:"apiEndpoint"`
	// CertificatesNotAfter is when the Kubeconfig's client certificate expires (RFC 3339; kubeadm
	// renews it together with every other leaf certificate), or "" when it holds none.
	CertificatesNotAfter pulumi.StringOutput `pulumi:"certificatesNotAfter"`
	// CertificatesExpireInDays is the whole days left until CertificatesNotAfter at this run
	// (-1 when unknown). Not an input anywhere, so the clock causes no diff.
	CertificatesExpireInDays pulumi.IntOutput `pulumi:"certificatesExpireInDays"`
	// KubeconfigGeneration counts the refreshes of the Kubeconfig; pass it back with
	// CertificatesNotAfter in KubeadmArgs.Previous (certs.go). Resolves once the fetch succeeded.
	KubeconfigGeneration pulumi.IntOutput `pulumi:"kubeconfigGeneration"`
	// KubernetesVersion is the version the API server runs (x.y.z), read after every node is
	// Ready; pass it back as KubeadmArgs.RunningVersion so a bad version path is refused early.
	KubernetesVersion pulumi.StringOutput `pulumi:"kubernetesVersion"`
	// NodeVersions maps each node to the kubelet version it runs (x.y.z).
	NodeVersions pulumi.StringMapOutput `pulumi:"nodeVersions"`
}

type bootstrap struct {
	ctx     *pulumi.Context
	parent  pulumi.Resource
	name    string
	args    *KubeadmArgs
	scripts fs.FS

	reachable, prepared     map[string]*remote.Command
	init, kubeconfig, token *remote.Command
	// adminConf and joinSecret are the secret phases' values, opened (secret outputs).
	adminConf, joinSecret pulumi.StringOutput
	joins, removals       []*remote.Command
	calico, nodesReady    *remote.Command
	tokenDeleted          *remote.Command
	certRenewal           *remote.Command
	// The upgrade phases (upgrade.go); workerUpgraded maps a worker to its last upgrade step.
	upgradeCheck, upgradeCP, nodeVersions *remote.Command
	workerUpgraded                        map[string]*remote.Command
	// generation is this run's kubeconfig generation (certs.go).
	generation pulumi.IntOutput
}

// NewKubeadm validates args, then declares the bootstrap phases as children of the component.
func NewKubeadm(ctx *pulumi.Context, name string, args *KubeadmArgs, opts ...pulumi.ResourceOption) (*Kubeadm, error) {
	return newKubeadm(ctx, name, args, Scripts(), opts...)
}

func newKubeadm(ctx *pulumi.Context, name string, args *KubeadmArgs, scripts fs.FS, opts ...pulumi.ResourceOption) (*Kubeadm, error) {
	if args == nil {
		return nil, fmt.Errorf("cluster: KubeadmArgs is nil")
	}
	if err := args.Validate(); err != nil {
		return nil, err
	}
	comp := &Kubeadm{}
	if err := ctx.RegisterComponentResource("infralab:cluster:Kubeadm", name, comp, opts...); err != nil {
		return nil, err
	}
	b := &bootstrap{
		ctx: ctx, parent: comp, name: name, args: args, scripts: scripts,
		reachable: map[string]*remote.Command{}, prepared: map[string]*remote.Command{},
		workerUpgraded: map[string]*remote.Command{},
	}
	for _, p := range phases() {
		if err := p.ensure(b); err != nil {
			return nil, fmt.Errorf("cluster phase %s: %w", p.name, err)
		}
	}

	var names []string
	for _, n := range args.nodes() {
		names = append(names, n.Name)
	}
	// The kubeconfig is handed out only once every node is Ready (so Calico runs and workers have
	// joined): whatever uses it, the apps layer's provider above all, then waits for a working
	// cluster instead of racing the joins with an API server that has no schedulable node yet.
	comp.Kubeconfig = pulumi.ToSecret(pulumi.All(b.adminConf, b.nodesReady.Stdout).ApplyT(
		func(v []any) string { return v[0].(string) })).(pulumi.StringOutput)
	comp.NodeNames = b.nodesReady.Stdout.ApplyT(func(string) []string { return names }).(pulumi.StringArrayOutput)
	endpoint := "https://" + args.clusterConfig().endpoint()
	comp.APIEndpoint = b.init.Stdout.ApplyT(func(string) string { return endpoint }).(pulumi.StringOutput)

	// The NotAfter date is no secret, though it comes out of the secret kubeconfig.
	comp.CertificatesNotAfter = pulumi.Unsecret(b.adminConf.ApplyT(kubeconfigNotAfter)).(pulumi.StringOutput)
	comp.CertificatesExpireInDays = comp.CertificatesNotAfter.ApplyT(func(n string) int {
		return daysLeft(n, args.now())
	}).(pulumi.IntOutput)
	comp.KubeconfigGeneration = pulumi.All(b.generation, b.kubeconfig.Stdout).ApplyT(func(v []any) int {
		return v[0].(int)
	}).(pulumi.IntOutput)

	comp.KubernetesVersion, comp.NodeVersions = versionsOutputs(b.nodeVersions.Stdout)

	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{
		"kubernetesVersion":        comp.KubernetesVersion,
		"nodeVersions":             comp.NodeVersions,
		"kubeconfig":               comp.Kubeconfig,
		"nodeNames":                comp.NodeNames,
		"apiEndpoint":              comp.APIEndpoint,
		"certificatesNotAfter":     comp.CertificatesNotAfter,
		"certificatesExpireInDays": comp.CertificatesExpireInDays,
		"kubeconfigGeneration":     comp.KubeconfigGeneration,
	}); err != nil {
		return nil, err
	}
	return comp, nil
}
