package stacks

// Mode says which layers a stack runs.
type Mode string

const (
	// ModeLab builds everything: Proxmox VMs, a kubeadm cluster, then the apps.
	ModeLab Mode = "lab"
	// ModeLocal deploys only the apps layer onto an existing kubeconfig.
	ModeLocal Mode = "local"
)

// Config is one stack's whole configuration, as read from Pulumi.<stack>.yaml and its secrets.
// Fields a mode does not use stay zero.
type Config struct {
	Mode Mode

	// Lab only.
	Proxmox    Proxmox
	Network    Network
	Image      Image
	SSH        SSH
	Kubernetes Kubernetes
	Cluster    Cluster

	// Local only: the kubeconfig the apps layer deploys to.
	Kubeconfig string
	// RenderYAMLTo (local only, for `make bench`) writes the manifests to this folder with the
	// provider's renderYamlToDirectory instead of applying them to a cluster.
	RenderYAMLTo string
	// BenchCopies (local only, for `make bench`'s large case) declares the apps layer this many
	// times in all, each copy in namespaces suffixed -2, -3, ...; 0 means one, as always.
	BenchCopies int

	Apps Apps

	Secrets Secrets
}

// MaxBenchCopies bounds benchCopies: each copy is a full apps layer (~45 objects).
const MaxBenchCopies = 50

// Proxmox is the Proxmox VE API and the hosts VMs are placed on.
type Proxmox struct {
	Endpoint string `json:"endpoint"`
	// Insecure skips TLS verification of the API; nil means "not set" and is treated as false.
	Insecure *bool         `json:"insecure,omitempty"`
	Nodes    []ProxmoxNode `json:"nodes"`
	// HostSSHUser logs in to the Proxmox hosts (key: secret proxmoxSshPrivateKey): the provider
	// uploads cloud-init snippets over SSH, which the Proxmox API cannot write, and the host NAT
	// step runs over it. A non-root user with the sudoers lines of docs/infra.md is the default.
	HostSSHUser string `json:"hostSshUser"`
	// JumpUser is the login the cluster layer uses on the first Proxmox node as its SSH jump host
	// (key: secret proxmoxJumpPrivateKey), a key that may only forward to the VMs' port 22. Empty
	// (with no jump key) falls back to the host login.
	JumpUser string `json:"jumpUser,omitempty"`
	// SkipHostNAT leaves forwarding and masquerading on the host to the user (docs/infra.md).
	SkipHostNAT bool `json:"skipHostNat,omitempty"`
	// CPUType is the QEMU CPU model of every VM; empty keeps the infra layer's portable default
	// (x86-64-v2-AES), which live-migrates between hosts with different CPUs. `host` is faster but
	// pins VMs to hosts with the same CPU.
	CPUType string `json:"cpuType,omitempty"`
}

// ProxmoxNode is one Proxmox VE host.
type ProxmoxNode struct {
	Name string `json:"name"`
	// Address is the host's SSH address (required): the provider uploads snippets over it, the
	// bridge pre-flight and the NAT step run over it, and the cluster layer's jump host is the first.
	Address string `json:"address,omitempty"`
	// SSHHostKey is the host's SSH host public key ("ssh-ed25519 AAAA..."), read on its console.
	// Every SSH connection to the host checks it: the NAT step and the jump host through the
	// command provider's hostKey, the proxmoxve provider through ~/.ssh/known_hosts, where
	// hack/lab-prepare.sh pins it.
	SSHHostKey string `json:"sshHostKey,omitempty"`
	// Storage holds VM disks (e.g. local-lvm); ImageStorage holds the downloaded cloud image and
	// cloud-init snippets (a directory storage, e.g. local).
	Storage      string `json:"storage"`
	ImageStorage string `json:"imageStorage"`
	// BridgePorts joins the private bridge to other hosts at layer 2 (e.g. a Hetzner vSwitch VLAN
	// interface); needed on every host once VMs spread over several.
	BridgePorts []string `json:"bridgePorts,omitempty"`
}

// Network is the private VM network behind NAT on the Proxmox host, and the cluster's ranges.
type Network struct {
	Bridge      string   `json:"bridge"`
	Uplink      string   `json:"uplink"`
	NodeCIDR    string   `json:"nodeCidr"`
	Gateway     string   `json:"gateway"`
	DNS         []string `json:"dns"`
	PodCIDR     string   `json:"podCidr"`
	ServiceCIDR string   `json:"serviceCidr"`
	// MTU of the private bridge and the VMs' NICs; 0 keeps 1500. Behind a Hetzner vSwitch use 1400.
	MTU          int    `json:"mtu,omitempty"`
	SearchDomain string `json:"searchDomain,omitempty"`
}

// Image is the cloud image every VM boots from.
type Image struct {
	URL               string `json:"url"`
	Checksum          string `json:"checksum"`
	ChecksumAlgorithm string `json:"checksumAlgorithm"`
	// FileName on the Proxmox storage; empty takes the URL's last path element. Proxmox imports
	// only .qcow2, .raw and .vmdk, so an Ubuntu .img (a qcow2 file) needs e.g. noble.qcow2.
	FileName string `json:"fileName,omitempty"`
}

// SSH is the login the VMs accept; the private key is a secret (Secrets.SSHPrivateKey).
type SSH struct {
	User      string `json:"user"`
	PublicKey string `json:"publicKey"`
}

// Kubernetes pins the cluster software.
type Kubernetes struct {
	Version       string `json:"version"`
	CalicoVersion string `json:"calicoVersion"`
	// CalicoManifestSHA256 and CalicoCRDsSHA256 pin tigera-operator.yaml and operator-crds.yaml
	// of CalicoVersion: the manifests run as cluster-admin, so a checksum makes a changed download
	// fail instead of being applied. Empty takes the cluster layer's pins for a version it knows
	// (v3.31.0), else the file is applied unverified and `up` warns.
	CalicoManifestSHA256 string `json:"calicoManifestSha256,omitempty"`
	CalicoCRDsSHA256     string `json:"calicoCrdsSha256,omitempty"`
	// CalicoManifestBaseURL is where the nodes download those two manifests,
	// <base>/<calicoVersion>/manifests/<file>: a mirror for a network that cannot reach
	// raw.githubusercontent.com (the box serves them on http://10.77.0.1:8080/calico). The same
	// sha256 pins apply. Empty: https://raw.githubusercontent.com/projectcalico/calico.
	CalicoManifestBaseURL string `json:"calicoManifestBaseUrl,omitempty"`
	// ContainerdVersion is the exact containerd release (x.y.z) every node installs from
	// Docker's containerd.io packages; empty keeps the cluster layer's default.
	ContainerdVersion string `json:"containerdVersion,omitempty"`
	// ImageRepository (host[:port]/path) is where every node pulls the images kubeadm names
	// (control plane, etcd, CoreDNS, pause) instead of registry.k8s.io, and Calico's and the
	// tigera operator's instead of quay.io, at upstream's paths below it (<repo>/calico/node:<tag>,
	// <repo>/tigera/operator:<tag>): kubeadm's imageRepository, the Installation's registry,
	// plus a containerd hosts.toml for its host. ImageRepositoryCA is that registry's CA (PEM),
	// installed on the nodes so pulls are TLS-verified against it. Both empty: registry.k8s.io.
	ImageRepository   string `json:"imageRepository,omitempty"`
	ImageRepositoryCA string `json:"imageRepositoryCa,omitempty"`
	// PackageRepository, when set, replaces https://pkgs.k8s.io and https://download.docker.com
	// on every node (a mirror, or the box's offline repository); unset keeps upstream.
	PackageRepository *PackageRepository `json:"packageRepository,omitempty"`
	// PodPIDsLimit caps processes per pod on every kubelet; 0 keeps the cluster layer's default
	// (4096). Lower it to watch a fork bomb hit the wall.
	PodPIDsLimit int `json:"podPidsLimit,omitempty"`
	// CertRenewDays: the control plane renews its kubeadm certificates once any expires within
	// this many days (daily timer, and every `pulumi up`), and the stored kubeconfig is fetched
	// again a day later; 0 keeps the cluster layer's default (30).
	CertRenewDays int `json:"certRenewDays,omitempty"`
	// AllowCgroupV1 lets the kubelet start on a cgroup v1 host (failCgroupV1: false). Only for
	// machines that share an old host's kernel, as the box's do; the lab's VMs run cgroup v2.
	AllowCgroupV1 bool `json:"allowCgroupV1,omitempty"`
}

// Cluster is the VMs per role.
type Cluster struct {
	ControlPlane Role `json:"controlPlane"`
	Workers      Role `json:"workers"`
}

// Role sizes every VM of one role.
type Role struct {
	Cores  int    `json:"cores"`
	Memory string `json:"memory"`
	Disk   string `json:"disk"`
	Nodes  []VM   `json:"nodes"`
}

// VM is one Kubernetes node.
type VM struct {
	Name string `json:"name"`
	VMID int    `json:"vmId"`
	IP   string `json:"ip"`
	// ProxmoxNode places the VM; empty spreads VMs round robin over proxmox.nodes.
	ProxmoxNode string `json:"proxmoxNode,omitempty"`
}

// Apps configures the apps layer.
type Apps struct {
	Namespaces Namespaces `json:"namespaces"`
	API        API        `json:"api"`
	Postgres   Postgres   `json:"postgres"`
	Monitoring Monitoring `json:"monitoring"`
	// SkipAwait stops the provider waiting for workloads to become ready: for a control plane
	// without a kubelet, where pods never run.
	SkipAwait bool `json:"skipAwait,omitempty"`
	// PodSecurityExceptions relax Pod Security for one namespace, with the reason on record.
	PodSecurityExceptions []PodSecurityException `json:"podSecurityExceptions,omitempty"`
}

// Namespaces names the namespaces the apps layer creates.
type Namespaces struct {
	API        string `json:"api"`
	Database   string `json:"database"`
	Monitoring string `json:"monitoring"`
	// NodeExporter holds node-exporter when apps.monitoring.nodeExporter is on; default
	// DefaultNodeExporterNamespace. It is its own namespace because it needs a Pod Security
	// exception that the rest of monitoring does not.
	NodeExporter string `json:"nodeExporter,omitempty"`
}

// DefaultNodeExporterNamespace is where node-exporter goes unless apps.namespaces.nodeExporter says.
const DefaultNodeExporterNamespace = "monitoring-node"

// NodeExporterNamespace is the namespace node-exporter runs in: the configured one, or the default.
func (n Namespaces) NodeExporterNamespace() string {
	if n.NodeExporter == "" {
		return DefaultNodeExporterNamespace
	}
	return n.NodeExporter
}

// API is the healthcare-api Deployment.
type API struct {
	Image      string `json:"image"`
	PullPolicy string `json:"pullPolicy,omitempty"`
	Replicas   int    `json:"replicas"`
	// DBPoolSize bounds the api's connections per replica: the seed found pooling was its real limit.
	DBPoolSize int `json:"dbPoolSize"`
	// AllowIngressFrom lists namespaces whose pods may call the api.
	AllowIngressFrom []string `json:"allowIngressFrom,omitempty"`
}

// Postgres is the PostgreSQL StatefulSet and its exporter.
type Postgres struct {
	Image         string `json:"image"`
	ExporterImage string `json:"exporterImage"`
	PullPolicy    string `json:"pullPolicy,omitempty"`
	StorageClass  string `json:"storageClass"`
	StorageSize   string `json:"storageSize"`
	// LocalVolume, when set, makes the apps layer declare a local PersistentVolume on one node (the
	// seed's setup). Leave it out to let a provisioning StorageClass create the volume.
	LocalVolume *LocalVolume `json:"localVolume,omitempty"`
}

// LocalVolume binds PostgreSQL's data to a folder on one node.
type LocalVolume struct {
	NodeName string `json:"nodeName"`
	Path     string `json:"path"`
}

// Monitoring selects how metrics and alerts are deployed.
type Monitoring struct {
	// Mode is "chart" (kube-prometheus-stack), "standalone" (one Prometheus, no CRDs) or "off".
	Mode         string `json:"mode"`
	ChartVersion string `json:"chartVersion,omitempty"`
	Retention    string `json:"retention,omitempty"`
	// StorageClass keeps Prometheus data on a PVC of this (provisioning) class; empty keeps it in
	// an emptyDir, lost when the pod moves.
	StorageClass    string `json:"storageClass,omitempty"`
	StorageSize     string `json:"storageSize,omitempty"`
	PrometheusImage string `json:"prometheusImage,omitempty"`
	// PullPolicy of the standalone Prometheus image.
	PullPolicy string `json:"pullPolicy,omitempty"`
	// NodeExporter installs node-exporter for the nodes dashboard: the chart's in chart mode, ours
	// (nodeExporterImage) in standalone mode. It needs hostNetwork, hostPID and hostPath, so
	// apps.podSecurityExceptions must relax its namespace to privileged with a reason, and the
	// policy pack config must list the same.
	NodeExporter bool `json:"nodeExporter,omitempty"`

	// Standalone mode: what the chart brings, each when its image is set (pullPolicy applies).
	NodeExporterImage     string `json:"nodeExporterImage,omitempty"`
	KubeStateMetricsImage string `json:"kubeStateMetricsImage,omitempty"`
	AlertmanagerImage     string `json:"alertmanagerImage,omitempty"`
	// NodeAddresses are the nodes' IPs: Prometheus scrapes each kubelet and cAdvisor on 10250
	// (with its ServiceAccount token, nodes/metrics) and node-exporter on 9100.
	NodeAddresses []string `json:"nodeAddresses,omitempty"`
	// KubeAPICIDRs and KubeAPIPort are where kube-state-metrics reaches the API server (its
	// egress NetworkPolicy), after the kubernetes Service's DNAT.
	KubeAPICIDRs []string `json:"kubeAPICIDRs,omitempty"`
	KubeAPIPort  int      `json:"kubeAPIPort,omitempty"`
	// AlertWebhookURL is Alertmanager's receiver; its host must be an IP address.
	AlertWebhookURL string `json:"alertWebhookURL,omitempty"`
	// ScrapeInterval of the standalone Prometheus (also its evaluation interval); default 30s.
	ScrapeInterval string `json:"scrapeInterval,omitempty"`
	// AlertFor replaces the `for:` duration of the named alerts, e.g. {PodCrashLooping: 1m}.
	AlertFor map[string]string `json:"alertFor,omitempty"`
}

// PodSecurityException relaxes Pod Security enforcement for one namespace.
type PodSecurityException struct {
	Namespace string `json:"namespace"`
	Level     string `json:"level"`
	Reason    string `json:"reason"`
}

// Secret is a config value that must be stored with `pulumi config set --secret`. Value holds the
// plaintext only so validation can check its shape; it is never printed, and the program reads
// secrets for resources as pulumi secret outputs, never from here.
type Secret struct {
	Key      string
	Set      bool
	IsSecret bool
	Value    string
}

// Secrets are every secret a stack may need; which ones are required depends on the mode.
type Secrets struct {
	ProxmoxAPIToken       Secret
	ProxmoxSSHPrivateKey  Secret
	ProxmoxJumpPrivateKey Secret
	SSHPrivateKey         Secret
	EncryptionKey         Secret
	PostgresPassword      Secret
	APIDBPassword         Secret
	ExporterDBPassword    Secret
	GrafanaAdminPassword  Secret
}

// Secret config keys, without the "infralab:" namespace.
const (
	KeyProxmoxAPIToken      = "proxmoxApiToken"
	KeyProxmoxSSHPrivateKey = "proxmoxSshPrivateKey"
	// KeyProxmoxJumpPrivateKey is the jump host login's key (proxmox.jumpUser).
	KeyProxmoxJumpPrivateKey = "proxmoxJumpPrivateKey"
	KeySSHPrivateKey         = "sshPrivateKey"
	KeyEncryptionKey         = "encryptionKey"
	KeyPostgresPassword      = "postgresPassword"
	KeyAPIDBPassword         = "apiDbPassword"
	KeyExporterDBPassword    = "exporterDbPassword"
	KeyGrafanaAdminPassword  = "grafanaAdminPassword"
)
