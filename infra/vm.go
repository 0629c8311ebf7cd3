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
	address := netip.PrefixFrom(ip, r.plan.prefix.Bits()).String()
	cpuType := a.Proxmox.CPUType
	if cpuType == "" {
		cpuType = DefaultCPUType
	}
	boot := bootConfig(a, v, cpuType, address, data)
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
		// The agent is installed by cloud-init (packages), so it answers only once first boot got
		// through the package install. The provider waits for it up to Timeout, for an IPv4
		// address (without WaitForIp any IPv6 address ends the wait), and on a timeout or a 403
		// only warns: the address check in nodeAddress turns that into an error.
		Agent: &vm.VirtualMachineAgentArgs{
			Enabled:   pulumi.Bool(true),
			Trim:      pulumi.Bool(true),
			Timeout:   pulumi.String(agentTimeout),
			WaitForIp: &vm.VirtualMachineAgentWaitForIpArgs{Ipv4: pulumi.Bool(true)},
		},
		// Changes that need a cold start wait for one: docs/runbooks/reboot-nodes.md reboots the
		// nodes one at a time, drained. See bootConfig for what needs it and how it shows.
		RebootAfterUpdate: pulumi.Bool(false),
		Smbios: &vm.VirtualMachineSmbiosArgs{
			Manufacturer: pulumi.String("infralab"),
			Product:      pulumi.String("infralab " + v.Role),
			Serial:       pulumi.String(boot),
		},
		Cpu:             &vm.VirtualMachineCpuArgs{Cores: pulumi.Int(v.Cores), Sockets: pulumi.Int(1), Type: pulumi.String(cpuType)},
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
					Address: pulumi.String(address),
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
	// What the guest agent reports, checked against the config: it resolves only for a VM that
	// booted with its address, so whoever uses it waits for that.
	ipv4 := nodeAddress(v, ip, machine.Ipv4Addresses)
	return Node{
		Name:        v.Name,
		Role:        v.Role,
		IPv4:        ipv4,
		InstanceID:  instanceID(v, machine, ipv4),
		VMID:        machine.VmId,
		ProxmoxNode: machine.NodeName,
		BootConfig:  boot,
	}, nil
}

// agentTimeout bounds the provider's wait for the guest agent after a start and on every read
// (bpg's default is 15m, proxmoxtf/resource/vm/vm.go dvAgentTimeout). First boot must get through
// apt's package install before the agent runs, which a slow mirror can stretch; a VM whose agent is
// down costs this long on each refresh before the address check fails.
const agentTimeout = "20m"

// nodeAddress is the VM's configured address once its guest agent reports it. bpg fills
// ipv4Addresses from the agent, one list per interface, and leaves it empty when the agent did
// not answer in time or the token may not read it (proxmoxtf/resource/vm/network/network.go,
// ReadNetworkValues, which only warns then), so "created" did not mean "booted". An address that
// is missing, or only a different one (DHCP, a typo in network-config), fails the output and every
// resource that uses it.
func nodeAddress(v VMArgs, want netip.Addr, reported pulumi.StringArrayArrayOutput) pulumi.StringOutput {
	return reported.ApplyT(func(ifaces [][]string) (string, error) {
		var seen []string
		for _, iface := range ifaces {
			for _, s := range iface {
				a, err := netip.ParseAddr(s)
				if err != nil || a.IsLoopback() {
					continue
				}
				if a == want {
					return want.String(), nil
				}
				seen = append(seen, s)
			}
		}
		return "", fmt.Errorf("infra: VM %s (vmId %d): its guest agent reports %v, not the configured %s: "+
			"it did not finish first boot within agent timeout %s (console: qm terminal %d; cloud-init: /var/log/cloud-init-output.log), "+
			"the token lacks VM.GuestAgent.Audit (Proxmox VE 9) or VM.Monitor (8.x), "+
			"or the address is not applied yet (a changed ip takes effect at the next cold boot, docs/runbooks/reboot-nodes.md); "+
			"then `pulumi up --refresh` reads the agent again",
			v.Name, v.VMID, seen, want, agentTimeout, v.VMID)
	}).(pulumi.StringOutput)
}

// instanceID is the identity of this VM instance, for the cluster layer's triggers: a replaced
// VM must be bootstrapped again even though its name, IP and vmId stay the same.
//
// The VM's configured vmId is no such identity (a re-created VM gets it back). The SMBIOS UUID is:
// the VM sets an smbios block without a UUID, so on create bpg generates a random one
// (proxmoxtf/resource/vm/vm.go, vmGetSMBIOS: uuid.New() when unset) and Proxmox stores it in
// smbios1; smbios.uuid is Optional+Computed, so on every later update the SDK keeps the value from
// state and the provider sends it back unchanged. Every create, and only a create, mints a new one.
// The guest sees it as /sys/class/dmi/id/product_uuid. (A random resource with keepers would do
// too, but the random provider plugin is not available to this project's offline toolchain, and
// keepers miss a `pulumi up --replace` or a VM re-created after it vanished.)
//
// It is derived through the address check, so the cluster layer declares no command for a VM whose
// guest agent did not report its configured address.
func instanceID(v VMArgs, machine *vm.VirtualMachine, ipv4 pulumi.StringOutput) pulumi.StringOutput {
	return pulumi.All(machine.VmId, machine.Smbios.Uuid(), ipv4).ApplyT(func(x []any) (string, error) {
		uuid, _ := x[1].(*string)
		if uuid == nil || *uuid == "" {
			return "", fmt.Errorf("infra: VM %s (vmId %d): the provider reported no SMBIOS UUID, the instance identity the cluster layer's triggers need; run `pulumi up --refresh`", v.Name, v.VMID)
		}
		return fmt.Sprintf("%d/%s", x[0].(int), *uuid), nil
	}).(pulumi.StringOutput)
}

func (r *reconciler) node(name string) ProxmoxNode {
	for _, n := range r.plan.args.Proxmox.Nodes {
		if n.Name == name {
			return n
		}
	}
	return ProxmoxNode{} // unreachable: validate checks placement
}
