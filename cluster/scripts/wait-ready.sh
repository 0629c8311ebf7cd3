#!/usr/bin/env bash
# Phase wait-ssh: the SSH dial itself is retried by the command provider (dialErrorLimit); here
# we wait, bounded, for cloud-init to finish so later phases never race its apt runs.
set -euo pipefail
require NODE_NAME CLOUD_INIT_TIMEOUT

if ! command -v cloud-init >/dev/null 2>&1; then
	log "${NODE_NAME}: no cloud-init on this image, nothing to wait for"
	exit 0
fi

log "${NODE_NAME}: waiting up to ${CLOUD_INIT_TIMEOUT}s for cloud-init"
rc=0
timeout "${CLOUD_INIT_TIMEOUT}" cloud-init status --wait >/dev/null 2>&1 || rc=$?
case "${rc}" in
0) log "${NODE_NAME}: cloud-init done" ;;
# 2: finished with recoverable errors (cloud-init >= 23.4); the node is usable.
2) log "${NODE_NAME}: cloud-init finished with recoverable errors, see /var/log/cloud-init.log" ;;
124) die "${NODE_NAME}: cloud-init still running after ${CLOUD_INIT_TIMEOUT}s; check /var/log/cloud-init-output.log on the node, then run pulumi up again" ;;
*) die "${NODE_NAME}: cloud-init failed (exit ${rc}): $(cloud-init status --long 2>&1 | tr '\n' ' ')" ;;
esac
echo "${NODE_NAME} ready"
