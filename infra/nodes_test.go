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
				typeImage:     tc.nodes,           // one download per Proxmox node
				typeBridge:    tc.nodes,           // the private bridge on every node
				typeCommand:   1 + tc.nodes + vms, // host NAT on the gateway node, a bridge pre-flight per node, a snippet cleanup per VM
				typeSnippet:   vms,                // one user-data per VM
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
		assert.Equal(t, "x86-64-v2-AES", str(in, "cpu", "type"), "%s: a portable CPU model, so live migration works between different hosts", want.Name)
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
		want := "local:snippets/" + snippetFileName("lab", str(v.inputs, "name"))
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
	cmd := m.commands("host-nat")[0]
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
		node := str(im.inputs, "nodeName")
		assert.Equal(t, imageFileName(fixture(t, 3, 20).Image, node), str(im.inputs, "fileName"))
		images[node] = im
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
	cmds := m.commands("host-nat")
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
	create := str(m.commands("host-nat")[0].inputs, "create")
	assert.Contains(t, create, "sudo -n tee '/usr/local/lib/infralab/host-nat.sh'")
	assert.Contains(t, create, "sudo -n env INFRALAB_BRIDGE=")

	a = fixture(t, 1, 2)
	a.Network.SkipHostNAT = true
	m, _, err = run(t, a)
	require.NoError(t, err)
	assert.Empty(t, m.commands("host-nat"))
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

// The image file name carries the content it holds: a changed checksum or URL is a new file
// beside the old one, never the same volume. bpg's download file resource
// (fwprovider/nodes/resource_download_file.go) replaces on url/checksum/file_name changes
// create-before-delete, and its Delete removes the volume by ID: with one fixed name the old
// resource's delete removed the file the new one had just downloaded. overwrite_unmanaged deleted
// any same-named file first, owned or not; overwrite (default true) re-downloads when the URL's
// size changes. All three are off or absent now.
func TestImageFileNameCarriesChecksumURLAndNode(t *testing.T) {
	a := fixture(t, 2, 2)
	m, _, err := run(t, a)
	require.NoError(t, err)
	names := map[string]string{}
	for _, im := range m.ofType(typeImage) {
		name := str(im.inputs, "fileName")
		node := str(im.inputs, "nodeName")
		names[node] = name
		assert.True(t, strings.HasPrefix(name, a.Image.Checksum[:12]+"-"), "%s starts with the checksum prefix", name)
		assert.True(t, strings.HasSuffix(name, "-"+node+"-debian-12-genericcloud-amd64.qcow2"), "%s names its node and the image", name)
		assert.True(t, prop(im.inputs, "overwriteUnmanaged").IsNull() || !prop(im.inputs, "overwriteUnmanaged").BoolValue(),
			"overwriteUnmanaged deletes files infralab does not own")
		assert.False(t, prop(im.inputs, "overwrite").BoolValue(), "overwrite off: the checksum pins the content")
		assert.True(t, prop(im.inputs, "overwrite").IsBool(), "overwrite set explicitly")
	}
	assert.NotEqual(t, names["pve1"], names["pve2"], "nodes sharing one storage never share a volume")

	before := imageFileName(a.Image, "pve1")
	b := a.Image
	b.Checksum = strings.Repeat("cd", 64)
	assert.NotEqual(t, before, imageFileName(b, "pve1"), "a new checksum is a new file")
	c := a.Image
	c.URL = "https://mirror.example.org/debian-12-genericcloud-amd64.qcow2"
	assert.NotEqual(t, before, imageFileName(c, "pve1"), "a new URL is a new file")
	d := a.Image
	d.FileName = "bookworm.qcow2"
	assert.True(t, strings.HasSuffix(imageFileName(d, "pve1"), "-pve1-bookworm.qcow2"), "fileName is the readable part")
}

// A user-data edit must never delete the live snippet. bpg's file resource forces replacement on
// source_raw.data (proxmoxtf/resource/file.go: ForceNew), overwrites a same-named file on create
// (overwrite defaults to true) and deletes the volume by ID in fileDelete: create-before-delete
// then removed the file the new resource had just written, and qemu-server reads the snippet at
// every cold start (src/PVE/QemuServer/Cloudinit.pm, read_cloudinit_snippets_file). A new name per
// content is no way out: the VM's initialization.user_data_file_id is ForceNew
// (proxmoxtf/resource/vm/vm.go), so a new file ID would replace the VM on every user-data edit.
// So: one name per VM, RetainOnDelete on the snippet, the VM's file ID a known string (an unknown
// ID in preview would show the VM as replaced), and removal by a command deleted after the VM.
func TestSnippetSurvivesItsReplacementAndGoesWithItsVM(t *testing.T) {
	a := fixture(t, 2, 2)
	m, _, err := run(t, a)
	require.NoError(t, err)
	snippets := map[string]registered{}
	for _, s := range m.ofType(typeSnippet) {
		assert.True(t, s.rpc.GetRetainOnDelete(), "%s: a replaced snippet must not delete the file its successor wrote", s.name)
		assert.False(t, s.rpc.GetDeleteBeforeReplace(), "%s: delete-before-replace would cascade into the VM", s.name)
		snippets[s.name] = s
	}
	cleanups := map[string]registered{}
	for _, c := range m.commands("user-data-cleanup") {
		cleanups[c.name] = c
	}
	require.Len(t, cleanups, len(a.VMs))
	for _, v := range m.ofType(typeVM) {
		name := str(v.inputs, "name")
		node := str(v.inputs, "nodeName")
		snippet := snippets["lab-user-data-"+name]
		volid := "local:snippets/" + snippetFileName("lab", name)
		assert.Equal(t, volid, snippet.id)
		assert.Equal(t, volid, str(v.inputs, "initialization", "userDataFileId"))
		for _, u := range v.rpc.GetPropertyDependencies()["initialization"].GetUrns() {
			assert.NotContains(t, u, "lab-user-data-", "%s: the file ID must not come from the snippet's outputs (unknown in preview)", name)
		}
		deps := v.rpc.GetDependencies()
		assert.True(t, slices.ContainsFunc(deps, func(u string) bool { return strings.HasSuffix(u, "::lab-user-data-"+name) }), "%s waits for its snippet", name)
		assert.True(t, slices.ContainsFunc(deps, func(u string) bool { return strings.HasSuffix(u, "::lab-user-data-cleanup-"+name) }),
			"%s depends on its cleanup, so destroy deletes the VM first", name)

		c, ok := cleanups["lab-user-data-cleanup-"+name]
		require.True(t, ok, "cleanup for %s", name)
		wantHost := "pve1.example.org"
		if node == "pve2" {
			wantHost = "pve2.example.org"
		}
		assert.Equal(t, wantHost, str(c.inputs, "connection", "host"), "%s: cleanup runs on the VM's node", name)
		assert.True(t, isSecretAt(c.inputs, "connection"))
		assert.Equal(t, snippetCleanupScript, str(c.inputs, "stdin"))
		assert.Contains(t, str(c.inputs, "create"), "INFRALAB_SNIPPET="+shellQuote(volid))
		assert.True(t, strings.HasSuffix(str(c.inputs, "create"), "sh -s check"))
		assert.True(t, strings.HasSuffix(str(c.inputs, "delete"), "sh -s remove"))
		assert.Contains(t, strs(c.inputs, "triggers"), sha256Hex(snippetCleanupScript))
		assert.True(t, slices.ContainsFunc(c.rpc.GetDependencies(), func(u string) bool { return strings.HasSuffix(u, "::lab-user-data-"+name) }),
			"cleanup checks the uploaded snippet")
	}
}

// "Created" must mean booted and through cloud-init. bpg waits for the guest agent only up to
// agent.timeout (default 15m) and on a timeout or a 403 merely warns, leaving ipv4Addresses empty
// (proxmoxtf/resource/vm/network/network.go, ReadNetworkValues); without wait_for_ip.ipv4 any
// global IPv6 address ends the wait (proxmox/nodes/vms/vms.go, WaitForNetworkInterfacesFromVMAgent).
// So both are set, and the node's address is taken from what the agent reports: a VM whose agent
// does not report its configured address fails the run instead of resolving anyway.
func TestNodeAddressComesFromTheGuestAgent(t *testing.T) {
	m, got, err := run(t, fixture(t, 1, 2))
	require.NoError(t, err)
	for _, v := range m.ofType(typeVM) {
		assert.Equal(t, agentTimeout, str(v.inputs, "agent", "timeout"), "agent timeout set explicitly")
		assert.True(t, prop(v.inputs, "agent", "waitForIp", "ipv4").BoolValue(), "wait for an IPv4 address, not any address")
	}
	require.Len(t, got, 3)

	for name, reported := range map[string][][]string{
		"agent timed out or 403": {},
		"DHCP address":           {{"127.0.0.1"}, {"10.10.10.200"}},
		"only IPv6":              {{"127.0.0.1"}, {}},
	} {
		t.Run(name, func(t *testing.T) {
			mk := &mocks{agentIPs: map[string][][]string{"worker-1": reported}}
			_, _, err := runWith(t, mk, fixture(t, 1, 2))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "infra: VM worker-1 (vmId 901): its guest agent reports")
			assert.Contains(t, err.Error(), "not the configured 10.10.10.20")
		})
	}
}

// A config edit must not reboot every VM at once. bpg's reboot_after_update defaults to true and
// reboots each updated VM that needs it, all in parallel, without a drain
// (proxmoxtf/resource/vm/vm.go, vmUpdateDiskLocationAndSize). Off, the provider only warns; what
// the VMs still have to boot into is their bootConfig digest, written to SMBIOS serial, which
// Proxmox keeps as a pending change until the VM's next cold start (smbios1 is not hotpluggable:
// qemu-server src/PVE/QemuServer.pm, vmconfig_hotplug_pending), and exported per node.
func TestConfigChangesNeverRebootAndSurfaceAsBootConfig(t *testing.T) {
	base := fixture(t, 1, 2)
	m, _, err := run(t, base)
	require.NoError(t, err)
	serials := map[string]string{}
	for _, v := range m.ofType(typeVM) {
		assert.True(t, prop(v.inputs, "rebootAfterUpdate").IsBool() && !prop(v.inputs, "rebootAfterUpdate").BoolValue(),
			"%s: rebootAfterUpdate explicitly false", str(v.inputs, "name"))
		serial := str(v.inputs, "smbios", "serial")
		assert.Regexp(t, `^infralab-boot-[0-9a-f]{16}$`, serial)
		assert.Empty(t, str(v.inputs, "smbios", "uuid"), "the UUID is Proxmox's per-instance identity, never set by us")
		serials[str(v.inputs, "name")] = serial
	}
	assert.Len(t, serials, 3)

	serialOf := func(edit func(a *NodesArgs)) string {
		a := fixture(t, 1, 2)
		a.SSH.PublicKey = base.SSH.PublicKey
		edit(a)
		m, _, err := run(t, a)
		require.NoError(t, err)
		for _, v := range m.ofType(typeVM) {
			if str(v.inputs, "name") == "worker-1" {
				return str(v.inputs, "smbios", "serial")
			}
		}
		return ""
	}
	assert.Equal(t, serials["worker-1"], serialOf(func(*NodesArgs) {}), "the digest is stable")
	for name, edit := range map[string]func(a *NodesArgs){
		"cores":     func(a *NodesArgs) { a.VMs[1].Cores++ },
		"memory":    func(a *NodesArgs) { a.VMs[1].MemoryMiB += 1024 },
		"cpu type":  func(a *NodesArgs) { a.Proxmox.CPUType = "x86-64-v3" },
		"ip":        func(a *NodesArgs) { a.VMs[1].IP = "10.10.10.99" },
		"dns":       func(a *NodesArgs) { a.Network.DNS = []string{"9.9.9.9"} },
		"search":    func(a *NodesArgs) { a.Network.SearchDomain = "lab.internal" },
		"user-data": func(a *NodesArgs) { a.Time.Timezone = "UTC" },
		"mtu":       func(a *NodesArgs) { a.Network.MTU = 1400 },
	} {
		assert.NotEqual(t, serials["worker-1"], serialOf(edit), "a %s change needs a cold boot, so it changes bootConfig", name)
	}
	assert.Equal(t, serials["worker-1"], serialOf(func(a *NodesArgs) { a.VMs[1].DiskGiB += 10 }),
		"a disk grows online: no reboot, no bootConfig change")
}

// CPU type host exposes the host's exact CPU, which blocks live migration to a node with another
// CPU; the default is a portable model and proxmox.cpuType picks another one from the list bpg
// accepts (proxmoxtf/resource/vm/validators.go, CPUTypeValidator).
func TestCPUTypeIsConfigurable(t *testing.T) {
	a := fixture(t, 1, 2)
	a.Proxmox.CPUType = "host"
	m, _, err := run(t, a)
	require.NoError(t, err)
	for _, v := range m.ofType(typeVM) {
		assert.Equal(t, "host", str(v.inputs, "cpu", "type"))
	}
	a.Proxmox.CPUType = "skylake"
	_, err = validate(a)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `proxmox.cpuType: "skylake" is not a CPU type the provider accepts`)
}

// The instance ID is "<vmId>/<SMBIOS UUID>", the UUID the provider mints when it creates the VM;
// we never set one (the provider would then keep ours forever, across re-creations too).
func TestInstanceIDIsTheProvidersSMBIOSUUID(t *testing.T) {
	m, got, err := run(t, fixture(t, 1, 2))
	require.NoError(t, err)
	require.Len(t, got, 3)
	seen := map[string]bool{}
	for _, n := range got {
		assert.Regexp(t, fmt.Sprintf(`^%d/00000000-0000-4000-8000-\d{12}$`, n.VMID), n.InstanceID, n.Name)
		assert.False(t, seen[n.InstanceID], "instance IDs are unique")
		seen[n.InstanceID] = true
	}
	for _, v := range m.ofType(typeVM) {
		assert.Empty(t, str(v.inputs, "smbios", "uuid"))
	}
	_, _, err = runWith(t, &mocks{noUUID: true}, fixture(t, 1, 2))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the provider reported no SMBIOS UUID")
}
