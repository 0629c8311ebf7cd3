#!/bin/sh
# Forwarding and masquerading for infralab's private VM bridge on a Proxmox host.
#
# Hetzner drops frames from MACs it does not know, so VMs sit on a private bridge and reach the
# internet through the host. This script makes the host route and NAT that bridge, now and after
# every reboot (a oneshot systemd unit re-runs it).
#
# Idempotent: every rule is checked (iptables -C) before it is added, files are rewritten only
# when their content differs; a second run changes nothing and says so.
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

# ensureRule TABLE CHAIN RULE...: append the rule unless it is already there.
ensureRule() {
	table=$1 chain=$2
	shift 2
	if iptables -w -t "$table" -C "$chain" "$@" 2>/dev/null; then
		return 0
	fi
	iptables -w -t "$table" -A "$chain" "$@"
	log "added $table $chain $*"
	changed=1
}

# dropRule TABLE CHAIN RULE...: delete every copy of the rule.
dropRule() {
	table=$1 chain=$2
	shift 2
	while iptables -w -t "$table" -C "$chain" "$@" 2>/dev/null; do
		iptables -w -t "$table" -D "$chain" "$@"
		log "deleted $table $chain $*"
	done
}

# rules FUNC: the three rules, for ensureRule or dropRule.
rules() {
	"$1" nat POSTROUTING -s "$cidr" -o "$uplink" -m comment --comment "$tag" -j MASQUERADE
	"$1" filter FORWARD -i "$bridge" -o "$uplink" -s "$cidr" -m comment --comment "$tag" -j ACCEPT
	"$1" filter FORWARD -i "$uplink" -o "$bridge" -d "$cidr" \
		-m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "$tag" -j ACCEPT
}

hasSystemd() { [ -d /run/systemd/system ] && [ "$etc" = /etc ] && command -v systemctl >/dev/null 2>&1; }

apply() {
	ip link show dev "$bridge" >/dev/null 2>&1 || die "bridge $bridge does not exist; the Proxmox provider creates it before this step"
	ip link show dev "$uplink" >/dev/null 2>&1 || die "uplink $uplink does not exist; set network.uplink in the stack config to the interface with the public address"

	self=$(readlink -f "$0")
	ensureFile "$etc/sysctl.d/99-$tag.conf" "net.ipv4.ip_forward = 1"
	ensureFile "$etc/default/$tag" "INFRALAB_BRIDGE=$bridge
INFRALAB_CIDR=$cidr
INFRALAB_UPLINK=$uplink"
	ensureFile "$etc/systemd/system/$tag.service" "[Unit]
Description=infralab: forward and masquerade $bridge ($cidr) through $uplink
After=network-online.target pve-firewall.service
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=$etc/default/$tag
ExecStart=/bin/sh $self apply

[Install]
WantedBy=multi-user.target"

	if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then
		echo 1 >/proc/sys/net/ipv4/ip_forward
		log "enabled net.ipv4.ip_forward"
		changed=1
	fi
	rules ensureRule
	if hasSystemd && ! systemctl is-enabled --quiet "$tag.service"; then
		systemctl daemon-reload
		systemctl enable "$tag.service"
		changed=1
	fi
	if [ "$changed" = 0 ]; then
		log "$bridge ($cidr) via $uplink already forwarded and masqueraded: no change"
	else
		log "$bridge ($cidr) now forwarded and masqueraded via $uplink"
	fi
}

remove() {
	rules dropRule
	if hasSystemd; then
		systemctl disable "$tag.service" 2>/dev/null || true
	fi
	removeFile "$etc/systemd/system/$tag.service"
	removeFile "$etc/default/$tag"
	removeFile "$etc/sysctl.d/99-$tag.conf"
	# ip_forward stays on until reboot: other guests or services may rely on it by now.
	log "removed NAT for $bridge ($cidr); net.ipv4.ip_forward stays 1 until the next reboot"
}

case $action in
	apply) apply ;;
	remove) remove ;;
	*) die "usage: $0 apply|remove" ;;
esac
