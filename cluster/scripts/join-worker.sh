#!/usr/bin/env bash
# Phase join-worker: `kubeadm join` from the JoinConfiguration on stdin (it holds the bootstrap
# token, so it is written 0600 and removed afterwards). A joined node is left alone.
set -euo pipefail
require NODE_NAME KUBERNETES_VERSION STATE_DIR
umask 077
log_file=/var/log/infralab/kubeadm-join.log
install -d -m 0700 "${STATE_DIR}" /var/log/infralab

refuse_version_change
if [[ -f /etc/kubernetes/kubelet.conf ]] && systemctl is-active --quiet kubelet; then
	cat >/dev/null
	tighten_kubelet_files
	log "${NODE_NAME} already joined; nothing to do"
	echo "${NODE_NAME} joined"
	exit 0
fi

config=$(mktemp "${STATE_DIR}/join.XXXXXX")
trap 'rm -f "${config}"' EXIT
cat >"${config}"
[[ -s "${config}" ]] || die "no JoinConfiguration on stdin"

if [[ -e /etc/kubernetes/kubelet.conf || -e /etc/kubernetes/bootstrap-kubelet.conf || -e /etc/kubernetes/pki/ca.crt ]]; then
	log "${NODE_NAME}: a previous join did not finish; resetting before retrying"
	timeout 300 kubeadm reset --force >>"${log_file}" 2>&1 || die "kubeadm reset failed; see ${log_file} on ${NODE_NAME}"
fi

log "${NODE_NAME}: kubeadm join; log: ${log_file}"
if ! timeout 600 kubeadm join --config "${config}" >>"${log_file}" 2>&1; then
	tail -n 25 "${log_file}" >&2 || true
	die "kubeadm join failed on ${NODE_NAME}; full log in ${log_file}. If the token expired, run: pulumi up --replace on the join-token command (see docs/cluster.md)"
fi
tighten_kubelet_files
echo "${NODE_NAME} joined"
