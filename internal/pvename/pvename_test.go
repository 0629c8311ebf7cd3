package pvename

import (
	"net/netip"
	"testing"
)

func TestNames(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   func(string) bool
		s    string
		want bool
	}{
		{"iface", Interface, "enp0s31f6.4000", true},
		{"iface too long", Interface, "abcdefghijklmnop", false},
		{"bridge", Bridge, "vmbr1", true},
		{"bridge with dash", Bridge, "vmbr-private", false},
		{"storage", Storage, "local-lvm", true},
		{"storage with space", Storage, "local lvm", false},
		{"user", User, "infralab", true},
		{"user with host", User, "root@pve", false},
		{"user starts with digit", User, "1admin", false},
		// Proxmox's pve-node format (pve-common src/PVE/JSONSchema.pm, pve_verify_node_name)
		// allows upper case: Hetzner's installimage names hosts like Debian-bookworm-latest-amd64-base.
		{"node", NodeName, "pve1", true},
		{"node hetzner default", NodeName, "Debian-bookworm-latest-amd64-base", true},
		{"node upper case", NodeName, "PVE1", true},
		{"node single char", NodeName, "a", true},
		{"node underscore", NodeName, "pve_1", false},
		{"node dot", NodeName, "pve1.example.org", false},
		{"node leading dash", NodeName, "-pve", false},
		{"node trailing dash", NodeName, "pve-", false},
		{"node empty", NodeName, "", false},
		{"cpu portable", CPUType, "x86-64-v2-AES", true},
		{"cpu host", CPUType, "host", true},
		{"cpu custom", CPUType, "custom-lab", true},
		{"cpu lower-case model", CPUType, "skylake-server", false},
		{"cpu custom without name", CPUType, "custom-", false},
		{"qcow2", ImportFile, "noble.qcow2", true},
		{"ubuntu img", ImportFile, "noble.img", false},
	} {
		if got := c.ok(c.s); got != c.want {
			t.Errorf("%s: %q = %v, want %v", c.name, c.s, got, c.want)
		}
	}
}

func TestHostAddress(t *testing.T) {
	p := netip.MustParsePrefix("10.10.10.0/24")
	for ip, want := range map[string]bool{
		"10.10.10.1": true, "10.10.10.254": true, "10.10.10.0": false, "10.10.10.255": false, "10.10.11.1": false,
	} {
		if got := HostAddress(p, netip.MustParseAddr(ip)); got != want {
			t.Errorf("HostAddress(%s) = %v, want %v", ip, got, want)
		}
	}
	if b := Broadcast(netip.MustParsePrefix("10.10.0.0/20")); b.String() != "10.10.15.255" {
		t.Errorf("Broadcast(/20) = %s", b)
	}
}
