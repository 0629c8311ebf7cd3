package infra

// The proxmoxve and command provider plugins cannot be built on this machine (their Go modules
// are refused by the module proxy, see /work/shared/notes/toolchain.md), so these tests run the
// component against pulumi.WithMocks: they see exactly the inputs, options and ordering the engine
// would get, but no Proxmox API is called.

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
)

const (
	tokenSentinel = "root@pam!infralab=0b6f2c1e-SECRET-TOKEN"
	keySentinel   = "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-KEY\n-----END OPENSSH PRIVATE KEY-----\n"

	typeProvider = "pulumi:providers:proxmoxve"
	typeImage    = "proxmoxve:Download/file:File"
	typeSnippet  = "proxmoxve:Storage/file:File"
	typeBridge   = "proxmoxve:Network/networkBridge:NetworkBridge"
	typeVM       = "proxmoxve:VM/virtualMachine:VirtualMachine"
	typeCommand  = "command:remote:Command"
)

// registered is one RegisterResource call as the mock engine saw it.
type registered struct {
	seq    int
	typ    string
	name   string
	id     string
	urn    string
	inputs resource.PropertyMap
	rpc    *pulumirpc.RegisterResourceRequest
}

type mocks struct {
	mu  sync.Mutex
	res []registered
	// agentIPs overrides what a VM's guest agent reports, by VM name (default: lo and the
	// configured address).
	agentIPs map[string][][]string
	// noUUID plays a provider that reports no SMBIOS UUID.
	noUUID bool
}

// NewResource hands out IDs shaped like the real provider's, so inputs built from them (a disk's
// importFrom, the user-data file ID) look as they would against Proxmox.
func (m *mocks) NewResource(a pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	id := a.Name + "-id"
	switch a.TypeToken {
	case typeImage:
		id = fmt.Sprintf("%s:import/%s", str(a.Inputs, "datastoreId"), str(a.Inputs, "fileName"))
	case typeSnippet:
		id = fmt.Sprintf("%s:snippets/%s", str(a.Inputs, "datastoreId"), str(a.Inputs, "sourceRaw", "fileName"))
	case typeVM:
		id = fmt.Sprint(num(a.Inputs, "vmId"))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	outs := a.Inputs.Copy()
	if a.TypeToken == typeVM {
		outs["ipv4Addresses"] = agentAddresses(m.agentIPs, a.Inputs)
		// On create bpg generates the SMBIOS UUID the config leaves out (proxmoxtf/resource/vm/vm.go,
		// vmGetSMBIOS) and reads it back from Proxmox.
		smbios := prop(a.Inputs, "smbios").ObjectValue().Copy()
		if !m.noUUID {
			smbios["uuid"] = resource.NewProperty(fmt.Sprintf("00000000-0000-4000-8000-%012d", len(m.res)))
		}
		outs["smbios"] = resource.NewProperty(smbios)
	}
	m.res = append(m.res, registered{
		seq: len(m.res), typ: a.TypeToken, name: a.Name, id: id, inputs: a.Inputs, rpc: a.RegisterRPC,
		urn: fmt.Sprintf("%s$%s", a.TypeToken, a.Name),
	})
	return id, outs, nil
}

// agentAddresses is the VM's ipv4Addresses output as bpg reads it from the guest agent: one list
// per interface the agent reports, loopback included (proxmoxtf/resource/vm/network/network.go,
// ReadNetworkValues). By default the agent reports the address cloud-init was given.
func agentAddresses(override map[string][][]string, in resource.PropertyMap) resource.PropertyValue {
	ifaces, ok := override[str(in, "name")]
	if !ok {
		addr, _, _ := strings.Cut(str(first(in, "initialization", "ipConfigs"), "ipv4", "address"), "/")
		ifaces = [][]string{{"127.0.0.1"}, {addr}}
	}
	var arr []resource.PropertyValue
	for _, iface := range ifaces {
		var ips []resource.PropertyValue
		for _, ip := range iface {
			ips = append(ips, resource.NewProperty(ip))
		}
		arr = append(arr, resource.NewProperty(ips))
	}
	return resource.NewProperty(arr)
}

func (m *mocks) Call(a pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

func (m *mocks) ofType(typ string) []registered {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []registered
	for _, r := range m.res {
		if r.typ == typ {
			out = append(out, r)
		}
	}
	return out
}

// commands returns the remote commands whose name holds part (e.g. "host-nat").
func (m *mocks) commands(part string) []registered {
	var out []registered
	for _, r := range m.ofType(typeCommand) {
		if strings.Contains(r.name, "-"+part+"-") {
			out = append(out, r)
		}
	}
	return out
}

func (m *mocks) count() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := map[string]int{}
	for _, r := range m.res {
		c[r.typ]++
	}
	return c
}

// prop walks nested objects, looking through secrets.
func prop(pm resource.PropertyMap, path ...string) resource.PropertyValue {
	v := resource.NewProperty(pm)
	for _, k := range path {
		v = unsecret(v)
		if !v.IsObject() {
			return resource.NewNullProperty()
		}
		v = v.ObjectValue()[resource.PropertyKey(k)]
	}
	return unsecret(v)
}

func unsecret(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

func str(pm resource.PropertyMap, path ...string) string {
	v := prop(pm, path...)
	if v.IsString() {
		return v.StringValue()
	}
	return ""
}

func num(pm resource.PropertyMap, path ...string) int {
	v := prop(pm, path...)
	if v.IsNumber() {
		return int(v.NumberValue())
	}
	return -1
}

func strs(pm resource.PropertyMap, path ...string) []string {
	v := prop(pm, path...)
	if !v.IsArray() {
		return nil
	}
	var out []string
	for _, e := range v.ArrayValue() {
		out = append(out, unsecret(e).StringValue())
	}
	return out
}

// first returns element 0 of an array property as an object.
func first(pm resource.PropertyMap, path ...string) resource.PropertyMap {
	v := prop(pm, path...)
	if !v.IsArray() || len(v.ArrayValue()) == 0 {
		return resource.PropertyMap{}
	}
	return unsecret(v.ArrayValue()[0]).ObjectValue()
}

// fixture builds valid args for nodes Proxmox nodes, one control plane and workers workers.
func fixture(t testing.TB, nodes, workers int) *NodesArgs {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	a := &NodesArgs{
		Stack: "lab",
		Proxmox: ProxmoxArgs{
			Endpoint: "https://pve1.example.org:8006/",
			APIToken: pulumi.ToSecret(pulumi.String(tokenSentinel)).(pulumi.StringInput),
			HostSSH:  HostSSHArgs{User: "root", PrivateKey: pulumi.ToSecret(pulumi.String(keySentinel)).(pulumi.StringInput)},
		},
		Image: ImageArgs{
			URL:               "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2",
			Checksum:          strings.Repeat("ab", 64),
			ChecksumAlgorithm: "sha512",
		},
		Network: NetworkArgs{
			CIDR: "10.10.10.0/24", Gateway: "10.10.10.1", DNS: []string{"1.1.1.1", "9.9.9.9"},
			Bridge: "vmbr1", HostUplink: "vmbr0",
		},
		SSH:  GuestSSHArgs{User: "infralab", PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " ops@example"},
		Time: TimeArgs{Timezone: "Europe/Berlin", NTPServers: []string{"ntp1.hetzner.de", "ntp2.hetzner.com"}},
	}
	for i := 0; i < nodes; i++ {
		n := ProxmoxNode{Name: fmt.Sprintf("pve%d", i+1), Storage: "local-lvm", ImageStorage: "local"}
		if i > 0 {
			n.Address = fmt.Sprintf("pve%d.example.org", i+1)
		}
		if nodes > 1 {
			n.BridgePorts = []string{"enp0s31f6.4000"}
		}
		a.Proxmox.Nodes = append(a.Proxmox.Nodes, n)
	}
	a.VMs = append(a.VMs, VMArgs{Name: "cp-1", Role: RoleControlPlane, VMID: 900, IP: "10.10.10.10", Cores: 4, MemoryMiB: 8192, DiskGiB: 40})
	for i := 0; i < workers; i++ {
		a.VMs = append(a.VMs, VMArgs{
			Name: fmt.Sprintf("worker-%d", i+1), Role: RoleWorker, VMID: 901 + i,
			IP: fmt.Sprintf("10.10.10.%d", 20+i), Cores: 2 + i%3, MemoryMiB: 4096 + 1024*(i%2), DiskGiB: 30 + i,
		})
	}
	return a
}

// resolvedNode is a Node's outputs after the program ran.
type resolvedNode struct {
	Name, Role, IPv4, ProxmoxNode, InstanceID string
	VMID                                      int
}

// run declares NewNodes against the mocks and returns what its outputs resolved to.
func run(t testing.TB, a *NodesArgs) (*mocks, []resolvedNode, error) {
	t.Helper()
	return runWith(t, &mocks{}, a)
}

// runWith is run with a prepared mock engine (e.g. agent addresses set).
func runWith(t testing.TB, m *mocks, a *NodesArgs) (*mocks, []resolvedNode, error) {
	t.Helper()
	var got []resolvedNode
	var mu sync.Mutex
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		nodes, err := NewNodes(ctx, "lab", a)
		if err != nil {
			return err
		}
		for _, n := range nodes.Nodes {
			pulumi.All(n.IPv4, n.VMID, n.ProxmoxNode, n.InstanceID).ApplyT(func(v []any) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, resolvedNode{Name: n.Name, Role: n.Role, IPv4: v[0].(string), VMID: v[1].(int),
					ProxmoxNode: v[2].(string), InstanceID: v[3].(string)})
				return nil
			})
		}
		return nil
	}, pulumi.WithMocks("infralab", "lab", m))
	mu.Lock()
	defer mu.Unlock()
	return m, got, err
}
