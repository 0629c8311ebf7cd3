package infra

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidationNamesEveryBadFieldBeforeDeclaringAnything(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(a *NodesArgs)
		want   []string
	}{
		{"ip outside cidr", func(a *NodesArgs) { a.VMs[1].IP = "10.10.20.5" },
			[]string{"vms[1].ip: 10.10.20.5 is not a host address inside network.cidr 10.10.10.0/24"}},
		{"ip is gateway", func(a *NodesArgs) { a.VMs[0].IP = "10.10.10.1" }, []string{"vms[0].ip: 10.10.10.1 is network.gateway"}},
		{"duplicate id and ip", func(a *NodesArgs) { a.VMs[2].VMID = a.VMs[1].VMID; a.VMs[2].IP = a.VMs[1].IP },
			[]string{"vms[2].vmId: 901 is used twice", "vms[2].ip: 10.10.10.20 is used twice"}},
		{"unknown node", func(a *NodesArgs) { a.VMs[0].ProxmoxNode = "pve9" }, []string{`vms[0].proxmoxNode: "pve9" is not in proxmox.nodes`}},
		{"no control plane", func(a *NodesArgs) { a.VMs[0].Role = RoleWorker }, []string{`vms: no VM has role "control-plane"`}},
		{"bad role", func(a *NodesArgs) { a.VMs[0].Role = "master" }, []string{`vms[0].role: "master" is neither`}},
		{"tiny vm", func(a *NodesArgs) { a.VMs[1].MemoryMiB = 512; a.VMs[1].DiskGiB = 4; a.VMs[1].Cores = 0 },
			[]string{"vms[1].memoryMiB", "vms[1].diskGiB", "vms[1].cores"}},
		{"no token", func(a *NodesArgs) { a.Proxmox.APIToken = nil }, []string{"proxmox.apiToken: missing"}},
		{"http endpoint", func(a *NodesArgs) { a.Proxmox.Endpoint = "http://pve:8006" }, []string{"proxmox.endpoint"}},
		{"bad checksum", func(a *NodesArgs) { a.Image.Checksum = "abc" }, []string{"image.checksum: want 128 hex digits for sha512"}},
		{"img extension", func(a *NodesArgs) { a.Image.FileName = "noble.img" }, []string{"image.fileName"}},
		{"root guest user", func(a *NodesArgs) { a.SSH.User = "root" }, []string{"ssh.user"}},
		{"bad public key", func(a *NodesArgs) { a.SSH.PublicKey = "ssh-ed25519 notbase64" }, []string{"ssh.publicKey"}},
		{"cidr host bits", func(a *NodesArgs) { a.Network.CIDR = "10.10.10.5/24" }, []string{"network.cidr: \"10.10.10.5/24\" has host bits set; use 10.10.10.0/24"}},
		{"uplink is bridge", func(a *NodesArgs) { a.Network.HostUplink = "vmbr1" }, []string{"network.hostUplink"}},
		{"long bridge", func(a *NodesArgs) { a.Network.Bridge = "vmbr-private-1" }, []string{"network.bridge"}},
		{"no nodes", func(a *NodesArgs) { a.Proxmox.Nodes = nil }, []string{"proxmox.nodes: empty"}},
		{"second node without address", func(a *NodesArgs) {
			a.Proxmox.Nodes = append(a.Proxmox.Nodes, ProxmoxNode{Name: "pve2", Storage: "local-lvm", ImageStorage: "local"})
		}, []string{"proxmox.nodes[1].address: empty: every node but the first needs its SSH address"}},
		{"spread without L2", func(a *NodesArgs) {
			a.Proxmox.Nodes = append(a.Proxmox.Nodes, ProxmoxNode{Name: "pve2", Address: "pve2.example.org", Storage: "local-lvm", ImageStorage: "local"})
		}, []string{"proxmox.nodes[0].bridgePorts: empty, but VMs run on more than one node", "proxmox.nodes[1].bridgePorts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := fixture(t, 1, 3)
			tc.break_(a)
			m, _, err := run(t, a)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Empty(t, m.res, "nothing declared for invalid args")
		})
	}
}

func TestValidationCollectsAllErrors(t *testing.T) {
	a := fixture(t, 1, 2)
	a.Stack = "Lab"
	a.VMs[0].IP = "bogus"
	a.Network.DNS = nil
	_, err := validate(a)
	require.Error(t, err)
	assert.Equal(t, 3, strings.Count(err.Error(), "\n  "), err.Error())
}

// Proxmox's node-name rule (pve-common src/PVE/JSONSchema.pm, pve_verify_node_name) allows upper
// case; Hetzner's installimage names hosts like Debian-bookworm-latest-amd64-base.
func TestUpperCaseProxmoxNodeNameIsValid(t *testing.T) {
	a := fixture(t, 1, 2)
	a.Proxmox.Nodes[0].Name = "Debian-bookworm-latest-amd64-base"
	a.VMs[1].ProxmoxNode = "Debian-bookworm-latest-amd64-base"
	m, got, err := run(t, a)
	require.NoError(t, err)
	assert.Len(t, got, 3)
	for _, v := range m.ofType(typeVM) {
		assert.Equal(t, "Debian-bookworm-latest-amd64-base", str(v.inputs, "nodeName"))
	}
	a.Proxmox.Nodes[0].Name = "pve_1"
	_, err = validate(a)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `proxmox.nodes[0].name: "pve_1" is not a Proxmox node name`)
}

func TestExtraNodeWithoutVMsNeedsNoBridgePorts(t *testing.T) {
	a := fixture(t, 1, 2)
	for i := range a.VMs {
		a.VMs[i].ProxmoxNode = "pve1"
	}
	a.Proxmox.Nodes = append(a.Proxmox.Nodes, ProxmoxNode{Name: "pve2", Address: "pve2.example.org", Storage: "local-lvm", ImageStorage: "local"})
	_, err := validate(a)
	assert.NoError(t, err, "a node that hosts no VMs yet is fine without a layer-2 link")
}
