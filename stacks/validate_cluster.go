package stacks

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/crypto/ssh"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/infralab/infralab/internal/pvename"
)

// Proxmox accepts VM IDs in this range.
const (
	MinVMID = 100
	MaxVMID = 999999999
)

// roleMinimums follow kubeadm's preflight checks (2 CPUs and ~1.7 GiB for a control plane) plus
// room for the apps on workers.
var roleMinimums = map[string]struct {
	cores        int
	memory, disk string
}{
	"controlPlane": {2, "2Gi", "20Gi"},
	"workers":      {1, "2Gi", "20Gi"},
}

func validateCluster(cfg *Config, c *errs) {
	nodeCIDR, _ := netip.ParsePrefix(cfg.Network.NodeCIDR)
	gateway, _ := netip.ParseAddr(cfg.Network.Gateway)
	proxmoxNodes := map[string]bool{}
	for _, n := range cfg.Proxmox.Nodes {
		proxmoxNodes[n.Name] = true
	}

	names := map[string]string{}
	ids := map[int]string{}
	ips := map[netip.Addr]string{}
	roles := []struct {
		key  string
		role *Role
	}{{"controlPlane", &cfg.Cluster.ControlPlane}, {"workers", &cfg.Cluster.Workers}}
	for _, r := range roles {
		base := "cluster." + r.key
		min := roleMinimums[r.key]
		if r.role.Cores < min.cores || r.role.Cores > 128 {
			c.add(base+".cores", fmt.Sprintf("%d is outside %d-128", r.role.Cores, min.cores), fmt.Sprintf("give each %s VM at least %d cores", r.key, min.cores))
		}
		vmSize(r.role.Memory, base+".memory", min.memory, "Mi", "memory", c)
		vmSize(r.role.Disk, base+".disk", min.disk, "Gi", "disks", c)

		for i, vm := range r.role.Nodes {
			path := fmt.Sprintf("%s.nodes[%d]", base, i)
			switch prev, dup := names[vm.Name]; {
			case !dnsLabelRE.MatchString(vm.Name):
				c.add(path+".name", fmt.Sprintf("%q is not a DNS label", vm.Name), "use lowercase letters, digits and '-', at most 63 characters, e.g. k8s-worker-1")
			case dup:
				c.add(path+".name", fmt.Sprintf("%q is already used by %s", vm.Name, prev), "give every node its own name")
			default:
				names[vm.Name] = path
			}
			switch prev, dup := ids[vm.VMID]; {
			case vm.VMID < MinVMID || vm.VMID > MaxVMID:
				c.add(path+".vmId", fmt.Sprintf("%d is outside %d-%d", vm.VMID, MinVMID, MaxVMID), "Proxmox reserves IDs below 100; pick a free ID such as 200")
			case dup:
				c.add(path+".vmId", fmt.Sprintf("%d is already used by %s", vm.VMID, prev), "give every VM its own ID")
			default:
				ids[vm.VMID] = path
			}
			validateNodeIP(vm.IP, path+".ip", nodeCIDR, gateway, ips, c)
			if vm.ProxmoxNode != "" && !proxmoxNodes[vm.ProxmoxNode] {
				c.add(path+".proxmoxNode", fmt.Sprintf("%q is not in proxmox.nodes", vm.ProxmoxNode), "name a node listed under proxmox.nodes, or leave it out to spread VMs round robin")
			}
		}
	}
	if n := len(cfg.Cluster.ControlPlane.Nodes); n != 1 {
		c.add("cluster.controlPlane.nodes", fmt.Sprintf("has %d entries", n), "infralab builds exactly one control plane node; list one")
	}
	if len(cfg.Cluster.Workers.Nodes) == 0 {
		c.add("cluster.workers.nodes", "is empty", "list at least one worker so workloads have somewhere to run")
	}
	validateCertRenewal(&cfg.Kubernetes, c)
}

// Bounds of kubernetes.certRenewDays (the cluster layer checks the same; main_test.go compares them). kubeadm's certificates live 365 days; the control plane
// checks daily, and a `pulumi up` within the window re-fetches the stored kubeconfig, so the
// window is at least a week and at most half the lifetime (a wider one renews twice a year).
const (
	MinCertRenewDays = 7
	MaxCertRenewDays = 180
)

func validateCertRenewal(k *Kubernetes, c *errs) {
	if d := k.CertRenewDays; d != 0 && (d < MinCertRenewDays || d > MaxCertRenewDays) {
		c.add("kubernetes.certRenewDays", fmt.Sprintf("%d is outside %d-%d", d, MinCertRenewDays, MaxCertRenewDays),
			"leave it out for 30 days; certificates live 365 days and the control plane checks them daily")
	}
}

// vmSize checks a VM memory or disk size. Proxmox takes memory in MiB and disk sizes in GiB, so
// the size must be a whole number of unit (Mi or Gi) and spelled in binary units: a decimal 50G is
// 46.6 GiB and would have to be rounded, which is the surprise this refuses (docs/config.md).
func vmSize(s, path, min, unit, what string, c *errs) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		c.add(path, fmt.Sprintf("%q is not a size", s), "use a binary size such as 4Gi or 512Mi")
		return
	}
	one := resource.MustParse("1" + unit)
	unitBytes := one.Value()
	bytes := q.Value()
	if q.Format != resource.BinarySI {
		// q.String() keeps the user's spelling (50G), q.Value() is its size in bytes.
		exact := float64(bytes) / float64(unitBytes)
		hint := "VM sizes take binary units: write " + binarySpelling(s)
		if old := fmt.Sprintf("%d%s", bytes/unitBytes, unit); old != binarySpelling(s) {
			hint += fmt.Sprintf(", or %s for what %s truncated to before", old, q.String())
		}
		c.add(path, fmt.Sprintf("%q is a decimal size (%s = %d bytes = %.1f%s)", s, q.String(), bytes, exact, unit), hint)
		return
	}
	if bytes%unitBytes != 0 {
		c.add(path, fmt.Sprintf("%s is not a whole number of %s", s, unit),
			fmt.Sprintf("Proxmox sizes VM %s in whole %s: write %d%s or %d%s", what, unit, bytes/unitBytes, unit, bytes/unitBytes+1, unit))
		return
	}
	if q.Cmp(resource.MustParse(min)) < 0 {
		c.add(path, fmt.Sprintf("%s is below the minimum %s", s, min), "raise it to at least "+min)
	}
}

// binarySpelling turns a decimal size as written (50G, 4G, 4294967296) into the binary unit the
// user most likely meant (50Gi, 4Gi); a plain byte count becomes Mi.
func binarySpelling(s string) string {
	for _, u := range []string{"k", "M", "G", "T", "P", "E"} {
		if n, ok := strings.CutSuffix(s, u); ok {
			if u == "k" {
				u = "K"
			}
			return n + u + "i"
		}
	}
	if q, err := resource.ParseQuantity(s); err == nil {
		return fmt.Sprintf("%dMi", q.Value()>>20)
	}
	return s
}

func validateNodeIP(s, path string, cidr netip.Prefix, gateway netip.Addr, seen map[netip.Addr]string, c *errs) {
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Is4() {
		c.add(path, fmt.Sprintf("%q is not an IPv4 address", s), "e.g. 10.10.10.11")
		return
	}
	if prev, dup := seen[ip]; dup {
		c.add(path, fmt.Sprintf("%s is already used by %s", ip, prev), "give every node its own address")
		return
	}
	seen[ip] = path
	if !cidr.IsValid() {
		return // network.nodeCidr is reported on its own
	}
	switch {
	case !cidr.Contains(ip):
		c.add(path, fmt.Sprintf("%s is not inside network.nodeCidr %s", ip, cidr), "pick an address inside "+cidr.String())
	case ip == cidr.Addr():
		c.add(path, fmt.Sprintf("%s is the network address of %s", ip, cidr), "pick a host address")
	case ip == pvename.Broadcast(cidr):
		c.add(path, fmt.Sprintf("%s is the broadcast address of %s", ip, cidr), "pick a host address")
	case ip == gateway:
		c.add(path, fmt.Sprintf("%s is network.gateway", ip), "the gateway is the Proxmox host; pick another address")
	}
}

func validateSSH(cfg *Config, c *errs) {
	if cfg.SSH.User == "root" || !pvename.User(cfg.SSH.User) {
		c.add("ssh.user", fmt.Sprintf("%q is not allowed", cfg.SSH.User), "use a lowercase non-root login such as infralab; root login is disabled on the VMs")
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cfg.SSH.PublicKey))
	if err != nil {
		c.add("ssh.publicKey", "does not parse as an OpenSSH public key", "paste the one line of ~/.ssh/infralab.pub")
	}
	key := cfg.Secrets.SSHPrivateKey
	requireSecret(key, c, "pulumi config set --secret sshPrivateKey < ~/.ssh/infralab")
	if !key.Set {
		return
	}
	signer, err := ssh.ParsePrivateKey([]byte(key.Value))
	if err != nil {
		// The parser's message could quote key material, so it is not repeated.
		c.add(key.Key, "does not parse as an unencrypted OpenSSH private key (value not shown)", "use a key without a passphrase, e.g. ssh-keygen -t ed25519 -N '' -f infralab")
		return
	}
	if pub != nil && !bytes.Equal(signer.PublicKey().Marshal(), pub.Marshal()) {
		c.add(key.Key, "does not belong to ssh.publicKey", "set the private key matching ssh.publicKey, or update ssh.publicKey")
	}
}

func base64Len(s string) (int, bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	return len(b), err == nil
}
