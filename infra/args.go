package infra

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// Roles a VM can have.
const (
	RoleControlPlane = "control-plane"
	RoleWorker       = "worker"
)

// NodesArgs is everything the infra layer needs. Plain Go values, except secrets, which stay
// pulumi inputs so they never leave the secret path.
type NodesArgs struct {
	// Stack names the stack; it goes into tags, snippet file names and resource names.
	Stack   string
	Proxmox ProxmoxArgs
	Image   ImageArgs
	Network NetworkArgs
	// SSH is the login the cluster layer uses on the VMs.
	SSH  GuestSSHArgs
	Time TimeArgs
	VMs  []VMArgs
}

// ProxmoxArgs configures the provider and the Proxmox nodes.
type ProxmoxArgs struct {
	// Endpoint is the API URL, e.g. https://pve.example.org:8006/.
	Endpoint string
	// APIToken is `user@realm!tokenid=uuid`; keep it a secret (config.TrySecret or pulumi.ToSecret).
	APIToken pulumi.StringInput
	// Insecure skips TLS verification of the API; only for a self-signed lab certificate.
	Insecure bool
	// HostSSH logs in to the Proxmox hosts: the provider needs it to upload cloud-init snippets (the
	// Proxmox API cannot write snippets), and the NAT step runs over it.
	HostSSH HostSSHArgs
	// Nodes lists the Proxmox nodes. The first is the network gateway of the private bridge.
	Nodes []ProxmoxNode
	// CPUType is the QEMU CPU model of every VM; empty means DefaultCPUType. `host` passes the
	// host's CPU through (fastest), but a running VM can then only live-migrate to a node with
	// the same CPU.
	CPUType string
}

// DefaultCPUType is a portable x86-64 baseline with AES: every x86 server of the last decade runs
// it, so VMs live-migrate between nodes with different CPUs. It is what the Proxmox VE 8 web UI
// picks for new VMs.
const DefaultCPUType = "x86-64-v2-AES"

// HostSSHArgs is an SSH login on the Proxmox hosts.
type HostSSHArgs struct {
	// User is the SSH user on the hosts (root, or a user with passwordless sudo).
	User string
	// PrivateKey is the unencrypted OpenSSH/PEM private key; keep it a secret.
	PrivateKey pulumi.StringInput
}

// ProxmoxNode is one Proxmox VE node.
type ProxmoxNode struct {
	// Name is the Proxmox node name (`pvesh get /nodes`).
	Name string
	// Address is the node's SSH address: the provider's snippet uploads, the snippet cleanup, the
	// bridge pre-flight and (first node) the NAT step use it. Empty means the endpoint's host,
	// allowed on the first node only. The stack config requires it.
	Address string
	// Storage holds VM disks and cloud-init drives, e.g. local-lvm or local-zfs.
	Storage string
	// ImageStorage is a file storage with content types `import` and `snippets`, e.g. local.
	ImageStorage string
	// SSHHostKey is the node's SSH host public key ("ssh-ed25519 AAAA..."). The NAT step's connection
	// pins it; the provider cannot take one (docs/infra.md, "SSH logins and keys"). Empty accepts any.
	SSHHostKey string
	// BridgePorts joins the private bridge to other nodes at layer 2 (e.g. a Hetzner vSwitch VLAN
	// interface such as enp0s31f6.4000). Required on every node involved once VMs run on more than one node.
	BridgePorts []string
}

// ImageArgs is the cloud image every VM boots from.
type ImageArgs struct {
	// URL of a generic cloud image (qcow2), e.g. Debian 12 genericcloud.
	URL string
	// Checksum is the expected hex digest; Proxmox verifies it after the download.
	Checksum string
	// ChecksumAlgorithm is one of md5, sha1, sha224, sha256, sha384, sha512.
	ChecksumAlgorithm string
	// FileName on the image storage; empty means the URL's last path element.
	FileName string
}

// NetworkArgs is the private network the VMs sit on.
type NetworkArgs struct {
	// CIDR of the private network, e.g. 10.10.10.0/24.
	CIDR string
	// Gateway is the host's address on the private bridge, e.g. 10.10.10.1.
	Gateway string
	// DNS servers the VMs use.
	DNS []string
	// SearchDomain for the VMs; optional.
	SearchDomain string
	// Bridge is the private bridge the provider creates on every node, e.g. vmbr1.
	Bridge string
	// HostUplink is the host interface that carries the public address, e.g. vmbr0.
	HostUplink string
	// MTU of the private bridges (and so of the VMs' NICs); 0 keeps 1500. A Hetzner vSwitch needs 1400.
	MTU int
	// SkipHostNAT leaves forwarding and masquerading to the user (routed setups, or when the host
	// step in docs/infra.md was done by hand).
	SkipHostNAT bool
}

// GuestSSHArgs is the only login on the VMs.
type GuestSSHArgs struct {
	// User is created by cloud-init with sudo rights and no password.
	User string
	// PublicKey is one authorized_keys line.
	PublicKey string
}

// TimeArgs configures time on the VMs; certificates and etcd need synchronized clocks.
type TimeArgs struct {
	// Timezone, e.g. UTC or Europe/Berlin; empty means UTC.
	Timezone string
	// NTPServers for chrony; empty means the distribution's pool.
	NTPServers []string
}

// VMArgs is one cluster node.
type VMArgs struct {
	// Name is the VM name and the guest hostname.
	Name string
	// Role is RoleControlPlane or RoleWorker.
	Role string
	// VMID is the Proxmox VM ID.
	VMID int
	// IP is the VM's IPv4 address inside Network.CIDR.
	IP string
	// ProxmoxNode pins the VM to a node; empty spreads VMs round robin over ProxmoxArgs.Nodes.
	ProxmoxNode string
	Cores       int
	MemoryMiB   int
	DiskGiB     int
}
