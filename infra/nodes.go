package infra

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ComponentType is the Pulumi type token of the component.
const ComponentType = "infralab:infra:Nodes"

// Nodes is the infra layer: the Proxmox VMs a cluster runs on.
type Nodes struct {
	pulumi.ResourceState

	// SSHUser is the login on every VM (key only).
	SSHUser pulumi.StringOutput
	// Nodes holds one entry per VMArgs, in the same order.
	Nodes []Node
	// Summary is one map per VM (name, role, ipv4, vmId, proxmoxNode, instanceId, bootConfig) for a
	// stack output.
	Summary pulumi.MapArrayOutput
}

// Node is one VM as the cluster layer sees it. The outputs resolve once Proxmox reports the VM
// created and its guest agent running, so commands that use them wait for the VM.
type Node struct {
	Name        string
	Role        string
	IPv4        pulumi.StringOutput
	VMID        pulumi.IntOutput
	ProxmoxNode pulumi.StringOutput
	// InstanceID names this VM instance: "<vmId>/<SMBIOS UUID>". The provider generates the UUID
	// when it creates the VM and keeps it across updates, so it changes with every new instance
	// (a replacement, a re-created VM) and never with an update; see instanceID. It resolves only
	// once the VM's guest agent reported its configured address (IPv4).
	InstanceID pulumi.StringOutput
	// BootConfig is the digest of the settings the VM's next cold start applies (bootConfig). The
	// VM runs them once /sys/class/dmi/id/product_serial in the guest shows this value.
	BootConfig string
}

// ControlPlanes returns the nodes with role control-plane.
func (n *Nodes) ControlPlanes() []Node { return n.byRole(RoleControlPlane) }

// Workers returns the nodes with role worker.
func (n *Nodes) Workers() []Node { return n.byRole(RoleWorker) }

func (n *Nodes) byRole(role string) []Node {
	var out []Node
	for _, node := range n.Nodes {
		if node.Role == role {
			out = append(out, node)
		}
	}
	return out
}

// NewNodes validates args, then declares, in order: the provider, per Proxmox node the image
// download and the private bridge, the host NAT on the first node, and per VM its cloud-init
// snippet and the VM itself.
func NewNodes(ctx *pulumi.Context, name string, args *NodesArgs, opts ...pulumi.ResourceOption) (*Nodes, error) {
	p, err := validate(args)
	if err != nil {
		return nil, err
	}
	comp := &Nodes{}
	if err := ctx.RegisterComponentResource(ComponentType, name, comp, opts...); err != nil {
		return nil, err
	}
	r := &reconciler{ctx: ctx, name: name, plan: p, parent: comp}

	if err := r.ensureProvider(); err != nil {
		return nil, err
	}
	for _, pn := range args.Proxmox.Nodes {
		if err := r.ensureImage(pn); err != nil {
			return nil, err
		}
		if err := r.ensureBridge(pn); err != nil {
			return nil, err
		}
	}
	if err := r.ensureHostNAT(); err != nil {
		return nil, err
	}
	summary := pulumi.MapArray{}
	for i, v := range args.VMs {
		node, err := r.ensureVM(v, p.placement[i])
		if err != nil {
			return nil, err
		}
		comp.Nodes = append(comp.Nodes, node)
		summary = append(summary, pulumi.Map{
			"name": pulumi.String(node.Name), "role": pulumi.String(node.Role),
			"ipv4": node.IPv4, "vmId": node.VMID, "proxmoxNode": node.ProxmoxNode,
			"instanceId": node.InstanceID, "bootConfig": pulumi.String(node.BootConfig),
		})
	}
	comp.SSHUser = pulumi.String(args.SSH.User).ToStringOutput()
	comp.Summary = summary.ToMapArrayOutput()
	ctx.Log.Info(fmt.Sprintf("infra: %d VMs on %d Proxmox node(s), private network %s via %s",
		len(args.VMs), len(args.Proxmox.Nodes), p.prefix, args.Network.Bridge), &pulumi.LogArgs{Resource: comp})
	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{
		"sshUser": comp.SSHUser,
		"nodes":   comp.Summary,
	}); err != nil {
		return nil, err
	}
	return comp, nil
}
