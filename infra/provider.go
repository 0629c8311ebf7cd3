package infra

import (
	"fmt"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve/download"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// reconciler carries what every ensure step needs while NewNodes declares resources.
type reconciler struct {
	ctx    *pulumi.Context
	name   string
	plan   *plan
	parent pulumi.Resource

	provider *proxmoxve.Provider
	images   map[string]*download.File // by Proxmox node
	bridges  map[string]pulumi.Resource
	nat      pulumi.Resource
}

// child names a resource after the component so two stacks' URNs never collide.
func (r *reconciler) child(format string, a ...any) string {
	return r.name + "-" + fmt.Sprintf(format, a...)
}

// pxOpts parents a proxmoxve resource to the component and routes it through the explicit provider.
func (r *reconciler) pxOpts(extra ...pulumi.ResourceOption) []pulumi.ResourceOption {
	return append([]pulumi.ResourceOption{pulumi.Parent(r.parent), pulumi.Provider(r.provider)}, extra...)
}

// ensureProvider declares the explicit proxmoxve provider. Nothing falls back to ambient
// PROXMOX_VE_* variables, so a preview shows exactly which API it talks to.
func (r *reconciler) ensureProvider() error {
	px := r.plan.args.Proxmox
	args := &proxmoxve.ProviderArgs{
		Endpoint: pulumi.String(px.Endpoint),
		ApiToken: pulumi.ToSecret(px.APIToken).(pulumi.StringInput),
		// Snippet uploads go over SSH: the Proxmox API has no endpoint for them.
		Ssh: &proxmoxve.ProviderSshArgs{
			Username:   pulumi.String(px.HostSSH.User),
			PrivateKey: pulumi.ToSecret(px.HostSSH.PrivateKey).(pulumi.StringInput),
			Nodes:      sshNodes(px.Nodes),
		},
	}
	if px.Insecure {
		args.Insecure = pulumi.Bool(true)
		if err := r.ctx.Log.Warn("infra: proxmox.insecure is set: the API's TLS certificate is NOT verified; "+
			"install a trusted certificate on "+px.Endpoint+" and unset it", &pulumi.LogArgs{Resource: r.parent}); err != nil {
			return err
		}
	}
	prov, err := proxmoxve.NewProvider(r.ctx, r.child("proxmox"), args, pulumi.Parent(r.parent))
	if err != nil {
		return err
	}
	r.provider = prov
	return nil
}

// sshNodes pins SSH addresses where the config names them; other nodes use the address the API reports.
func sshNodes(nodes []ProxmoxNode) proxmoxve.ProviderSshNodeArray {
	var out proxmoxve.ProviderSshNodeArray
	for _, n := range nodes {
		if n.Address != "" {
			out = append(out, proxmoxve.ProviderSshNodeArgs{Name: pulumi.String(n.Name), Address: pulumi.String(n.Address)})
		}
	}
	return out
}
