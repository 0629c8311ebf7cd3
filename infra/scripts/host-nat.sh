#!/bin/sh
# Forwarding and masquerading for infralab's private VM bridge on a Proxmox host.
#
# Hetzner drops frames from MACs it does not know, so VMs sit on a private bridge and reach the
# internet through the host. This script makes the host route and NAT that bridge, now and after
# every reboot (a oneshot systemd unit re-runs it, before pve-guests.service starts the VMs).
#
# Inbound: only replies (RELATED,ESTABLISHED) and ports the host admin forwards on purpose (DNAT)
# pass from the uplink to the bridge; every other new connection is dropped. FORWARD's policy on
# a stock Proxmox host is ACCEPT, so without the drop anything that reaches the host for the
# private network (any neighbour routing it at the host's public address) would reach the VMs'
# SSH, API server and kubelet ports.
#
# Fail closed: the default route is checked before anything changes, the drop rule goes in first,
# and forwarding is switched on last, by this script only (no sysctl file switches it on at boot
# ahead of the rules).
#
# Idempotent: every rule is checked (iptables -C) before it is added, files are rewritten only
# when their content differs; a second run changes nothing and says so. remove deletes exactly
# what apply added.
#
# Usage: host-nat.sh apply|remove
# Environment:
#   INFRALAB_BRIDGE  private bridge, e.g. vmbr1
#   INFRALAB_CIDR    private network, e.g. 10.10.10.0/24
#   INFRALAB_UPLINK  interface with the public address, e.g. vmbr0
#   INFRALAB_ETC     config root (default /etc); tests point it at a scratch folder
set -eu

action=${1:-}
bridge=${INFRALAB_BRIDGE:?set INFRALAB_BRIDGE to the private bridge, e.g. vmbr1}
cidr=${INFRALAB_CIDR:?set INFRALAB_CIDR to the private network, e.g. 10.10.10.0/24}
uplink=${INFRALAB_UPLINK:?set INFRALAB_UPLINK to the public interface, e.g. vmbr0}
etc=${INFRALAB_ETC:-/etc}
tag=infralab-nat
changed=0

log() { printf '%s: %s\n' "$tag" "$*"; }
die() { log "error: $*" >&2; exit 1; }

for value in "$bridge" "$cidr" "$uplink"; do
	case $value in
		*[!A-Za-z0-9./_-]*) die "refusing value '$value': only letters, digits and . / _ - are allowed" ;;
	esac
done

# ensureFile PATH CONTENT: write only when different, so reruns report no change.
ensureFile() {
	if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
		return 0
	fi
	mkdir -p "$(dirname "$1")"
	printf '%s\n' "$2" >"$1.tmp"
	mv "$1.tmp" "$1"
	log "wrote $1"
	changed=1
}

removeFile() {
	if [ -e "$1" ]; then
		rm -f "$1"
		log "removed $1"
	fi
}

# ensureRule TABLE CHAIN -A|-I RULE...: add the rule unless it is already there, appended (-A)
# or first in the chain (-I).
ensureRule() {
	table=$1 chain=$2 where=$3
	shift 3
	if iptables -w -t "$table" -C "$chain" "$@" 2>/dev/null; then
		return 0
	fi
	iptables -w -t "$table" "$where" "$chain" "$@"
	log "added $table $chain $*"
	changed=1
}

# dropRule TABLE CHAIN -A|-I RULE...: delete every copy of the rule.
dropRule() {
	table=$1 chain=$2
	shift 3
	while iptables -w -t "$table" -C "$chain" "$@" 2>/dev/null; do
		iptables -w -t "$table" -D "$chain" "$@"
		log "deleted $table $chain $*"
	done
}

# Our rules, each for ensureRule or dropRule. The two inbound FORWARD rules are disjoint
# (established or not), so their order does not matter and the drop can sit first in the chain,
# ahead of any ACCEPT someone added earlier. DNAT is exempt: a port forward is a deliberate
# opening by the host admin.
dropInbound() {
	"$1" filter FORWARD -I -i "$uplink" -o "$bridge" \
		-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment "$tag" -j DROP
}
acceptReplies() {
	"$1" filter FORWARD -A -i "$uplink" -o "$bridge" -d "$cidr" \
		-m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "$tag" -j ACCEPT
}
acceptOutbound() {
	"$1" filter FORWARD -A -i "$bridge" -o "$uplink" -s "$cidr" -m comment --comment "$tag" -j ACCEPT
}
masquerade() {
	"$1" nat POSTROUTING -A -s "$cidr" -o "$uplink" -m comment --comment "$tag" -j MASQUERADE
}

# checkDefaultRoute: MASQUERADE matches -o $uplink only. When the default route leaves through
# another interface (a routed Hetzner setup, where the NIC holds the public address and vmbr0 is
# a routed bridge), nothing would be masqueraded and the VMs would silently have no internet.
checkDefaultRoute() {
	routes=$(ip -4 route show default)
	[ -n "$routes" ] || die "no IPv4 default route on this host; $uplink must carry it for the masquerade to apply"
	dev=$(printf '%s\n' "$routes" | sed -n '1s/.* dev \([^ ]*\).*/\1/p')
	[ "$dev" = "$uplink" ] && return 0
	[ -n "$dev" ] || die "the IPv4 default route ($(printf '%s' "$routes" | head -n1)) names no single interface; $uplink must carry it"
	die "uplink $uplink does not carry the IPv4 default route (it leaves through $dev), so nothing would be masqueraded: set network.uplink to $dev, or set proxmox.skipHostNat and route the private network yourself (docs/infra.md, \"Host NAT\")"
}

hasSystemd() { [ -d /run/systemd/system ] && [ "$etc" = /etc ] && command -v systemctl >/dev/null 2>&1; }

apply() {
	ip link show dev "$bridge" >/dev/null 2>&1 || die "bridge $bridge does not exist; the Proxmox provider creates it before this step"
	ip link show dev "$uplink" >/dev/null 2>&1 || die "uplink $uplink does not exist; set network.uplink in the stack config to the interface with the public address"
	checkDefaultRoute

	self=$(readlink -f "$0")
	ensureFile "$etc/default/$tag" "INFRALAB_BRIDGE=$bridge
INFRALAB_CIDR=$cidr
INFRALAB_UPLINK=$uplink"
	# Before=pve-guests.service: guests with onboot=1 start only after the rules are in place
	# (pve-manager services/pve-guests.service is After=pve-firewall.service, as this unit is).
	ensureFile "$etc/systemd/system/$tag.service" "[Unit]
Description=infralab: forward and masquerade $bridge ($cidr) through $uplink
After=network-online.target pve-firewall.service
Wants=network-online.target
Before=pve-guests.service

[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=$etc/default/$tag
ExecStart=/bin/sh $self apply

[Install]
WantedBy=multi-user.target"

	dropInbound ensureRule
	acceptReplies ensureRule
	acceptOutbound ensureRule
	masquerade ensureRule
	if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then
		echo 1 >/proc/sys/net/ipv4/ip_forward
		log "enabled net.ipv4.ip_forward"
		changed=1
	fi
	if hasSystemd && ! systemctl is-enabled --quiet "$tag.service"; then
		systemctl daemon-reload
		systemctl enable "$tag.service"
		changed=1
	fi
	if [ "$changed" = 0 ]; then
		log "$bridge ($cidr) via $uplink already forwarded and masqueraded: no change"
	else
		log "$bridge ($cidr) now forwarded and masqueraded via $uplink; new inbound connections from $uplink dropped"
	fi
}

remove() {
	# The drop goes last, so no moment exists where the accepts stand without it.
	masquerade dropRule
	acceptOutbound dropRule
	acceptReplies dropRule
	dropInbound dropRule
	if hasSystemd; then
		systemctl disable "$tag.service" 2>/dev/null || true
	fi
	removeFile "$etc/systemd/system/$tag.service"
	removeFile "$etc/default/$tag"
	# ip_forward stays on until reboot: other guests or services may rely on it by now.
	log "removed NAT for $bridge ($cidr); net.ipv4.ip_forward stays 1 until the next reboot"
}

case $action in
	apply) apply ;;
	remove) remove ;;
	*) die "usage: $0 apply|remove" ;;
esac
