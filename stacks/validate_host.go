package stacks

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/infralab/infralab/internal/pvename"
)

// The checks here mirror what Proxmox and the guest OS accept, so a config that passes Load is
// one the infra layer can declare: infra's own validation stays a backstop, never the first
// place a user hears of a problem.

var domainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// httpsHost reports whether s is an https URL naming a host.
func httpsHost(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Hostname() != ""
}

func validateProxmoxHosts(p *Proxmox, c *errs) {
	if p.CPUType != "" && !pvename.CPUType(p.CPUType) {
		c.add("proxmox.cpuType", fmt.Sprintf("%q is not a CPU type the provider accepts", p.CPUType),
			"leave it out for the portable x86-64-v2-AES, or use a QEMU model spelled as Proxmox lists it (x86-64-v3, host, EPYC-Rome, Skylake-Server, ...) or custom-<name>")
	}
	for i, n := range p.Nodes {
		base := fmt.Sprintf("proxmox.nodes[%d]", i)
		if n.Storage != "" && !pvename.Storage(n.Storage) {
			c.add(base+".storage", fmt.Sprintf("%q is not a Proxmox storage ID", n.Storage), "use the ID shown under Datacenter > Storage, e.g. local-lvm")
		}
		if n.ImageStorage != "" && !pvename.Storage(n.ImageStorage) {
			c.add(base+".imageStorage", fmt.Sprintf("%q is not a Proxmox storage ID", n.ImageStorage), "use the ID of a directory storage, e.g. local")
		}
		if n.Address != "" && strings.ContainsAny(n.Address, " /@:") {
			c.add(base+".address", fmt.Sprintf("%q is not a host name or IPv4 address", n.Address), "give the bare SSH host, e.g. pve.example.com (no user@, no port, no URL)")
		}
		for j, port := range n.BridgePorts {
			if !pvename.Interface(port) {
				c.add(fmt.Sprintf("%s.bridgePorts[%d]", base, j), fmt.Sprintf("%q is not an interface name", port), "name the host interface that joins the bridges, e.g. enp0s31f6.4000")
			}
		}
	}
}

func validateHostNetwork(n *Network, c *errs) {
	if n.Bridge != "" && !pvename.Bridge(n.Bridge) {
		c.add("network.bridge", fmt.Sprintf("%q is not a Proxmox bridge name", n.Bridge), "use a letter followed by at most 9 letters or digits, e.g. vmbr1")
	}
	switch {
	case n.Uplink == "":
		c.add("network.uplink", "is required", "name the host's public interface that NAT masquerades through, e.g. vmbr0")
	case !pvename.Interface(n.Uplink):
		c.add("network.uplink", fmt.Sprintf("%q is not an interface name", n.Uplink), "e.g. vmbr0 or enp0s31f6 (see `ip route show default` on the host)")
	case n.Uplink == n.Bridge:
		c.add("network.uplink", fmt.Sprintf("%q is also network.bridge", n.Uplink), "the uplink is the host's public interface; the bridge is the private VM network")
	}
	if n.SearchDomain != "" && !domainRE.MatchString(n.SearchDomain) {
		c.add("network.searchDomain", fmt.Sprintf("%q is not a domain name", n.SearchDomain), "e.g. lab.internal, or leave it out")
	}
	nodes, err := netip.ParsePrefix(n.NodeCIDR)
	if err != nil || !nodes.Addr().Is4() || nodes.Masked() != nodes {
		return // reported by validateNetwork
	}
	if nodes.Bits() > 29 {
		c.add("network.nodeCidr", fmt.Sprintf("%s holds too few addresses for a gateway and the nodes", nodes), "use a /29 or larger, e.g. 10.10.10.0/24")
	}
	if gw, err := netip.ParseAddr(n.Gateway); err == nil && gw.Is4() && nodes.Contains(gw) &&
		!pvename.HostAddress(nodes, gw) {
		c.add("network.gateway", fmt.Sprintf("%s is not a host address of %s", gw, nodes), "use the Proxmox host's address on the bridge, e.g. "+nodes.Addr().Next().String())
	}
}

// imageFileName is the name the image gets on Proxmox storage.
func imageFileName(img *Image) string {
	if img.FileName != "" {
		return img.FileName
	}
	if u, err := url.Parse(img.URL); err == nil {
		return path.Base(u.Path)
	}
	return ""
}

func validateImageFile(img *Image, c *errs) {
	if !httpsHost(img.URL) {
		return // reported by validateImage
	}
	name := imageFileName(img)
	switch {
	case pvename.ImportFile(name):
	case img.FileName != "":
		c.add("image.fileName", fmt.Sprintf("%q does not end in .qcow2, .raw or .vmdk", img.FileName), "Proxmox's import storage accepts only these; an Ubuntu .img is qcow2, so name it e.g. noble.qcow2")
	default:
		c.add("image.url", fmt.Sprintf("ends in %q, which Proxmox's import storage does not accept", name), "set image.fileName to a name ending in .qcow2 (an Ubuntu .img is qcow2, e.g. noble.qcow2)")
	}
}

// validateSpread refuses VMs on several Proxmox nodes whose private bridges share no layer 2:
// they could not reach each other or the NAT gateway on the first node. The placement is the
// infra layer's: explicit proxmoxNode, otherwise round robin in the order of the stack file.
func validateSpread(cfg *Config, c *errs) {
	nodes := cfg.Proxmox.Nodes
	if len(nodes) < 2 {
		return
	}
	used := map[string]bool{}
	unplaced := 0
	for _, r := range []Role{cfg.Cluster.ControlPlane, cfg.Cluster.Workers} {
		for _, vm := range r.Nodes {
			if vm.ProxmoxNode != "" {
				used[vm.ProxmoxNode] = true
				continue
			}
			used[nodes[unplaced%len(nodes)].Name] = true
			unplaced++
		}
	}
	if len(used) == 0 || (len(used) == 1 && used[nodes[0].Name]) {
		return
	}
	used[nodes[0].Name] = true // the gateway lives on the first node
	for i, n := range nodes {
		if used[n.Name] && len(n.BridgePorts) == 0 {
			c.add(fmt.Sprintf("proxmox.nodes[%d].bridgePorts", i), fmt.Sprintf("is empty, but VMs run on %d Proxmox nodes", len(used)),
				"join the "+cfg.Network.Bridge+" bridges at layer 2, e.g. bridgePorts: [enp0s31f6.4000] for a Hetzner vSwitch VLAN")
		}
	}
}
