#!/usr/bin/env bash
# Phase join-worker: `kubeadm join` from the JoinConfiguration on stdin (it holds the bootstrap
# token, so it is written 0600 and removed afterwards), then the marker join-done. A joined node
# is never reset: a stopped kubelet is restarted, and a changed kubelet configuration (its hash
# differs from the marker kubelet-config.sha256) is fetched from the cluster's kubelet-config
# ConfigMap, which kubeadm-init has uploaded before this phase runs. The one exception: a node
# joined to another cluster (its CA differs from the one the JoinConfiguration pins, because the
# control plane was rebuilt) is reset and joined to this one; it cannot be a member of both.
set -euo pipefail
require NODE_NAME KUBERNETES_VERSION STATE_DIR KUBELET_CONFIG_SHA256 JOIN_TOKEN_RESOURCE JOIN_TOKEN_TTL
umask 077
log_file=/var/log/infralab/kubeadm-join.log
marker="${STATE_DIR}/join-done"
kubelet_marker="${STATE_DIR}/kubelet-config.sha256"
install -d -m 0700 "${STATE_DIR}" /var/log/infralab

# log_tail shows the end of kubeadm's log. It goes into the provider's error text, so anything
# shaped like a bootstrap token (the JoinConfiguration holds one) is masked first.
log_tail() {
	tail -n 25 "${log_file}" | sed -E 's/[a-z0-9]{6}\.[a-z0-9]{16}/<bootstrap token>/g' >&2 || true
}

refuse_version_change

# Joined by an earlier version of this phase, or the marker write was lost: the kubelet writes
# kubelet.conf only once the cluster has issued its client certificate, so that join succeeded.
if [[ ! -f "${marker}" && -f /etc/kubernetes/kubelet.conf ]]; then
	log "${NODE_NAME}: kubelet.conf from an earlier join found; recording the node as joined"
	touch "${marker}"
fi

config=$(mktemp "${STATE_DIR}/join.XXXXXX")
trap 'rm -f "${config}"' EXIT
cat >"${config}"

# ca_hash prints kubeadm's hash of a CA certificate (sha256 of its public key's DER), the value
# the JoinConfiguration's caCertHashes pins (join-token.sh computes it the same way).
ca_hash() {
	openssl x509 -pubkey -noout -in "$1" | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1
}

# Joined, but to another cluster: the control plane was rebuilt (a replaced VM gets a new CA), so
# this node's kubelet talks to a cluster that is gone. Reset it and join the current one.
if [[ -f "${marker}" && -f /etc/kubernetes/pki/ca.crt ]]; then
	want=$(sed -n 's/^[[:space:]]*-[[:space:]]*"\{0,1\}sha256:\([0-9a-f]\{64\}\)"\{0,1\}[[:space:]]*$/\1/p' "${config}" | head -n 1)
	have=$(ca_hash /etc/kubernetes/pki/ca.crt) || die "cannot read the CA certificate /etc/kubernetes/pki/ca.crt on ${NODE_NAME}"
	if [[ -n "${want}" && "${have}" != "${want}" ]]; then
		log "${NODE_NAME}: joined to another cluster (CA sha256:${have:0:12}..., this cluster's is sha256:${want:0:12}...): the control plane was rebuilt; resetting and joining this one"
		timeout 300 kubeadm reset --force >>"${log_file}" 2>&1 || die "kubeadm reset failed; see ${log_file} on ${NODE_NAME}"
		rm -f "${marker}" "${kubelet_marker}"
	fi
fi

if [[ -f "${marker}" ]]; then
	[[ -f /etc/kubernetes/kubelet.conf ]] ||
		die "${NODE_NAME} joined earlier (${marker}) but has no /etc/kubernetes/kubelet.conf, so it was reset by hand. It is not joined again automatically: remove ${marker} on ${NODE_NAME} and run pulumi up to join it again, or replace its VM"
	stuck="The node joined earlier, so it is not reset automatically: fix the kubelet and run pulumi up again, or replace the VM to rebuild the node"
	if ! marker_is "${kubelet_marker}" "${KUBELET_CONFIG_SHA256}"; then
		log "${NODE_NAME}: kubelet configuration changed; fetching it from the cluster and restarting the kubelet; log: ${log_file}"
		if ! timeout 300 kubeadm upgrade node phase kubelet-config --kubeconfig /etc/kubernetes/kubelet.conf >>"${log_file}" 2>&1; then
			log_tail
			die "kubeadm upgrade node phase kubelet-config failed on ${NODE_NAME}; full log in ${log_file}"
		fi
		tighten_kubelet_files
		restart_kubelet || die "the kubelet on ${NODE_NAME} does not stay up with the new configuration; see journalctl -u kubelet on ${NODE_NAME}. ${stuck}"
		set_marker "${kubelet_marker}" "${KUBELET_CONFIG_SHA256}"
	elif ! systemctl is-active --quiet kubelet; then
		log "${NODE_NAME}: joined, but the kubelet is not active; restarting it"
		restart_kubelet || die "the kubelet on ${NODE_NAME} does not stay up after a restart; see journalctl -u kubelet on ${NODE_NAME}. ${stuck}"
	fi
	tighten_kubelet_files
	log "${NODE_NAME} already joined; nothing else to do"
	echo "${NODE_NAME} joined"
	exit 0
fi

[[ -s "${config}" ]] || die "no JoinConfiguration on stdin"

# No marker and no kubelet.conf: whatever kubeadm left here is from a join that did not finish.
if [[ -e /etc/kubernetes/bootstrap-kubelet.conf || -e /etc/kubernetes/pki/ca.crt || -e /var/lib/kubelet/config.yaml ]]; then
	log "${NODE_NAME}: a previous join did not finish; resetting before retrying"
	timeout 300 kubeadm reset --force >>"${log_file}" 2>&1 || die "kubeadm reset failed; see ${log_file} on ${NODE_NAME}"
fi

log "${NODE_NAME}: kubeadm join; log: ${log_file}"
log_start=$(stat -c %s "${log_file}" 2>/dev/null || echo 0)
if ! timeout 600 kubeadm join --config "${config}" >>"${log_file}" 2>&1; then
	log_tail
	# This attempt's part of the log. Discovery finds no signature for a token the cluster does not
	# know (deleted, or expired and cleaned up); an expired token not yet cleaned up gets a 401.
	attempt=$(tail -c +"$((log_start + 1))" "${log_file}" || true)
	if grep -Eq 'could not find a JWS signature|invalid for this cluster or it has expired|Unauthorized' <<<"${attempt}"; then
		die "kubeadm join on ${NODE_NAME} was refused: the bootstrap token is unknown or expired (it lives ${JOIN_TOKEN_TTL} and is deleted once every node is Ready). Mint a new one, which re-runs every join: pulumi up --replace <URN of ${JOIN_TOKEN_RESOURCE}> (find it with: pulumi stack --show-urns | grep ::${JOIN_TOKEN_RESOURCE}). Full log in ${log_file}"
	fi
	die "kubeadm join failed on ${NODE_NAME}; full log in ${log_file}. Fix the cause and run pulumi up again"
fi
tighten_kubelet_files
# The join fetched the kubelet configuration the cluster has now, which is this one.
set_marker "${kubelet_marker}" "${KUBELET_CONFIG_SHA256}"
touch "${marker}"
echo "${NODE_NAME} joined"
