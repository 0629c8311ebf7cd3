#!/bin/sh
# Checks, or removes, one VM's cloud-init user-data snippet on a Proxmox host.
#
# The snippet resource keeps its file when it is replaced or deleted (RetainOnDelete: a replaced
# snippet would otherwise delete the file its successor had just written under the same name).
# This script is the delete that still has to happen once the VM is gone: a remote command runs
# `check` after the upload and `remove` when it is deleted, which is after its VM is deleted.
#
# Idempotent: `remove` of a file that is already gone, or on a storage that no longer exists,
# says so and succeeds, so a destroy always converges.
#
# `remove` keeps a file that any VM in the cluster still names in its cicustom (a VM that
# migrated to another node, a snippet on shared storage, another stack with the same names):
# /etc/pve is the cluster-wide configuration, so every node's VM configs are visible there.
#
# Usage: snippet-cleanup.sh check|remove
# Environment:
#   INFRALAB_SNIPPET  the volume ID, e.g. local:snippets/infralab-lab-k8s-cp-1.user-data.yaml
#   INFRALAB_PVE      the cluster configuration (default /etc/pve); tests point it at a scratch folder
set -eu

action=${1:-}
volid=${INFRALAB_SNIPPET:?set INFRALAB_SNIPPET to the snippet volume ID, e.g. local:snippets/infralab-lab-k8s-cp-1.user-data.yaml}
pve=${INFRALAB_PVE:-/etc/pve}
tag=infralab-snippet

log() { printf '%s: %s\n' "$tag" "$*"; }
die() { log "error: $*" >&2; exit 1; }

# Only ever touch infralab's own user-data snippets.
name=${volid#*:snippets/}
case $volid in
*:snippets/infralab-*.user-data.yaml) ;;
*) die "refusing $volid: not an infralab user-data snippet" ;;
esac
case $name in
*/*) die "refusing $volid: the file name holds a /" ;;
esac

case $action in
check)
	file=$(pvesm path "$volid") || die "pvesm cannot resolve $volid: is its storage enabled on this node with content type snippets?"
	[ -s "$file" ] || die "$volid ($file) is missing or empty on $(hostname): the VM could not start"
	log "$volid present at $file"
	;;
remove)
	if ! file=$(pvesm path "$volid" 2>/dev/null); then
		log "storage of $volid is gone; nothing to remove"
		exit 0
	fi
	for conf in "$pve"/nodes/*/qemu-server/*.conf; do
		[ -f "$conf" ] || continue
		if grep -E '^cicustom:' "$conf" | grep -qF "$volid"; then
			log "keeping $volid: $conf still uses it"
			exit 0
		fi
	done
	if [ ! -e "$file" ]; then
		log "$volid already removed"
		exit 0
	fi
	rm -f -- "$file"
	log "removed $volid ($file)"
	;;
*)
	die "usage: snippet-cleanup.sh check|remove"
	;;
esac
