#!/usr/bin/env bash
# Phase upgrade-node (on a worker, after upgrade-drain): the minor's package repository, kubeadm
# (unhold, install, hold), `kubeadm upgrade node` (the worker's kubelet configuration from the
# cluster), then kubelet and kubectl and a kubelet restart. Each step checks its result first; a
# marker records the version `kubeadm upgrade node` ran for. Nothing to do on a node that has not
# joined (join-worker installs the version) or one already upgraded.
set -euo pipefail
require NODE_NAME KUBERNETES_VERSION STATE_DIR
# shellcheck disable=SC2154 # kubelet_conf is lib.sh's
if [[ ! -f "${kubelet_conf}" ]]; then
	echo "${NODE_NAME} has not joined yet: join-worker installs ${KUBERNETES_VERSION}"
	exit 0
fi
marker="${STATE_DIR}/upgrade-node.version"
if marker_is "${marker}" "${KUBERNETES_VERSION}" && held_at kubelet "${KUBERNETES_VERSION}" &&
	held_at kubeadm "${KUBERNETES_VERSION}" && held_at kubectl "${KUBERNETES_VERSION}"; then
	echo "${NODE_NAME} already upgraded to ${KUBERNETES_VERSION}"
	exit 0
fi
have=$(installed_k8s_version)
if [[ -n "${have}" ]] && ! why=$(upgrade_path "${have}" "${KUBERNETES_VERSION}"); then
	die "${NODE_NAME} runs ${have}: ${why}"
fi
detach_phase no-stdin
log_file=/var/log/infralab/upgrade-node.log
install -d -m 0700 /var/log/infralab "${STATE_DIR}"
repair_dpkg
progress "upgrade ${have:-?} -> ${KUBERNETES_VERSION} starts; log: ${log_file}"
k8s_repo "${KUBERNETES_VERSION}"
upgrade_packages "${KUBERNETES_VERSION}" kubeadm || true
if ! marker_is "${marker}.kubeadm" "${KUBERNETES_VERSION}"; then
	progress "kubeadm upgrade node"
	if ! timeout 600 kubeadm upgrade node >>"${log_file}" 2>&1; then
		tail -n 25 "${log_file}" >&2 || true
		die "kubeadm upgrade node failed on ${NODE_NAME}; full log in ${log_file}. The node stays drained; fix the cause and pulumi up again to resume"
	fi
	set_marker "${marker}.kubeadm" "${KUBERNETES_VERSION}"
fi
tighten_kubelet_files
if upgrade_packages "${KUBERNETES_VERSION}" kubelet kubectl || ! marker_is "${marker}" "${KUBERNETES_VERSION}"; then
	systemctl daemon-reload
	restart_kubelet || die "the kubelet ${KUBERNETES_VERSION} on ${NODE_NAME} does not stay up; see journalctl -u kubelet"
fi
set_marker "${marker}" "${KUBERNETES_VERSION}"
progress "kubelet ${KUBERNETES_VERSION} running"
echo "${NODE_NAME} upgraded to ${KUBERNETES_VERSION}"
