// Package pvename says which names and addresses a Proxmox VE host and its Linux guests accept.
// The stack config checks them under the user's keys and the infra layer again as a backstop;
// both use these, so the two can never disagree.
package pvename

import (
	"net/netip"
	"regexp"
)

var (
	// The pve-node format, verbatim from pve-common src/PVE/JSONSchema.pm (pve_verify_node_name):
	// letters of either case, digits and inner dashes. No length limit there; the host name's
	// own limit applies.
	nodeName   = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$`)
	iface      = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$`) // Linux IFNAMSIZ-1
	bridge     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9]{0,9}$`)     // Proxmox bridge IDs
	storage    = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9._-]*$`)
	user       = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	importFile = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*\.(qcow2|raw|vmdk)$`)
)

// NodeName reports whether s is a Proxmox VE node name, e.g. pve1 or Hetzner's default
// Debian-bookworm-latest-amd64-base (upper case is allowed).
func NodeName(s string) bool { return nodeName.MatchString(s) }

// Interface reports whether s is a Linux interface name.
func Interface(s string) bool { return iface.MatchString(s) }

// Bridge reports whether s is a Proxmox bridge name such as vmbr1.
func Bridge(s string) bool { return bridge.MatchString(s) }

// Storage reports whether s is a Proxmox storage ID such as local-lvm.
func Storage(s string) bool { return storage.MatchString(s) }

// User reports whether s is a Linux login name.
func User(s string) bool { return user.MatchString(s) }

// ImportFile reports whether s is a file name Proxmox's import content type accepts.
func ImportFile(s string) bool { return importFile.MatchString(s) }

// HostAddress reports whether ip is a host address of prefix: inside it, and neither its
// network nor its broadcast address.
func HostAddress(prefix netip.Prefix, ip netip.Addr) bool {
	if !ip.Is4() || !prefix.Addr().Is4() || !prefix.Contains(ip) || ip == prefix.Masked().Addr() {
		return false
	}
	return ip != Broadcast(prefix)
}

// Broadcast is the last address of an IPv4 prefix.
func Broadcast(prefix netip.Prefix) netip.Addr {
	b := prefix.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-prefix.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
