#!/bin/sh
# Read-only checks on a Proxmox node before the provider creates or changes infralab's bridge.
#
# Creating, changing or deleting a bridge through the API makes the node apply its WHOLE network
# configuration: Proxmox writes the change into /etc/network/interfaces.new, on top of anything
# already staged there (pve-common src/PVE/INotify.pm, shadow file), and the provider's reload
# (PUT /nodes/{node}/network) renames interfaces.new over interfaces and runs `ifreload -a`
# (pve-manager PVE/API2/Network.pm, reload_network_config). A half-finished edit someone staged
# in the web UI would go live on a host that is reachable only over that network. And a bridge
# name already defined fails the create ("interface already exists").
#
# So: `create` refuses pending changes and a taken name; `update` (the bridge exists by then, it
# is ours) refuses pending changes. Every problem is reported at once. Nothing is changed, and
# the files read are world-readable: no root needed.
#
# Usage: host-preflight.sh create|update
# Environment:
#   INFRALAB_BRIDGE  the bridge the provider will create, e.g. vmbr1
#   INFRALAB_NODE    the Proxmox node name, for the messages and the commands they suggest
#   INFRALAB_ETC     config root (default /etc); tests point it at a scratch folder
set -eu

action=${1:-}
bridge=${INFRALAB_BRIDGE:?set INFRALAB_BRIDGE to the private bridge, e.g. vmbr1}
node=${INFRALAB_NODE:?set INFRALAB_NODE to the Proxmox node name}
etc=${INFRALAB_ETC:-/etc}
tag=infralab-preflight
problems=0

log() { printf '%s: %s\n' "$tag" "$*"; }
problem() {
	printf '%s: error: %s\n' "$tag" "$*" >&2
	problems=$((problems + 1))
}

for value in "$bridge" "$node"; do
	case $value in
		*[!A-Za-z0-9._-]* | '')
			log "error: refusing value '$value': only letters, digits and . _ - are allowed" >&2
			exit 1
			;;
	esac
done
case $action in
	create | update) ;;
	*)
		log "error: usage: $0 create|update" >&2
		exit 1
		;;
esac

live=$etc/network/interfaces
staged=$live.new

# Pending: a staged file that differs from the live one (the web UI shows it as "Pending changes").
if [ -e "$staged" ] && ! cmp -s "$live" "$staged"; then
	problem "pending network changes on $node: /etc/network/interfaces.new differs from /etc/network/interfaces, and creating or changing $bridge applies the whole file (ifreload -a). Review them (diff -u /etc/network/interfaces /etc/network/interfaces.new), then apply them yourself with console access at hand (pvesh set /nodes/$node/network, or Network > Apply Configuration) or drop them (pvesh delete /nodes/$node/network, or Network > Revert), and run pulumi up again"
fi

# Taken: a stanza for the name in the live, staged or sourced files, or a live interface.
if [ "$action" = create ]; then
	for f in "$live" "$staged" "$etc"/network/interfaces.d/*; do
		[ -f "$f" ] || continue
		if grep -Eq "^[[:space:]]*iface[[:space:]]+$bridge([[:space:]]|\$)" "$f"; then
			problem "bridge $bridge already exists on $node (/etc/${f#"$etc"/}): set network.bridge to a free name (e.g. the next unused vmbrN), or remove that stanza if it is a leftover"
		fi
	done
	if ip link show dev "$bridge" >/dev/null 2>&1; then
		problem "bridge $bridge already exists on $node (a live network interface): set network.bridge to a free name (e.g. the next unused vmbrN)"
	fi
fi

if [ "$problems" -gt 0 ]; then
	log "$problems problem(s); nothing was changed" >&2
	exit 1
fi
if [ "$action" = create ]; then
	log "$bridge is free and no network change is pending on $node"
else
	log "no network change is pending on $node"
fi
