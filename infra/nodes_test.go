package infra

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The shapes: control planes + workers. The cluster layer builds one control plane,
// but the infra layer declares any number, so 3+20 is counted as written.
func TestResourceCounts(t *testing.T) {
	for _, tc := range []struct{ nodes, controlPlanes, workers int }{{1, 1, 2}, {1, 1, 5}, {3, 3, 20}, {3, 1, 20}} {
		t.Run(fmt.Sprintf("%d+%d on %d node(s)", tc.controlPlanes, tc.workers, tc.nodes), func(t *testing.T) {
			a := fixture(t, tc.nodes, tc.workers)
			for i := 2; i <= tc.controlPlanes; i++ {
				a.VMs = append(a.VMs, VMArgs{Name: fmt.Sprintf("cp-%d", i), Role: RoleControlPlane, VMID: 800 + i,
					IP: fmt.Sprintf("10.10.10.%d", 9+i), Cores: 4, MemoryMiB: 8192, DiskGiB: 40})
			}
			m, got, err := run(t, a)
			require.NoError(t, err)
			vms := tc.controlPlanes + tc.workers
			assert.Equal(t, map[string]int{
				ComponentType: 1,
				typeProvider:  1,
				typeImage:     tc.nodes, // one download per Proxmox node
				typeBridge:    tc.nodes, // the private bridge on every node
				typeCommand:   1,        // host NAT on the gateway node
				typeSnippet:   vms,      // one user-data per VM
				typeVM:        vms,
			}, m.count())
			assert.Len(t, got, vms, "every VM's outputs resolve")
			roles := map[string]int{}
			for _, n := range got {
				roles[n.Role]++
			}
			assert.Equal(t, map[string]int{RoleControlPlane: tc.controlPlanes, RoleWorker: tc.workers}, roles)
		})
	}
}

func TestEveryVMHasItsSizingAndSettings(t *testing.T) {
	a := fixture(t, 3, 20)
	m, got, err := run(t, a)
	require.NoError(t, err)
	vms := m.ofType(typeVM)
	require.Len(t, vms, len(a.VMs))
	byName := map[string]registered{}
	for _, r := range vms {
		byName[str(r.inputs, "name")] = r
	}
	for _, want := range a.VMs {
		r, ok := byName[want.Name]
		require.True(t, ok, "VM %s declared", want.Name)
		in := r.inputs
		assert.Equal(t, want.VMID, num(in, "vmId"), want.Name)
		assert.Equal(t, want.Cores, num(in, "cpu", "cores"), want.Name)
		assert.Equal(t, "host", str(in, "cpu", "type"), want.Name)
		assert.Equal(t, want.MemoryMiB, num(in, "memory", "dedicated"), want.Name)
		assert.True(t, prop(in, "agent", "enabled").BoolValue(), want.Name)
		assert.True(t, prop(in, "onBoot").BoolValue(), want.Name)
		assert.Equal(t, "virtio-scsi-single", str(in, "scsiHardware"), want.Name)
		disk := first(in, "disks")
		assert.Equal(t, want.DiskGiB, num(disk, "size"), want.Name)
		assert.Equal(t, "scsi0", str(disk, "interface"), want.Name)
		assert.Equal(t, "on", str(disk, "discard"), want.Name)
		assert.True(t, prop(disk, "iothread").BoolValue(), want.Name)
		assert.Equal(t, "local-lvm", str(disk, "datastoreId"), want.Name)
		assert.Equal(t, "vmbr1", str(first(in, "networkDevices"), "bridge"), want.Name)
		tags := strs(in, "tags")
		assert.Contains(t, tags, want.Role, want.Name)
		assert.Contains(t, tags, "lab", want.Name)
		assert.True(t, slices.IsSorted(tags), "tags sorted like Proxmox stores them, else every preview diffs: %v", tags)
		ipv4 := first(in, "initialization", "ipConfigs")
		assert.Equal(t, want.IP+"/24", str(ipv4, "ipv4", "address"), want.Name)
		assert.Equal(t, "10.10.10.1", str(ipv4, "ipv4", "gateway"), want.Name)
		assert.Equal(t, []string{"1.1.1.1", "9.9.9.9"}, strs(in, "initialization", "dns", "servers"), want.Name)
	}
	for _, n := range got {
		want := a.VMs[slices.IndexFunc(a.VMs, func(v VMArgs) bool { return v.Name == n.Name })]
		assert.Equal(t, want.IP, n.IPv4, "output ipv4 of %s", n.Name)
		assert.Equal(t, want.VMID, n.VMID, "output vmId of %s", n.Name)
		assert.Equal(t, want.Role, n.Role)
	}
}

func TestChildrenAreParentedAndUseTheExplicitProvider(t *testing.T) {
	m, _, err := run(t, fixture(t, 1, 2))
	require.NoError(t, err)
	for _, r := range m.res {
		if r.typ == ComponentType {
			continue
		}
		assert.True(t, strings.HasSuffix(r.rpc.GetParent(), "::lab"), "%s %s parented to the component, got %q", r.typ, r.name, r.rpc.GetParent())
		assert.Contains(t, r.rpc.GetParent(), ComponentType, "%s parent", r.name)
		if strings.HasPrefix(r.typ, "proxmoxve:") {
			assert.Contains(t, r.rpc.GetProvider(), "pulumi:providers:proxmoxve::lab-proxmox", "%s uses the explicit provider", r.name)
		}
	}
}

func TestCloudInitHasTheKeyAndNoPassword(t *testing.T) {
	a := fixture(t, 1, 2)
	m, _, err := run(t, a)
	require.NoError(t, err)
	snippets := m.ofType(typeSnippet)
	require.Len(t, snippets, 3)
	for _, s := range snippets {
		assert.Equal(t, "snippets", str(s.inputs, "contentType"))
		data := str(s.inputs, "sourceRaw", "data")
		cfg := parseCloudConfig(t, data)
		users := cfg["users"].([]any)
		require.Len(t, users, 1, "only our user, no distribution default user")
		u := users[0].(map[string]any)
		assert.Equal(t, "infralab", u["name"])
		assert.Equal(t, []any{a.SSH.PublicKey}, u["ssh_authorized_keys"])
		assert.Equal(t, true, u["lock_passwd"])
		assert.Equal(t, false, cfg["ssh_pwauth"])
		assert.Equal(t, true, cfg["disable_root"])
		assert.Empty(t, passwordKeys(cfg), "no password of any kind in user-data")
		assert.NotContains(t, data, "$6$", "no crypt hash")
		assert.Contains(t, cfg["packages"], "qemu-guest-agent")
		assert.Contains(t, cfg["packages"], "chrony")
		ntp := cfg["ntp"].(map[string]any)
		assert.Equal(t, true, ntp["enabled"])
		assert.Equal(t, []any{"ntp1.hetzner.de", "ntp2.hetzner.com"}, ntp["servers"])
		assert.Equal(t, "Europe/Berlin", cfg["timezone"])
		name := strings.TrimSuffix(strings.TrimPrefix(str(s.inputs, "sourceRaw", "fileName"), "infralab-lab-"), ".user-data.yaml")
		assert.Equal(t, name, cfg["hostname"])
		sshd := cfg["write_files"].([]any)[0].(map[string]any)["content"].(string)
		assert.Contains(t, sshd, "PermitRootLogin no")
		assert.Contains(t, sshd, "PasswordAuthentication no")
	}
	// The VM points at its own snippet.
	for _, v := range m.ofType(typeVM) {
		want := fmt.Sprintf("local:snippets/infralab-lab-%s.user-data.yaml", str(v.inputs, "name"))
		assert.Equal(t, want, str(v.inputs, "initialization", "userDataFileId"))
		assert.True(t, prop(v.inputs, "initialization", "userAccount").IsNull(), "userAccount would conflict with user-data")
	}
}

func TestSecretsStaySecret(t *testing.T) {
	m, _, err := run(t, fixture(t, 1, 2))
	require.NoError(t, err)
	prov := m.ofType(typeProvider)
	require.Len(t, prov, 1)
	assert.True(t, prov[0].inputs["apiToken"].IsSecret(), "apiToken is a secret")
	assert.Equal(t, tokenSentinel, str(prov[0].inputs, "apiToken"))
	assert.True(t, prop(prov[0].inputs, "ssh").IsObject())
	assert.True(t, isSecretAt(prov[0].inputs, "ssh", "privateKey"), "provider SSH key is a secret")
	cmd := m.ofType(typeCommand)[0]
	assert.True(t, isSecretAt(cmd.inputs, "connection"), "command connection (holds the key) is a secret")
	for _, r := range m.res {
		for _, leak := range plaintextLeaks(resource.NewProperty(r.inputs), []string{tokenSentinel, "SECRET-KEY"}) {
			t.Errorf("%s %s holds a secret in plaintext at %s", r.typ, r.name, leak)
		}
	}
}

func TestImageDownloadPrecedesEveryVM(t *testing.T) {
	m, _, err := run(t, fixture(t, 3, 20))
	require.NoError(t, err)
	images := map[string]registered{}
	for _, im := range m.ofType(typeImage) {
		assert.Equal(t, "import", str(im.inputs, "contentType"))
		assert.Equal(t, strings.Repeat("ab", 64), str(im.inputs, "checksum"))
		assert.Equal(t, "sha512", str(im.inputs, "checksumAlgorithm"))
		assert.Equal(t, "debian-12-genericcloud-amd64.qcow2", str(im.inputs, "fileName"))
		images[str(im.inputs, "nodeName")] = im
	}
	require.Len(t, images, 3)
	for _, v := range m.ofType(typeVM) {
		node := str(v.inputs, "nodeName")
		im, ok := images[node]
		require.True(t, ok, "image on %s", node)
		assert.Less(t, im.seq, v.seq, "%s registered after the image on %s", str(v.inputs, "name"), node)
		assert.Equal(t, im.id, str(first(v.inputs, "disks"), "importFrom"), "disk imports the image of its own node")
		deps := v.rpc.GetPropertyDependencies()["disks"].GetUrns()
		assert.True(t, slices.ContainsFunc(deps, func(u string) bool { return strings.HasSuffix(u, "::"+im.name) }),
			"disks input depends on %s: %v", im.name, deps)
	}
}

func TestPlacementFollowsConfig(t *testing.T) {
	a := fixture(t, 3, 20)
	a.VMs[0].ProxmoxNode = "pve3"
	a.VMs[5].ProxmoxNode = "pve2"
	m, got, err := run(t, a)
	require.NoError(t, err)
	// Pinned VMs stay put; the others go round robin over pve1, pve2, pve3 in config order.
	want := map[string]string{}
	rr := 0
	for _, v := range a.VMs {
		if v.ProxmoxNode != "" {
			want[v.Name] = v.ProxmoxNode
			continue
		}
		want[v.Name] = fmt.Sprintf("pve%d", rr%3+1)
		rr++
	}
	assert.Equal(t, "pve3", want["cp-1"])
	assert.Equal(t, "pve1", want["worker-1"])
	for _, v := range m.ofType(typeVM) {
		assert.Equal(t, want[str(v.inputs, "name")], str(v.inputs, "nodeName"), "VM %s", str(v.inputs, "name"))
	}
	for _, s := range m.ofType(typeSnippet) {
		name := strings.TrimSuffix(strings.TrimPrefix(str(s.inputs, "sourceRaw", "fileName"), "infralab-lab-"), ".user-data.yaml")
		assert.Equal(t, want[name], str(s.inputs, "nodeName"), "user-data of %s on the VM's node", name)
	}
	for _, n := range got {
		assert.Equal(t, want[n.Name], n.ProxmoxNode, "output proxmoxNode of %s", n.Name)
	}
	perNode := map[string]int{}
	for _, n := range want {
		perNode[n]++
	}
	assert.Equal(t, map[string]int{"pve1": 7, "pve2": 7, "pve3": 7}, perNode)
}

func TestBridgeAndHostNAT(t *testing.T) {
	a := fixture(t, 3, 2)
	a.Network.MTU = 1400
	m, _, err := run(t, a)
	require.NoError(t, err)
	bridges := m.ofType(typeBridge)
	require.Len(t, bridges, 3)
	for _, b := range bridges {
		assert.Equal(t, "vmbr1", str(b.inputs, "name"))
		assert.Equal(t, []string{"enp0s31f6.4000"}, strs(b.inputs, "ports"))
		assert.Equal(t, 1400, num(b.inputs, "mtu"), "vSwitch MTU on every bridge")
		if str(b.inputs, "nodeName") == "pve1" {
			assert.Equal(t, "10.10.10.1/24", str(b.inputs, "address"), "gateway node carries the gateway address")
		} else {
			assert.True(t, prop(b.inputs, "address").IsNull(), "only the gateway node has an address on the bridge")
		}
	}
	cmds := m.ofType(typeCommand)
	require.Len(t, cmds, 1)
	cmd := cmds[0]
	assert.Equal(t, "pve1.example.org", str(cmd.inputs, "connection", "host"), "NAT runs on the first node, at the endpoint's host")
	assert.Equal(t, hostNATScript, str(cmd.inputs, "stdin"))
	create := str(cmd.inputs, "create")
	for _, want := range []string{"INFRALAB_BRIDGE='vmbr1'", "INFRALAB_CIDR='10.10.10.0/24'", "INFRALAB_UPLINK='vmbr0'", "apply"} {
		assert.Contains(t, create, want)
	}
	assert.Contains(t, str(cmd.inputs, "delete"), "remove")
	assert.Contains(t, strs(cmd.inputs, "triggers"), scriptSHA256(), "script hash in triggers")
	assert.True(t, cmd.rpc.GetDeleteBeforeReplace(), "old rules go before new ones are added")
	assert.True(t, slices.ContainsFunc(cmd.rpc.GetDependencies(), func(u string) bool { return strings.HasSuffix(u, "::lab-bridge-pve1") }),
		"NAT waits for the bridge: %v", cmd.rpc.GetDependencies())
	for _, v := range m.ofType(typeVM) {
		assert.Equal(t, 1, num(first(v.inputs, "networkDevices"), "mtu"), "NIC follows the bridge MTU")
		assert.True(t, slices.ContainsFunc(v.rpc.GetDependencies(), func(u string) bool { return strings.HasSuffix(u, "::lab-host-nat-pve1") }),
			"VM %s boots after NAT is up (cloud-init installs packages)", str(v.inputs, "name"))
	}
}

func TestNonRootHostUserUsesSudoAndSkipHostNATDropsTheCommand(t *testing.T) {
	a := fixture(t, 1, 2)
	a.Proxmox.HostSSH.User = "pveops"
	m, _, err := run(t, a)
	require.NoError(t, err)
	create := str(m.ofType(typeCommand)[0].inputs, "create")
	assert.Contains(t, create, "sudo -n tee '/usr/local/lib/infralab/host-nat.sh'")
	assert.Contains(t, create, "sudo -n env INFRALAB_BRIDGE=")

	a = fixture(t, 1, 2)
	a.Network.SkipHostNAT = true
	m, _, err = run(t, a)
	require.NoError(t, err)
	assert.Empty(t, m.ofType(typeCommand))
	assert.Len(t, m.ofType(typeVM), 3)
}

func TestInsecureOnlyWhenSet(t *testing.T) {
	m, _, err := run(t, fixture(t, 1, 2))
	require.NoError(t, err)
	// Explicitly false, never unset: unset, the provider reads PROXMOX_VE_INSECURE (provider_test.go).
	assert.False(t, prop(m.ofType(typeProvider)[0].inputs, "insecure").BoolValue(), "TLS verified by default")

	a := fixture(t, 1, 2)
	a.Proxmox.Insecure = true
	m, _, err = run(t, a)
	require.NoError(t, err)
	assert.True(t, prop(m.ofType(typeProvider)[0].inputs, "insecure").BoolValue())
}
