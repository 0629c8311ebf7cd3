package infra

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve/vm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ensureVM uploads the VM's cloud-init user-data and declares the VM on its Proxmox node.
func (r *reconciler) ensureVM(v VMArgs, nodeName string) (Node, error) {
	a := r.plan.args
	pn := r.node(nodeName)

	data, err := userData(a, v)
	if err != nil {
		return Node{}, err
	}
	// The user-data goes to the node's snippets storage with the provider's file resource (over
	// the provider's SSH login). It holds the public key only, nothing secret.
	userDataFileID, snippetDeps, err := r.ensureSnippet(v, pn, data)
	if err != nil {
		return Node{}, err
	}

	ip := netip.MustParseAddr(v.IP) // validated
	dns := &vm.VirtualMachineInitializationDnsArgs{Servers: pulumi.ToStringArray(a.Network.DNS)}
	if a.Network.SearchDomain != "" {
		dns.Domain = pulumi.String(a.Network.SearchDomain)
	}
	// Proxmox sorts tags; unsorted tags would show a diff on every preview.
	tags := []string{"infralab", a.Stack, v.Role}
	sort.Strings(tags)

	nic := &vm.VirtualMachineNetworkDeviceArgs{Bridge: pulumi.String(a.Network.Bridge), Model: pulumi.String("virtio")}
	if a.Network.MTU != 0 {
		nic.Mtu = pulumi.Int(1) // 1 = take the bridge's MTU
	}
	deps := append([]pulumi.Resource{r.bridges[pn.Name]}, snippetDeps...)
	if r.nat != nil {
		// First boot installs packages, which needs the host's NAT.
		deps = append(deps, r.nat)
	}
	machine, err := vm.NewVirtualMachine(r.ctx, r.child("vm-%s", v.Name), &vm.VirtualMachineArgs{
		Name:        pulumi.String(v.Name),
		NodeName:    pulumi.String(pn.Name),
		VmId:        pulumi.Int(v.VMID),
		Description: pulumi.String(fmt.Sprintf("infralab %s %s, managed by Pulumi", a.Stack, v.Role)),
		Tags:        pulumi.ToStringArray(tags),
		OnBoot:      pulumi.Bool(true),
		Started:     pulumi.Bool(true),
		// A config change moves the VM to its new node instead of re-creating it.
		Migrate:       pulumi.Bool(true),
		StopOnDestroy: pulumi.Bool(true),
		// The provider waits for the agent to report an address, so "created" means booted and
		// through cloud-init's package install.
		Agent:           &vm.VirtualMachineAgentArgs{Enabled: pulumi.Bool(true), Trim: pulumi.Bool(true)},
		Cpu:             &vm.VirtualMachineCpuArgs{Cores: pulumi.Int(v.Cores), Sockets: pulumi.Int(1), Type: pulumi.String("host")},
		Memory:          &vm.VirtualMachineMemoryArgs{Dedicated: pulumi.Int(v.MemoryMiB)},
		OperatingSystem: &vm.VirtualMachineOperatingSystemArgs{Type: pulumi.String("l26")},
		ScsiHardware:    pulumi.String("virtio-scsi-single"),
		Disks: vm.VirtualMachineDiskArray{&vm.VirtualMachineDiskArgs{
			Interface:   pulumi.String("scsi0"),
			DatastoreId: pulumi.String(pn.Storage),
			ImportFrom:  r.images[pn.Name].ID().ToStringOutput(),
			Size:        pulumi.Int(v.DiskGiB),
			Discard:     pulumi.String("on"),
			Iothread:    pulumi.Bool(true),
			Ssd:         pulumi.Bool(true),
		}},
		NetworkDevices: vm.VirtualMachineNetworkDeviceArray{nic},
		// Cloud images log to the serial console; without one their boot output is lost.
		SerialDevices: vm.VirtualMachineSerialDeviceArray{&vm.VirtualMachineSerialDeviceArgs{Device: pulumi.String("socket")}},
		Initialization: &vm.VirtualMachineInitializationArgs{
			DatastoreId: pulumi.String(pn.Storage),
			IpConfigs: vm.VirtualMachineInitializationIpConfigArray{&vm.VirtualMachineInitializationIpConfigArgs{
				Ipv4: &vm.VirtualMachineInitializationIpConfigIpv4Args{
					Address: pulumi.String(netip.PrefixFrom(ip, r.plan.prefix.Bits()).String()),
					Gateway: pulumi.String(a.Network.Gateway),
				},
			}},
			Dns: dns,
			// A string, not the snippet's ID output: see ensureSnippet.
			UserDataFileId: pulumi.String(userDataFileID),
		},
	}, r.pxOpts(pulumi.DependsOn(deps))...)
	if err != nil {
		return Node{}, err
	}
	return Node{
		Name: v.Name,
		Role: v.Role,
		// Derived from the VM's outputs so whoever uses the address waits for the VM.
		IPv4:        machine.VmId.ApplyT(func(int) string { return ip.String() }).(pulumi.StringOutput),
		VMID:        machine.VmId,
		ProxmoxNode: machine.NodeName,
	}, nil
}

func (r *reconciler) node(name string) ProxmoxNode {
	for _, n := range r.plan.args.Proxmox.Nodes {
		if n.Name == name {
			return n
		}
	}
	return ProxmoxNode{} // unreachable: validate checks placement
}
