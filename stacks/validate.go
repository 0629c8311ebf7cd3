package stacks

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/infralab/infralab/internal/pvename"
)

// Supported Kubernetes minor versions (docs/config.md). 1.34 is the floor: the API server's
// AuthenticationConfiguration (cluster/hardening) is written as apiserver.config.k8s.io/v1, GA in
// 1.34; a 1.33 API server would not start with it. 1.35.4 is what the tests run.
const (
	MinKubernetesMinor = 34
	MaxKubernetesMinor = 35
)

func validate(cfg *Config, c *errs) {
	switch cfg.Mode {
	case ModeLab:
		validateProxmox(cfg, c)
		validateProxmoxHosts(&cfg.Proxmox, c)
		validateNetwork(&cfg.Network, c)
		validateHostNetwork(&cfg.Network, c)
		validateImage(&cfg.Image, c)
		validateImageFile(&cfg.Image, c)
		validateSSH(cfg, c)
		validateKubernetes(&cfg.Kubernetes, c)
		validateCluster(cfg, c)
		validateSpread(cfg, c)
		requireSecret(cfg.Secrets.EncryptionKey, c, "a base64 key of 32 random bytes: pulumi config set --secret encryptionKey \"$(head -c32 /dev/urandom | base64)\"")
		validateEncryptionKey(cfg.Secrets.EncryptionKey, c)
		if cfg.RenderYAMLTo != "" {
			c.add("renderYamlTo", "is only for mode local", "remove it; the lab stack always deploys to its cluster")
		}
		if cfg.BenchCopies != 0 {
			c.add("benchCopies", "is only for mode local", "remove it; it exists for make bench on the local stack")
		}
	case ModeLocal:
		if cfg.BenchCopies < 0 || cfg.BenchCopies > MaxBenchCopies {
			c.add("benchCopies", fmt.Sprintf("%d is out of range", cfg.BenchCopies), fmt.Sprintf("set 1 to %d (hack/bench.sh's large case uses 10), or remove it", MaxBenchCopies))
		}
		if strings.TrimSpace(cfg.Kubeconfig) == "" {
			c.add("kubeconfig", "is required for mode local", "set the path of a kubeconfig, e.g. pulumi config set kubeconfig ~/.kube/config (make demo sets .infralab/cluster/kubeconfig)")
		}
	case "":
		c.add("mode", "is not set", "set it to lab (Proxmox VMs + cluster + apps) or local (apps on a kubeconfig)")
	default:
		c.add("mode", fmt.Sprintf("%q is not a mode", cfg.Mode), "use lab or local")
	}
	if cfg.Mode == ModeLab || cfg.Mode == ModeLocal {
		validateApps(cfg, c)
	}
}

func validateProxmox(cfg *Config, c *errs) {
	p := &cfg.Proxmox
	switch {
	case p.Endpoint == "":
		c.add("proxmox.endpoint", "is required", "set the API URL, e.g. https://pve.example.com:8006/")
	case !httpsHost(p.Endpoint):
		c.add("proxmox.endpoint", fmt.Sprintf("%q is not an https URL", p.Endpoint), "the Proxmox API only listens on https, e.g. https://pve.example.com:8006/")
	}
	requireSecret(cfg.Secrets.ProxmoxAPIToken, c, "pulumi config set --secret proxmoxApiToken 'infralab@pve!pulumi=<uuid>'")
	if t := cfg.Secrets.ProxmoxAPIToken; t.Set && !proxmoxTokenRE.MatchString(t.Value) {
		c.add(t.Key, "is not a Proxmox API token (value not shown)", "use the form USER@REALM!TOKENID=UUID, as printed by pveum user token add")
	}
	if !pvename.User(p.HostSSHUser) {
		c.add("proxmox.hostSshUser", fmt.Sprintf("%q is not an SSH user", p.HostSSHUser), "the Proxmox API cannot upload cloud-init snippets, so the provider uses SSH: set root or a sudo user")
	}
	requireSecret(cfg.Secrets.ProxmoxSSHPrivateKey, c, "pulumi config set --secret proxmoxSshPrivateKey < ~/.ssh/infralab-pve (the key proxmox.hostSshUser accepts on the hosts; docs/infra.md)")
	if k := cfg.Secrets.ProxmoxSSHPrivateKey; k.Set {
		if _, err := ssh.ParsePrivateKey([]byte(k.Value)); err != nil {
			c.add(k.Key, "does not parse as an unencrypted OpenSSH private key (value not shown)", "use a key without a passphrase")
		}
	}
	if len(p.Nodes) == 0 {
		c.add("proxmox.nodes", "is empty", "list at least one Proxmox node, e.g. - name: pve1")
	}
	seen := map[string]int{}
	for i, n := range p.Nodes {
		path := fmt.Sprintf("proxmox.nodes[%d]", i)
		if !pvename.NodeName(n.Name) {
			c.add(path+".name", fmt.Sprintf("%q is not a Proxmox node name", n.Name), "use the node name `pvesh get /nodes` shows (letters, digits and inner '-'), which is the host's short hostname")
		} else if j, dup := seen[n.Name]; dup {
			c.add(path+".name", fmt.Sprintf("%q repeats proxmox.nodes[%d]", n.Name, j), "list each Proxmox node once")
		}
		seen[n.Name] = i
		if n.Storage == "" {
			c.add(path+".storage", "is required", "name the storage for VM disks, e.g. local-lvm")
		}
		if n.ImageStorage == "" {
			c.add(path+".imageStorage", "is required", "name a directory storage with content iso,snippets, e.g. local")
		}
		if n.Address == "" {
			c.add(path+".address", "is required", "give the host's SSH address (cloud-init snippets and the NAT step go over SSH)")
		}
		validateHostKey(n.SSHHostKey, path+".sshHostKey", c)
	}
	validateJumpLogin(cfg, c)
}

func validateNetwork(n *Network, c *errs) {
	if n.Bridge == "" {
		c.add("network.bridge", "is required", "name the private VM bridge, e.g. vmbr1")
	}
	nodes := parsePrefix(n.NodeCIDR, "network.nodeCidr", "e.g. 10.10.10.0/24", c)
	pods := parsePrefix(n.PodCIDR, "network.podCidr", "e.g. 192.168.0.0/16", c)
	services := parsePrefix(n.ServiceCIDR, "network.serviceCidr", "e.g. 10.96.0.0/12", c)
	ranges := []struct {
		path string
		p    *netip.Prefix
	}{{"network.nodeCidr", nodes}, {"network.podCidr", pods}, {"network.serviceCidr", services}}
	for i := range ranges {
		for j := i + 1; j < len(ranges); j++ {
			a, b := ranges[i], ranges[j]
			if a.p != nil && b.p != nil && a.p.Overlaps(*b.p) {
				c.add(b.path, fmt.Sprintf("%s overlaps %s %s", b.p, a.path, a.p), "pick ranges that do not overlap")
			}
		}
	}
	gw, err := netip.ParseAddr(n.Gateway)
	switch {
	case n.Gateway == "":
		c.add("network.gateway", "is required", "use the bridge address on the Proxmox host, e.g. 10.10.10.1")
	case err != nil || !gw.Is4():
		c.add("network.gateway", fmt.Sprintf("%q is not an IPv4 address", n.Gateway), "e.g. 10.10.10.1")
	case nodes != nil && !nodes.Contains(gw):
		c.add("network.gateway", fmt.Sprintf("%s is not inside network.nodeCidr %s", gw, nodes), "use the Proxmox host's address on the VM bridge")
	}
	if n.MTU != 0 && (n.MTU < 1280 || n.MTU > 9000) {
		c.add("network.mtu", fmt.Sprintf("%d is outside 1280-9000", n.MTU), "leave it out for the default, or use 1400 behind a Hetzner vSwitch")
	}
	if len(n.DNS) == 0 {
		c.add("network.dns", "is empty", "list at least one resolver, e.g. [1.1.1.1]")
	}
	for i, d := range n.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			c.add(fmt.Sprintf("network.dns[%d]", i), fmt.Sprintf("%q is not an IP address", d), "e.g. 1.1.1.1")
		}
	}
}

func validateImage(img *Image, c *errs) {
	if !httpsHost(img.URL) {
		c.add("image.url", fmt.Sprintf("%q is not an https URL", img.URL), "use a Debian 12 or Ubuntu 24.04 generic cloud image URL")
	}
	want := map[string]int{"sha256": 64, "sha512": 128}
	n, ok := want[img.ChecksumAlgorithm]
	if !ok {
		c.add("image.checksumAlgorithm", fmt.Sprintf("%q is not supported", img.ChecksumAlgorithm), "use sha256 or sha512")
	}
	if ok && (len(img.Checksum) != n || !hexRE.MatchString(img.Checksum)) {
		c.add("image.checksum", fmt.Sprintf("is not a %s hex digest", img.ChecksumAlgorithm), "copy it from the image's SHA256SUMS/SHA512SUMS file")
	}
}

func validateKubernetes(k *Kubernetes, c *errs) {
	m := semverRE.FindStringSubmatch(k.Version)
	if m == nil {
		c.add("kubernetes.version", fmt.Sprintf("%q is not an exact x.y.z version", k.Version), "e.g. 1.35.4 (no leading v, no wildcard)")
	} else if minor, _ := strconv.Atoi(m[2]); m[1] != "1" || minor < MinKubernetesMinor || minor > MaxKubernetesMinor {
		c.add("kubernetes.version", fmt.Sprintf("%s is outside the supported range 1.%d.0 - 1.%d.x", k.Version, MinKubernetesMinor, MaxKubernetesMinor), "pick a 1.34 or 1.35 release (1.34 is the floor: the anonymous-auth config needs apiserver.config.k8s.io/v1)")
	}
	if !strings.HasPrefix(k.CalicoVersion, "v") || semverRE.FindStringSubmatch(strings.TrimPrefix(k.CalicoVersion, "v")) == nil {
		c.add("kubernetes.calicoVersion", fmt.Sprintf("%q is not an exact version", k.CalicoVersion), "e.g. v3.31.0")
	}
	if n := k.PodPIDsLimit; n != 0 && (n < 1024 || n > 4194304) {
		c.add("kubernetes.podPidsLimit", fmt.Sprintf("%d is outside 1024-4194304", n), "leave it out for 4096; below 1024 PostgreSQL's backends cannot start")
	}
	if h := k.CalicoManifestSHA256; h != "" && (len(h) != 64 || !hexRE.MatchString(h)) {
		c.add("kubernetes.calicoManifestSha256", "is not a sha256 hex digest", "sha256sum tigera-operator.yaml of "+k.CalicoVersion)
	}
	if h := k.CalicoCRDsSHA256; h != "" && (len(h) != 64 || !hexRE.MatchString(h)) {
		c.add("kubernetes.calicoCrdsSha256", "is not a sha256 hex digest", "sha256sum operator-crds.yaml of "+k.CalicoVersion)
	}
	validateCalicoManifestBaseURL(k.CalicoManifestBaseURL, c)
	validateImageRepository(k, c)
	validatePackageRepository(k.PackageRepository, c)
	if v := k.ContainerdVersion; v != "" {
		if m := semverRE.FindStringSubmatch(v); m == nil || m[1] != "2" {
			c.add("kubernetes.containerdVersion", fmt.Sprintf("%q is not an exact containerd 2.x version", v), "leave it out for the default, or e.g. 2.3.3 (a containerd.io version in Docker's apt repository)")
		}
	}
}

func validateEncryptionKey(s Secret, c *errs) {
	if !s.Set {
		return
	}
	if n, ok := base64Len(s.Value); !ok || n != 32 {
		c.add(s.Key, "is not base64 of exactly 32 bytes (value not shown)", "pulumi config set --secret encryptionKey \"$(head -c32 /dev/urandom | base64)\"")
	}
}

// requireSecret reports a secret that is missing or stored in plain text.
func requireSecret(s Secret, c *errs, how string) {
	switch {
	case !s.Set:
		c.add(s.Key, "is required", how)
	case !s.IsSecret:
		c.add(s.Key, "is stored in plain text", "remove it and set it again with --secret: "+how)
	}
}

func parsePrefix(s, path, example string, c *errs) *netip.Prefix {
	if s == "" {
		c.add(path, "is required", example)
		return nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		c.add(path, fmt.Sprintf("%q is not an IPv4 CIDR", s), example)
		return nil
	}
	if p.Masked() != p {
		c.add(path, fmt.Sprintf("%s has host bits set", s), "use the network address "+p.Masked().String())
		return nil
	}
	return &p
}

// quantity parses a size like 4Gi and checks it is at least min.
func quantity(s, path, min string, c *errs) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		c.add(path, fmt.Sprintf("%q is not a size", s), "use a Kubernetes quantity such as 4Gi or 512Mi")
		return
	}
	if q.Cmp(resource.MustParse(min)) < 0 {
		c.add(path, fmt.Sprintf("%s is below the minimum %s", s, min), "raise it to at least "+min)
	}
}

var (
	dnsLabelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	hexRE          = regexp.MustCompile(`^[0-9a-f]+$`)
	semverRE       = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	proxmoxTokenRE = regexp.MustCompile(`^[^@\s]+@[^!\s]+![A-Za-z][A-Za-z0-9._-]*=[0-9a-fA-F-]{36}$`)
)
