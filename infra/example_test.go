package infra_test

import (
	"github.com/infralab/infralab/infra"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// ExampleNewNodes shows how main.go maps a stack's config onto NodesArgs: one Hetzner host,
// one control plane and two workers on the private bridge vmbr1 behind the host's NAT.
func ExampleNewNodes() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg := config.New(ctx, "proxmox")
		nodes, err := infra.NewNodes(ctx, "lab", &infra.NodesArgs{
			Stack: ctx.Stack(),
			Proxmox: infra.ProxmoxArgs{
				Endpoint: "https://pve.example.org:8006/",
				APIToken: cfg.RequireSecret("apiToken"), // the lead's stacks package reads it in main.go
				HostSSH:  infra.HostSSHArgs{User: "root", PrivateKey: cfg.RequireSecret("sshPrivateKey")},
				Nodes:    []infra.ProxmoxNode{{Name: "pve", Storage: "local-lvm", ImageStorage: "local"}},
			},
			Image: infra.ImageArgs{
				URL:               "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2",
				Checksum:          "<sha512 from SHA512SUMS next to the image>",
				ChecksumAlgorithm: "sha512",
			},
			Network: infra.NetworkArgs{
				CIDR: "10.10.10.0/24", Gateway: "10.10.10.1", DNS: []string{"1.1.1.1", "9.9.9.9"},
				Bridge: "vmbr1", HostUplink: "vmbr0",
			},
			SSH:  infra.GuestSSHArgs{User: "infralab", PublicKey: "ssh-ed25519 AAAA... ops@example"},
			Time: infra.TimeArgs{Timezone: "UTC", NTPServers: []string{"ntp1.hetzner.de"}},
			VMs: []infra.VMArgs{
				{Name: "cp-1", Role: infra.RoleControlPlane, VMID: 900, IP: "10.10.10.10", Cores: 4, MemoryMiB: 8192, DiskGiB: 40},
				{Name: "worker-1", Role: infra.RoleWorker, VMID: 901, IP: "10.10.10.20", Cores: 4, MemoryMiB: 8192, DiskGiB: 60},
				{Name: "worker-2", Role: infra.RoleWorker, VMID: 902, IP: "10.10.10.21", Cores: 4, MemoryMiB: 8192, DiskGiB: 60},
			},
		})
		if err != nil {
			return err
		}
		// The cluster layer takes nodes.ControlPlanes(), nodes.Workers() and nodes.SSHUser.
		ctx.Export("nodes", nodes.Summary)
		ctx.Export("sshUser", nodes.SSHUser)
		return nil
	})
}
