#!/usr/bin/env bash
# Phase upgrade-control-plane: upgrades the control plane to KUBERNETES_VERSION the way kubeadm
# documents it: the minor's package repository, kubeadm (unhold, install, hold), `kubeadm upgrade
# plan`, `kubeadm upgrade apply` (which also renews the certificates, admin.conf included:
# kubeadm v1.35 phases/upgrade/staticpods.go, certificateRenewal defaults to true), then kubelet
# and kubectl, a kubelet restart, and a wait for the node to be Ready at the new version. Each step
# checks its result first: an API server already at the version skips apply, packages already
# held at it are left alone, so a run cut off anywhere resumes. Nothing to do on a new cluster.
set -euo pipefail
require NODE_NAME KUBERNETES_VERSION STATE_DIR NODE_READY_TIMEOUT
export KUBECONFIG=/etc/kubernetes/admin.conf
if [[ ! -f "${KUBECONFIG}" ]]; then
	echo "no cluster on ${NODE_NAME} yet: kubeadm-init installs Kubernetes ${KUBERNETES_VERSION}"
	exit 0
fi
# apt and kubeadm must not die with the SSH session.
detach_phase no-stdin
log_file=/var/log/infralab/upgrade-control-plane.log
install -d -m 0700 /var/log/infralab
v="v${KUBERNETES_VERSION}"
retry 10 3 kubectl get --raw=/readyz >/dev/null 2>&1 || die "the API server on ${NODE_NAME} is not ready"
running=$(apiserver_version)
manifest_at() { grep -q "kube-apiserver:${v}\$" /etc/kubernetes/manifests/kube-apiserver.yaml 2>/dev/null; }
if [[ "${running}" == "${KUBERNETES_VERSION}" ]] && manifest_at && held_at kubelet "${KUBERNETES_VERSION}" &&
	held_at kubeadm "${KUBERNETES_VERSION}" && held_at kubectl "${KUBERNETES_VERSION}"; then
	echo "control plane ${NODE_NAME} already runs Kubernetes ${KUBERNETES_VERSION}"
	exit 0
fi
if ! why=$(upgrade_path "${running}" "${KUBERNETES_VERSION}"); then
	die "the cluster runs ${running}: ${why}"
fi
repair_dpkg
progress "upgrade ${running} -> ${KUBERNETES_VERSION} starts; log: ${log_file}"
k8s_repo "${KUBERNETES_VERSION}"
upgrade_packages "${KUBERNETES_VERSION}" kubeadm || true
have=$(kubeadm version -o short 2>/dev/null) || have=""
[[ "${have}" == "${v}" ]] || die "kubeadm on ${NODE_NAME} is ${have:-missing}, not ${v}, after installing it"

if [[ "${running}" == "${KUBERNETES_VERSION}" ]] && manifest_at; then
	progress "kubeadm upgrade apply ${v} already done"
else
	progress "kubeadm upgrade plan ${v}"
	if ! timeout 300 kubeadm upgrade plan "${v}" >>"${log_file}" 2>&1; then
		tail -n 25 "${log_file}" >&2 || true
		die "kubeadm upgrade plan ${v} failed on ${NODE_NAME}; nothing was upgraded yet. Full log in ${log_file}; fix the cause and pulumi up again"
	fi
	progress "kubeadm upgrade apply ${v} (control plane components, etcd, CoreDNS, kube-proxy, certificates)"
	# The patches are kubeadm-init's, so the upgraded API server keeps the hardening flags.
	if ! timeout 1500 kubeadm upgrade apply "${v}" -y --patches "${STATE_DIR}/patches" >>"${log_file}" 2>&1; then
		tail -n 25 "${log_file}" >&2 || true
		die "kubeadm upgrade apply ${v} failed on ${NODE_NAME} (it rolls the static pods back on failure); full log in ${log_file}. Fix the cause and pulumi up again: the upgrade resumes"
	fi
	retry 30 2 kubectl get --raw=/readyz >/dev/null 2>&1 || die "the API server is not ready after kubeadm upgrade apply; see ${log_file}"
	progress "kubeadm upgrade apply ${v} done"
fi

if upgrade_packages "${KUBERNETES_VERSION}" kubelet kubectl; then
	systemctl daemon-reload
	restart_kubelet || die "the kubelet ${KUBERNETES_VERSION} on ${NODE_NAME} does not stay up; see journalctl -u kubelet"
fi
deadline=$((SECONDS + NODE_READY_TIMEOUT))
until node_ready "${NODE_NAME}" && [[ "$(node_kubelet_version "${NODE_NAME}")" == "${KUBERNETES_VERSION}" ]]; do
	((SECONDS < deadline)) || die "${NODE_NAME} is not Ready at ${KUBERNETES_VERSION} after ${NODE_READY_TIMEOUT}s; see journalctl -u kubelet"
	sleep 5
done
progress "Ready at ${KUBERNETES_VERSION}"
echo "control plane ${NODE_NAME} runs Kubernetes ${KUBERNETES_VERSION}"
