#!/usr/bin/env bash
# Phase wait-ssh, the first on every node: the SSH dial itself is retried by the command provider
# (dialErrorLimit); here we wait, bounded, for cloud-init to finish, so later phases never race
# its apt runs, and report what it said. The VM resource succeeding does not mean the guest got
# through cloud-init (the Proxmox provider only warns when the guest agent never answers), so
# this is where a failed first boot stops the bootstrap: on "error", and on "degraded" (cloud-init
# >= 23.4 finished with recoverable errors, e.g. a package that did not install), with
# cloud-init's own status and errors in the message.
set -euo pipefail
require NODE_NAME CLOUD_INIT_TIMEOUT

if ! command -v cloud-init >/dev/null 2>&1; then
	log "${NODE_NAME}: no cloud-init on this image, nothing to wait for"
	echo "${NODE_NAME} ready (no cloud-init)"
	exit 0
fi

log "${NODE_NAME}: waiting up to ${CLOUD_INIT_TIMEOUT}s for cloud-init"
rc=0
timeout "${CLOUD_INIT_TIMEOUT}" cloud-init status --wait >/dev/null 2>&1 || rc=$?
if ((rc == 124)); then
	die "${NODE_NAME}: cloud-init still running after ${CLOUD_INIT_TIMEOUT}s; check /var/log/cloud-init-output.log on the node, then run pulumi up again"
fi
long=$(cloud-init status --long 2>&1) || true
# extended_status (cloud-init >= 23.4) says "degraded done" where status says only "done".
status=$(sed -n 's/^extended_status: *//p' <<<"${long}")
[[ -n "${status}" ]] || status=$(sed -n 's/^status: *//p' <<<"${long}")
case "${rc}" in
0)
	log "${NODE_NAME}: cloud-init ${status:-done}"
	echo "${NODE_NAME} ready (cloud-init: ${status:-done})"
	;;
*)
	printf '%s\n' "${long}" >&2
	# exit 1: error; exit 2: degraded (recoverable errors), cloud-init >= 23.4.
	die "cloud-init on ${NODE_NAME} finished with status ${status:-unknown} (exit ${rc}); its errors are above, the whole story in /var/log/cloud-init.log and /var/log/cloud-init-output.log on the node. Fix the infra layer's user-data (or the image) and replace the VM, then run pulumi up again"
	;;
esac
