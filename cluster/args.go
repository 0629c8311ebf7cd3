package cluster

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/infralab/infralab/internal/hostkey"
)

// Node is one VM reachable over SSH.
type Node struct {
	// Name becomes the Kubernetes node name (a DNS-1123 label).
	Name string
	// IP is the address SSH reaches and the kubelet advertises.
	IP string
	// InstanceID (optional) is the VM's ID. It goes into the triggers of every command on this
	// node, so a replaced VM runs its phases again even when it keeps its name and IP.
	InstanceID pulumi.StringInput
	// HostKey (optional) is the node's SSH host public key, one authorized_keys line
	// ("ssh-ed25519 AAAA..."). Set, the command provider accepts only that key
	// (ssh.FixedHostKey); empty, it accepts any (pulumi-command v1.1.0
	// provider/pkg/provider/remote/connection.go). See docs/infra.md, "SSH logins and keys".
	HostKey string
}

// Bastion is an SSH jump host.
type Bastion struct {
	Host string
	// User and PrivateKey are the jump login. It needs nothing but TCP forwarding to the nodes'
	// port 22: give it a key restricted to that in authorized_keys (docs/infra.md).
	User string
	// PrivateKey is the unencrypted private key the jump host accepts; pass a Pulumi secret.
	PrivateKey pulumi.StringInput
	// HostKey is the jump host's SSH host public key (see Node.HostKey); empty accepts any.
	HostKey string
}

// KubeadmArgs configures the bootstrap. Every plain field is validated before any resource is
// declared; the secret inputs are checked when their values arrive.
type KubeadmArgs struct {
	ClusterName string
	// KubernetesVersion is x.y.z, e.g. 1.35.4; the packages come from pkgs.k8s.io vX.Y. Changed
	// on a running cluster by a patch or one minor, it upgrades the cluster (upgrade.go).
	KubernetesVersion string
	// RunningVersion (optional) is the version the cluster ran at the last deployment
	// (Kubeadm.KubernetesVersion as stored); set, a path kubeadm cannot take (a skipped minor, a
	// downgrade) is refused before any resource. The nodes check the same path again.
	RunningVersion string
	ControlPlane   Node
	Workers        []Node
	SSHUser        string
	// SSHPrivateKey is the PEM private key; pass a Pulumi secret.
	SSHPrivateKey pulumi.StringInput
	PodCIDR       string
	ServiceCIDR   string
	// EncryptionKey is 32 random bytes, base64 (`head -c 32 /dev/urandom | base64`); pass a
	// Pulumi secret. Changing it on a running cluster is refused (rotation is not supported yet).
	EncryptionKey pulumi.StringInput
	// CalicoVersion is the Calico release, e.g. v3.31.0 (DefaultCalicoVersion).
	CalicoVersion string
	// CalicoManifestSHA256 and CalicoCRDsSHA256, when set, must match tigera-operator.yaml and
	// operator-crds.yaml of CalicoVersion; empty takes the pinned sha256 of a known version
	// (calicoPins), else the file is pinned by version only.
	CalicoManifestSHA256 string
	CalicoCRDsSHA256     string
	// CalicoManifestBaseURL (optional) is where calico.sh downloads the two manifests,
	// <base>/<version>/manifests/<file>; empty means DefaultCalicoManifestBaseURL. Checked
	// against the same sha256 either way (calico.go).
	CalicoManifestBaseURL string
	// ContainerdVersion is the exact containerd 2.x every node installs (Docker's containerd.io
	// package of that version, held); empty means DefaultContainerdVersion.
	ContainerdVersion string
	// ImageRepository (host[:port]/path) replaces registry.k8s.io for every image kubeadm pulls,
	// pause included, and quay.io for Calico's and the tigera operator's images (at upstream's
	// paths below it, calico.go), and containerd gets a hosts.toml for its host; empty keeps
	// registry.k8s.io and quay.io (imagerepository.go). ImageRepositoryCA is the PEM CA that registry's TLS certificate is
	// checked against (empty: the node's system roots).
	ImageRepository   string
	ImageRepositoryCA string
	// PackageRepository, when set, is the one mirror every node installs kubelet/kubeadm/kubectl
	// and containerd.io from instead of pkgs.k8s.io and download.docker.com (packagerepo.go).
	PackageRepository *PackageRepository
	// PodPIDsLimit caps processes per pod (kubelet podPidsLimit), so a fork bomb stays inside its
	// pod; zero means DefaultPodPIDsLimit. Changing it re-applies the kubelet config on every node.
	PodPIDsLimit int
	// AllowCgroupV1 lets the kubelet start on a cgroup v1 host (failCgroupV1: false), for
	// machines that share an old host's kernel (the box, docs/box-declared.md). The lab's VMs
	// boot Debian 12's cgroup v2 and leave it false: the kubelet's default refuses cgroup v1.
	AllowCgroupV1 bool
	// Bastion, when set, is the SSH jump host every command goes through: the VMs sit on a private
	// bridge behind the Proxmox host's NAT, which the machine running `pulumi up` may not route to.
	Bastion *Bastion
	// DependsOn are the resources the nodes need first (the VMs).
	DependsOn []pulumi.Resource
	// Timeouts in seconds; zero means the default.
	CloudInitTimeoutSeconds int // default 900
	NodeReadyTimeoutSeconds int // default 600
	// NodeDrainTimeoutSeconds bounds the drain of a worker that leaves the stack; default 300.
	NodeDrainTimeoutSeconds int
	// CertRenewDays: the control plane renews its certificates once any expires within this many
	// days, and the stored Kubeconfig is fetched again a day later; 0 means DefaultCertRenewDays.
	CertRenewDays int
	// Previous is what the previous deployment reported about the Kubeconfig's certificate
	// (certs.go); nil on a first deployment or for a caller that does not keep it, in which case
	// the Kubeconfig is never fetched again for its age (the control plane still renews).
	Previous *PreviousCertificates
	// Clock tells the time for the renewal decision; nil means time.Now (tests set it).
	Clock func() time.Time
}

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	semver    = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	vSemver   = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)
	sha256Re  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	posixUser = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// ValidationError lists every problem found, one per line, each with its field path.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	return "invalid cluster configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Validate checks every plain field and reports all problems at once.
func (a *KubeadmArgs) Validate() error {
	var p []string
	add := func(field, format string, v ...any) { p = append(p, "cluster."+field+": "+fmt.Sprintf(format, v...)) }
	if j := a.Bastion; j != nil {
		if j.Host == "" || j.User == "" || j.PrivateKey == nil {
			add("bastion", "needs host, user and private key (the Proxmox host's SSH login)")
		}
		if msg := hostkey.Problem(j.HostKey); msg != "" {
			add("bastion.hostKey", "%s (%s)", msg, hostkey.Hint)
		}
	}

	if !dnsLabel.MatchString(a.ClusterName) {
		add("clusterName", "%q is not a DNS-1123 label (lower-case letters, digits, '-', at most 63)", a.ClusterName)
	}
	if !semver.MatchString(a.KubernetesVersion) {
		add("kubernetesVersion", "%q must be x.y.z without a leading v, e.g. 1.35.4", a.KubernetesVersion)
	}
	if semver.MatchString(a.KubernetesVersion) {
		a.validateUpgrade(add)
	}
	if a.RunningVersion != "" && !semver.MatchString(a.RunningVersion) {
		add("runningVersion", "%q must be x.y.z (the stored kubernetesVersion output)", a.RunningVersion)
	}
	if !posixUser.MatchString(a.SSHUser) {
		add("sshUser", "%q is not a valid login name (e.g. debian)", a.SSHUser)
	}
	if a.SSHPrivateKey == nil {
		add("sshPrivateKey", "missing: set it with `pulumi config set --secret`")
	}
	if a.EncryptionKey == nil {
		add("encryptionKey", "missing: `head -c 32 /dev/urandom | base64 | pulumi config set --secret ...`")
	}
	if !vSemver.MatchString(a.CalicoVersion) {
		add("calicoVersion", "%q must be vX.Y.Z, e.g. %s", a.CalicoVersion, DefaultCalicoVersion)
	}
	if a.CalicoManifestSHA256 != "" && !sha256Re.MatchString(a.CalicoManifestSHA256) {
		add("calicoManifestSha256", "must be 64 lower-case hex characters or empty")
	}
	if a.CalicoCRDsSHA256 != "" && !sha256Re.MatchString(a.CalicoCRDsSHA256) {
		add("calicoCrdsSha256", "must be 64 lower-case hex characters or empty")
	}
	if msg := checkCalicoManifestBaseURL(a.CalicoManifestBaseURL, CalicoManifestsPinned(a.CalicoVersion, a.CalicoManifestSHA256, a.CalicoCRDsSHA256)); msg != "" {
		add("calicoManifestBaseUrl", "%s", msg)
	}
	if a.ContainerdVersion != "" {
		if msg := checkContainerdVersion(a.ContainerdVersion, a.KubernetesVersion); msg != "" {
			add("containerdVersion", "%s", msg)
		}
	}
	for _, e := range checkImageRepository(a.ImageRepository, a.ImageRepositoryCA) {
		add(e[0], "%s", e[1])
	}
	if msg := a.PackageRepository.check(); msg != "" {
		add("packageRepository", "%s", msg)
	}
	if a.PodPIDsLimit != 0 && (a.PodPIDsLimit < MinPodPIDsLimit || a.PodPIDsLimit > MaxPodPIDsLimit) {
		add("podPidsLimit", "%d is outside %d-%d (0 keeps %d)", a.PodPIDsLimit, MinPodPIDsLimit, MaxPodPIDsLimit, DefaultPodPIDsLimit)
	}
	if d := a.CertRenewDays; d != 0 && (d < MinCertRenewDays || d > MaxCertRenewDays) {
		add("certRenewDays", "%d is outside %d-%d (0 keeps %d); certificates live 365 days and are checked daily", d, MinCertRenewDays, MaxCertRenewDays, DefaultCertRenewDays)
	}
	if a.CloudInitTimeoutSeconds < 0 || a.NodeReadyTimeoutSeconds < 0 || a.NodeDrainTimeoutSeconds < 0 {
		add("timeouts", "must not be negative")
	}

	pod := parseCIDR(a.PodCIDR, "podCidr", add)
	svc := parseCIDR(a.ServiceCIDR, "serviceCidr", add)
	if pod != nil && svc != nil && (pod.Contains(svc.IP) || svc.Contains(pod.IP)) {
		add("serviceCidr", "%s overlaps podCidr %s; pick disjoint ranges", a.ServiceCIDR, a.PodCIDR)
	}

	names, ips := map[string]string{}, map[string]string{}
	checkNode := func(field string, n Node) {
		if msg := hostkey.Problem(n.HostKey); msg != "" {
			add(field+".hostKey", "%s (%s)", msg, hostkey.Hint)
		}
		if !dnsLabel.MatchString(n.Name) {
			add(field+".name", "%q is not a DNS-1123 label", n.Name)
		} else if prev, dup := names[n.Name]; dup {
			add(field+".name", "%q is already used by %s", n.Name, prev)
		} else {
			names[n.Name] = field
		}
		ip := net.ParseIP(n.IP)
		switch {
		case ip == nil || ip.To4() == nil:
			add(field+".ip", "%q is not an IPv4 address", n.IP)
		case pod != nil && pod.Contains(ip):
			add(field+".ip", "%s lies inside podCidr %s", n.IP, a.PodCIDR)
		case svc != nil && svc.Contains(ip):
			add(field+".ip", "%s lies inside serviceCidr %s", n.IP, a.ServiceCIDR)
		default:
			if prev, dup := ips[n.IP]; dup {
				add(field+".ip", "%s is already used by %s", n.IP, prev)
			}
			ips[n.IP] = field
		}
	}
	checkNode("controlPlane", a.ControlPlane)
	for i, w := range a.Workers {
		checkNode(fmt.Sprintf("workers[%d]", i), w)
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

func parseCIDR(s, field string, add func(string, string, ...any)) *net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil || ip.To4() == nil {
		add(field, "%q is not an IPv4 CIDR, e.g. 10.244.0.0/16", s)
		return nil
	}
	if !ip.Equal(n.IP) {
		add(field, "%q has host bits set; use %s", s, n.String())
		return nil
	}
	return n
}

func (a *KubeadmArgs) cloudInitTimeout() int { return orDefault(a.CloudInitTimeoutSeconds, 900) }
func (a *KubeadmArgs) nodeReadyTimeout() int { return orDefault(a.NodeReadyTimeoutSeconds, 600) }
func (a *KubeadmArgs) drainTimeout() int {
	return orDefault(a.NodeDrainTimeoutSeconds, defaultDrainTimeoutSeconds)
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// nodes returns the control plane first, then the workers in order.
func (a *KubeadmArgs) nodes() []Node { return append([]Node{a.ControlPlane}, a.Workers...) }
