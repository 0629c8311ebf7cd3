package infra

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/infralab/infralab/internal/hostkey"
	"github.com/infralab/infralab/internal/pvename"
)

var (
	hostnameRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	hexRE       = regexp.MustCompile(`^[0-9a-fA-F]+$`)
	domainRE    = regexp.MustCompile(`^[a-z0-9.-]+$`)
	tzRE        = regexp.MustCompile(`^[A-Za-z0-9_+/-]+$`)
	hostRE      = regexp.MustCompile(`^[a-zA-Z0-9.:-]+$`)
	checksumLen = map[string]int{"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
)

// plan is NodesArgs after validation, with everything derived once.
type plan struct {
	args   *NodesArgs
	prefix netip.Prefix
	// hostAddress is every node's SSH address: its address, or for the first node the endpoint's host.
	hostAddress map[string]string
	placement   []string // Proxmox node per VM, same index as args.VMs
}

// fieldErrors collects every problem with its field path, kubeadm style.
type fieldErrors []string

func (e *fieldErrors) add(field, format string, a ...any) {
	*e = append(*e, field+": "+fmt.Sprintf(format, a...))
}

func (e fieldErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	return errors.New("infra: invalid arguments:\n  " + strings.Join(e, "\n  "))
}

// validate checks args before any resource is declared and returns the derived plan.
func validate(a *NodesArgs) (*plan, error) {
	if a == nil {
		return nil, errors.New("infra: NodesArgs is nil")
	}
	var errs fieldErrors
	p := &plan{args: a}

	if !hostnameRE.MatchString(a.Stack) {
		errs.add("stack", "%q is not a lowercase DNS label (a-z, 0-9, -)", a.Stack)
	}
	validateProxmox(&errs, p)
	validateEnvironment(&errs, p)
	validateImage(&errs, p)
	validateNetwork(&errs, p)
	validateGuest(&errs, a)
	validateVMs(&errs, p)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

func validateProxmox(errs *fieldErrors, p *plan) {
	px := p.args.Proxmox
	u, err := url.Parse(px.Endpoint)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		errs.add("proxmox.endpoint", "%q is not an https URL such as https://pve.example.org:8006/", px.Endpoint)
	}
	if px.APIToken == nil {
		errs.add("proxmox.apiToken", "missing: set it with `pulumi config set --secret proxmox.apiToken 'user@pve!token=uuid'`")
	}
	if !pvename.User(px.HostSSH.User) {
		errs.add("proxmox.hostSSH.user", "%q is not a valid user name (root, or a sudo user on the hosts)", px.HostSSH.User)
	}
	if px.HostSSH.PrivateKey == nil {
		errs.add("proxmox.hostSSH.privateKey", "missing: snippets upload and NAT need SSH to the hosts; set it as a secret")
	}
	if px.CPUType != "" && !pvename.CPUType(px.CPUType) {
		errs.add("proxmox.cpuType", "%q is not a CPU type the provider accepts (e.g. %s, x86-64-v3, host, custom-<name>)", px.CPUType, DefaultCPUType)
	}
	if len(px.Nodes) == 0 {
		errs.add("proxmox.nodes", "empty: list at least one Proxmox node")
	}
	seen := map[string]bool{}
	for i, n := range px.Nodes {
		f := fmt.Sprintf("proxmox.nodes[%d]", i)
		if !pvename.NodeName(n.Name) {
			errs.add(f+".name", "%q is not a Proxmox node name (letters, digits and inner '-', as `pvesh get /nodes` shows)", n.Name)
		}
		if seen[n.Name] {
			errs.add(f+".name", "%q is listed twice", n.Name)
		}
		seen[n.Name] = true
		if !pvename.Storage(n.Storage) {
			errs.add(f+".storage", "%q is not a storage ID (e.g. local-lvm)", n.Storage)
		}
		if !pvename.Storage(n.ImageStorage) {
			errs.add(f+".imageStorage", "%q is not a storage ID (e.g. local)", n.ImageStorage)
		}
		if n.Address != "" && strings.ContainsAny(n.Address, " /@") {
			errs.add(f+".address", "%q is not a host name or IP", n.Address)
		}
		if msg := hostkey.Problem(n.SSHHostKey); msg != "" {
			errs.add(f+".sshHostKey", "%s (%s)", msg, hostkey.Hint)
		}
		for j, port := range n.BridgePorts {
			if !pvename.Interface(port) {
				errs.add(fmt.Sprintf("%s.bridgePorts[%d]", f, j), "%q is not an interface name", port)
			}
		}
	}
	p.hostAddress = map[string]string{}
	for i, n := range px.Nodes {
		switch {
		case n.Address != "":
			p.hostAddress[n.Name] = n.Address
		case i == 0 && u != nil:
			p.hostAddress[n.Name] = u.Hostname()
		case i == 0: // the endpoint's own error is reported above
		default:
			errs.add(fmt.Sprintf("proxmox.nodes[%d].address", i), "empty: every node but the first needs its SSH address (each VM's snippet is checked and removed over SSH on its node)")
		}
	}
}

func validateImage(errs *fieldErrors, p *plan) {
	im := p.args.Image
	u, err := url.Parse(im.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs.add("image.url", "%q is not an http(s) URL of a cloud image", im.URL)
	}
	want, ok := checksumLen[im.ChecksumAlgorithm]
	if !ok {
		errs.add("image.checksumAlgorithm", "%q is not one of md5, sha1, sha224, sha256, sha384, sha512", im.ChecksumAlgorithm)
	} else if len(im.Checksum) != want || !hexRE.MatchString(im.Checksum) {
		errs.add("image.checksum", "want %d hex digits for %s (copy it from the image's SHA*SUMS file)", want, im.ChecksumAlgorithm)
	}
	// The stored name adds a checksum/URL/node prefix (imageFileName); the readable part is checked.
	base := im.FileName
	if base == "" && u != nil {
		base = path.Base(u.Path)
	}
	if !pvename.ImportFile(base) {
		errs.add("image.fileName", "%q must be a plain file name ending in .qcow2, .raw or .vmdk, the extensions Proxmox import storage accepts (an Ubuntu .img is qcow2: name it noble.qcow2)", base)
	}
}

func validateNetwork(errs *fieldErrors, p *plan) {
	nw := p.args.Network
	prefix, err := netip.ParsePrefix(nw.CIDR)
	switch {
	case err != nil || !prefix.Addr().Is4():
		errs.add("network.cidr", "%q is not an IPv4 CIDR such as 10.10.10.0/24", nw.CIDR)
	case prefix.Masked() != prefix:
		errs.add("network.cidr", "%q has host bits set; use %s", nw.CIDR, prefix.Masked())
	case prefix.Bits() > 29:
		errs.add("network.cidr", "%q is too small for a cluster; use /29 or larger", nw.CIDR)
	default:
		p.prefix = prefix
	}
	if gw, err := netip.ParseAddr(nw.Gateway); err != nil {
		errs.add("network.gateway", "%q is not an IPv4 address", nw.Gateway)
	} else if p.prefix.IsValid() && !pvename.HostAddress(p.prefix, gw) {
		errs.add("network.gateway", "%s is not a host address inside network.cidr %s", gw, p.prefix)
	}
	for i, d := range nw.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			errs.add(fmt.Sprintf("network.dns[%d]", i), "%q is not an IP address", d)
		}
	}
	if len(nw.DNS) == 0 {
		errs.add("network.dns", "empty: list at least one DNS server the VMs can reach through NAT")
	}
	if nw.SearchDomain != "" && !domainRE.MatchString(nw.SearchDomain) {
		errs.add("network.searchDomain", "%q is not a domain name", nw.SearchDomain)
	}
	if nw.MTU != 0 && (nw.MTU < 576 || nw.MTU > 9000) {
		errs.add("network.mtu", "%d is outside 576..9000 (0 keeps the default 1500)", nw.MTU)
	}
	if !pvename.Bridge(nw.Bridge) {
		errs.add("network.bridge", "%q is not a Proxmox bridge name (e.g. vmbr1, at most 10 characters)", nw.Bridge)
	}
	if !pvename.Interface(nw.HostUplink) {
		errs.add("network.hostUplink", "%q is not an interface name (e.g. vmbr0)", nw.HostUplink)
	} else if nw.HostUplink == nw.Bridge {
		errs.add("network.hostUplink", "%q is also network.bridge; the uplink is the host's public interface", nw.HostUplink)
	}
}

func validateGuest(errs *fieldErrors, a *NodesArgs) {
	if !pvename.User(a.SSH.User) || a.SSH.User == "root" {
		errs.add("ssh.user", "%q must be a non-root Linux user name", a.SSH.User)
	}
	if _, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(a.SSH.PublicKey)); err != nil {
		errs.add("ssh.publicKey", "not an OpenSSH public key line (%v); paste the contents of ~/.ssh/infralab.pub", err)
	} else if len(strings.TrimSpace(string(rest))) > 0 {
		errs.add("ssh.publicKey", "holds more than one key; give exactly one")
	}
	if a.Time.Timezone != "" && !tzRE.MatchString(a.Time.Timezone) {
		errs.add("time.timezone", "%q is not a tz database name such as Europe/Berlin", a.Time.Timezone)
	}
	for i, s := range a.Time.NTPServers {
		if !hostRE.MatchString(s) {
			errs.add(fmt.Sprintf("time.ntpServers[%d]", i), "%q is not a host name or IP", s)
		}
	}
}

func validateVMs(errs *fieldErrors, p *plan) {
	a := p.args
	if len(a.VMs) == 0 {
		errs.add("vms", "empty: declare one control plane and at least one worker")
		return
	}
	nodeIndex := map[string]int{}
	for i, n := range a.Proxmox.Nodes {
		nodeIndex[n.Name] = i
	}
	names, ids, ips := map[string]bool{}, map[int]bool{}, map[netip.Addr]bool{}
	controlPlanes, unplaced := 0, 0
	p.placement = make([]string, len(a.VMs))
	for i, v := range a.VMs {
		f := fmt.Sprintf("vms[%d]", i)
		if !hostnameRE.MatchString(v.Name) {
			errs.add(f+".name", "%q is not a lowercase hostname", v.Name)
		} else if names[v.Name] {
			errs.add(f+".name", "%q is used twice", v.Name)
		}
		names[v.Name] = true
		switch v.Role {
		case RoleControlPlane:
			controlPlanes++
		case RoleWorker:
		default:
			errs.add(f+".role", "%q is neither %q nor %q", v.Role, RoleControlPlane, RoleWorker)
		}
		if v.VMID < 100 || v.VMID > 999999999 {
			errs.add(f+".vmId", "%d is outside Proxmox's range 100..999999999", v.VMID)
		} else if ids[v.VMID] {
			errs.add(f+".vmId", "%d is used twice", v.VMID)
		}
		ids[v.VMID] = true
		ip, err := netip.ParseAddr(v.IP)
		switch {
		case err != nil || !ip.Is4():
			errs.add(f+".ip", "%q is not an IPv4 address", v.IP)
		case p.prefix.IsValid() && !pvename.HostAddress(p.prefix, ip):
			errs.add(f+".ip", "%s is not a host address inside network.cidr %s", ip, p.prefix)
		case ip.String() == a.Network.Gateway:
			errs.add(f+".ip", "%s is network.gateway, the host's address", ip)
		case ips[ip]:
			errs.add(f+".ip", "%s is used twice", ip)
		}
		ips[ip] = true
		if v.Cores < 1 || v.Cores > 512 {
			errs.add(f+".cores", "%d is outside 1..512", v.Cores)
		}
		if v.MemoryMiB < 1024 {
			errs.add(f+".memoryMiB", "%d MiB is below 1024, too small for a Kubernetes node", v.MemoryMiB)
		}
		if v.DiskGiB < 8 {
			errs.add(f+".diskGiB", "%d GiB is below 8, the cloud image plus container images will not fit", v.DiskGiB)
		}
		switch {
		case v.ProxmoxNode != "":
			if _, ok := nodeIndex[v.ProxmoxNode]; !ok {
				errs.add(f+".proxmoxNode", "%q is not in proxmox.nodes", v.ProxmoxNode)
			}
			p.placement[i] = v.ProxmoxNode
		case len(a.Proxmox.Nodes) > 0:
			p.placement[i] = a.Proxmox.Nodes[unplaced%len(a.Proxmox.Nodes)].Name
			unplaced++
		}
	}
	if controlPlanes == 0 {
		errs.add("vms", "no VM has role %q", RoleControlPlane)
	}
	validateSpread(errs, p)
}

// validateSpread refuses VMs on several nodes whose private bridges share no layer 2: they
// could not reach each other or the gateway on the first node.
func validateSpread(errs *fieldErrors, p *plan) {
	nodes := p.args.Proxmox.Nodes
	used := map[string]bool{}
	for _, n := range p.placement {
		used[n] = true
	}
	if len(nodes) == 0 || (len(used) == 1 && used[nodes[0].Name]) || len(used) == 0 {
		return
	}
	used[nodes[0].Name] = true // the gateway lives on the first node
	for i, n := range nodes {
		if used[n.Name] && len(n.BridgePorts) == 0 {
			errs.add(fmt.Sprintf("proxmox.nodes[%d].bridgePorts", i),
				"empty, but VMs run on more than one node: join the %s bridges at layer 2, e.g. with a Hetzner vSwitch VLAN interface (enp0s31f6.4000)",
				p.args.Network.Bridge)
		}
	}
}
