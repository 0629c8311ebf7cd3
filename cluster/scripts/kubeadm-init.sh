#!/usr/bin/env bash
# Phase kubeadm-init: writes the hardening files and the generated kubeadm config, then runs
# `kubeadm init` once. stdin carries the EncryptionConfiguration (a secret); it is written 0600
# and never echoed. An init that died after upload-config is finished by the next run (its
# remaining phases, see finish_init), one that died earlier is reset and run again. A re-run on
# an initialised control plane never runs init again: it applies
# what changed since the last applied configuration (markers in STATE_DIR): static pods and the
# kubeadm-config/kubelet-config ConfigMaps, then the kubelet's own configuration.
set -euo pipefail
require NODE_NAME KUBERNETES_VERSION STATE_DIR KUBEADM_CONFIG_B64 APISERVER_PATCH_B64 \
	HARDENING_DIR ENCRYPTION_CONFIG_PATH AUDIT_POLICY_PATH AUDIT_POLICY_B64 \
	ADMISSION_CONFIG_PATH ADMISSION_CONFIG_B64 AUTHN_CONFIG_PATH AUTHN_CONFIG_B64 AUDIT_LOG_DIR \
	KUBELET_CONFIG_SHA256
# Detached from the SSH session: a dropped connection no longer stops kubeadm init half-way.
detach_phase stdin
umask 077
export KUBECONFIG=/etc/kubernetes/admin.conf
# init-done: every phase of kubeadm init ran. It is the only proof: an init that died after
# upload-config leaves admin.conf, a ready API server and the kubeadm-config ConfigMap behind.
marker="${STATE_DIR}/init-done"
# "<config sha256> <kubelet config sha256>" a kubeadm init was started with.
init_config_marker="${STATE_DIR}/init-config.sha256"
# sha256 of every file the static pods and ConfigMaps are generated from, as last applied.
applied_marker="${STATE_DIR}/control-plane-config.sha256"
# KUBELET_CONFIG_SHA256 as last written to /var/lib/kubelet/config.yaml on this node.
kubelet_marker="${STATE_DIR}/kubelet-config.sha256"
config="${STATE_DIR}/kubeadm-config.yaml"
patch="${STATE_DIR}/patches/kube-apiserver+strategic.yaml"
log_file=/var/log/infralab/kubeadm-init.log

refuse_version_change
if [[ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]]; then
	running=$(grep -oE 'kube-apiserver:v[0-9]+\.[0-9]+\.[0-9]+' /etc/kubernetes/manifests/kube-apiserver.yaml | head -n1 | cut -d: -f2 || true)
	if [[ -n "${running}" && "${running}" != "v${KUBERNETES_VERSION}" ]]; then
		die "control plane runs ${running} but v${KUBERNETES_VERSION} was requested: the upgrade-control-plane phase has not finished; pulumi up again resumes it (docs/runbooks/upgrade-kubernetes.md)"
	fi
fi

install -d -m 0700 "${STATE_DIR}" "${HARDENING_DIR}" "${AUDIT_LOG_DIR}" /var/log/infralab "${STATE_DIR}/patches"

enc_new=$(mktemp "${STATE_DIR}/encryption.XXXXXX")
trap 'rm -f "${enc_new}"' EXIT
cat >"${enc_new}"
[[ -s "${enc_new}" ]] || die "no EncryptionConfiguration on stdin"

api_ready() { kubectl get --raw=/readyz >/dev/null 2>&1; }
apiserver_manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
# apiserver_seen holds "<manifest sha256> <epoch seconds>": when this manifest content was first
# written. It outlives a failed run, so the next run still waits for a container that new.
apiserver_seen="${STATE_DIR}/apiserver-manifest.seen"
# apiserver_started_since EPOCH: a kube-apiserver container created at or after EPOCH is running.
apiserver_started_since() {
	local created
	created=$(crictl --runtime-endpoint unix:///run/containerd/containerd.sock ps --name kube-apiserver --state running -o json 2>/dev/null |
		sed -n 's/.*"createdAt": *"\([0-9]*\)".*/\1/p' | sort -n | tail -n1) || true
	[[ -n "${created}" ]] && ((created / 1000000000 >= $1))
}
file_sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1 || true; }
initialised() {
	[[ -f "${marker}" ]] && return 0
	# An init that got past upload-config (finish_init runs the rest), or one that finished but
	# whose marker was lost.
	[[ -f /etc/kubernetes/admin.conf ]] && api_ready &&
		kubectl -n kube-system get configmap kubeadm-config >/dev/null 2>&1
}

if [[ -f "${ENCRYPTION_CONFIG_PATH}" ]] && ! cmp -s "${enc_new}" "${ENCRYPTION_CONFIG_PATH}" && initialised; then
	die "the Secret encryption key differs from the one this cluster uses: rotating it is not supported yet (stored Secrets would become unreadable). Restore the previous key in the stack config; see docs/cluster.md"
fi
write_if_changed "${ENCRYPTION_CONFIG_PATH}" 0600 <"${enc_new}" || [[ $? -eq 1 ]]

for pair in "AUDIT_POLICY" "ADMISSION_CONFIG" "AUTHN_CONFIG"; do
	path_var="${pair}_PATH"
	write_b64_if_changed "${pair}_B64" "${!path_var}" 0600 || [[ $? -eq 1 ]]
done
write_b64_if_changed KUBEADM_CONFIG_B64 "${config}" 0600 || [[ $? -eq 1 ]]
write_b64_if_changed APISERVER_PATCH_B64 "${patch}" 0600 || [[ $? -eq 1 ]]
wanted=$(cat "${config}" "${patch}" "${AUDIT_POLICY_PATH}" "${ADMISSION_CONFIG_PATH}" "${AUTHN_CONFIG_PATH}" | sha256sum | cut -d' ' -f1)

# kubeadm_phase TIMEOUT DESCRIPTION ARGS...: one `kubeadm init phase`, logged, or a clear failure.
kubeadm_phase() {
	local seconds=$1 what=$2
	shift 2
	if ! timeout "${seconds}" kubeadm init phase "$@" >>"${log_file}" 2>&1; then
		tail -n 25 "${log_file}" >&2 || true
		die "kubeadm init phase ${what} failed on ${NODE_NAME}; full log in ${log_file}. Fix the cause and run pulumi up again (the change is applied again until it succeeds)"
	fi
}

# control_plane_marked: the Node carries kubeadm's control-plane label.
control_plane_marked() {
	[[ -n "$(kubectl get nodes -l node-role.kubernetes.io/control-plane --field-selector "metadata.name=${NODE_NAME}" -o name 2>/dev/null)" ]]
}

# finish_init runs what kubeadm init does after upload-config (kubeadm v1.35.4
# cmd/kubeadm/app/cmd/init.go appends upload-config, upload-certs, mark-control-plane,
# bootstrap-token, kubelet-finalize, addon, show-join-command). Each is idempotent: upload-config,
# the bootstrap RBAC rules, cluster-info and the addons use create-or-update (or create-or-retain),
# mark-control-plane patches the node, kubelet-finalize rewrites kubelet.conf to the same content.
# bootstrap-token also creates init's own 15-minute token again, never printed. upload-certs is
# skipped by init itself without --upload-certs, so it is left out here too.
finish_init() {
	log "kubeadm init on ${NODE_NAME} did not record its completion; running its phases from upload-config on again; log: ${log_file}"
	kubeadm_phase 120 upload-config upload-config all --config "${config}"
	kubeadm_phase 120 mark-control-plane mark-control-plane --config "${config}"
	# It exits 0 without marking when the node never got the kubelet's hostname label within a
	# minute (apiclient.PatchNode returns its last error, nil while only waiting; seen with the
	# real kubeadm v1.35.4), so check the result.
	retry 5 5 control_plane_marked ||
		die "kubeadm init phase mark-control-plane did not label node ${NODE_NAME} as control plane (has its kubelet registered it? see journalctl -u kubelet); the next run tries again"
	kubeadm_phase 120 bootstrap-token bootstrap-token --config "${config}" --skip-token-print
	kubeadm_phase 120 kubelet-finalize kubelet-finalize all --config "${config}"
	kubeadm_phase 300 addon addon all --config "${config}"
	# The static pods and the kubelet config are what that init wrote, if it ran with these files.
	if marker_is "${init_config_marker}" "${wanted} ${KUBELET_CONFIG_SHA256}"; then
		set_marker "${applied_marker}" "${wanted}"
		set_marker "${kubelet_marker}" "${KUBELET_CONFIG_SHA256}"
	fi
	touch "${marker}"
}

if initialised; then
	[[ -f "${marker}" ]] || finish_init
	tighten_kubelet_files
	tighten_pki
	done_something=0
	if ! marker_is "${applied_marker}" "${wanted}"; then
		# Regenerates the static pod manifests from the new config (the patch carries a hash of the
		# hardening files, so the kubelet restarts the API server when one of them changed), then
		# uploads the new ClusterConfiguration and KubeletConfiguration for `kubeadm upgrade` and
		# for the workers, which fetch the kubelet-config ConfigMap in their join-worker phase.
		log "control plane already initialised; applying the changed configuration (static pods, kubeadm-config and kubelet-config ConfigMaps); log: ${log_file}"
		old_manifest=$(file_sha "${apiserver_manifest}")
		kubeadm_phase 300 control-plane control-plane all --config "${config}"
		# The phase only writes the manifest; until the kubelet has replaced the container,
		# /readyz answers from the old API server and would pass a broken new one.
		new_manifest=$(file_sha "${apiserver_manifest}")
		if ! read -r seen_sha seen_at 2>/dev/null <"${apiserver_seen}"; then
			seen_sha=${old_manifest} seen_at=0 # first run of this check: trust what already runs
		fi
		if [[ "${new_manifest}" != "${seen_sha}" ]]; then
			seen_at=$(date +%s)
		fi
		printf '%s %s\n' "${new_manifest}" "${seen_at}" >"${apiserver_seen}"
		log "waiting for an API server started from the current manifest"
		retry 20 2 apiserver_started_since "${seen_at}" || die "no API server started from the changed manifest is running; see crictl ps -a, journalctl -u kubelet and ${log_file} on ${NODE_NAME}. The change is applied again on the next pulumi up"
		retry 30 2 api_ready || die "API server not ready after the configuration change; see crictl ps -a and ${log_file} on ${NODE_NAME}. The change is applied again on the next pulumi up"
		kubeadm_phase 120 upload-config upload-config all --config "${config}"
		set_marker "${applied_marker}" "${wanted}"
		done_something=1
	fi
	if ! marker_is "${kubelet_marker}" "${KUBELET_CONFIG_SHA256}"; then
		# Rewrites /var/lib/kubelet/config.yaml from the new KubeletConfiguration. kubeadm restarts
		# the kubelet itself but only warns when that fails, so restart and check it here.
		log "kubelet configuration changed; rewriting it and restarting the kubelet on ${NODE_NAME}"
		kubeadm_phase 120 kubelet-start kubelet-start --config "${config}"
		tighten_kubelet_files
		restart_kubelet || die "the kubelet on ${NODE_NAME} does not stay up with the new configuration; see journalctl -u kubelet and ${log_file} on ${NODE_NAME}"
		retry 30 2 api_ready || die "API server not ready after the kubelet restart; see crictl ps -a on ${NODE_NAME}"
		set_marker "${kubelet_marker}" "${KUBELET_CONFIG_SHA256}"
		done_something=1
	fi
	((done_something)) || log "control plane already initialised; nothing to do"
	echo "control plane ${NODE_NAME} initialised (Kubernetes v${KUBERNETES_VERSION})"
	exit 0
fi

if [[ -e /etc/kubernetes/admin.conf || -e /etc/kubernetes/manifests/kube-apiserver.yaml || -d /var/lib/etcd/member ]]; then
	log "a previous kubeadm init did not finish; resetting this control plane before retrying"
	timeout 300 kubeadm reset --force >>"${log_file}" 2>&1 || die "kubeadm reset failed; see ${log_file} on ${NODE_NAME}"
	# reset removes /etc/kubernetes/manifests but leaves our files; put the config back in place.
	write_b64_if_changed KUBEADM_CONFIG_B64 "${config}" 0600 || [[ $? -eq 1 ]]
fi

log "kubeadm init on ${NODE_NAME} (Kubernetes v${KUBERNETES_VERSION}); log: ${log_file}"
set_marker "${init_config_marker}" "${wanted} ${KUBELET_CONFIG_SHA256}"
# --skip-token-print keeps the bootstrap token out of the log; the join-token phase makes its own.
if ! timeout 900 kubeadm init --config "${config}" --skip-token-print >>"${log_file}" 2>&1; then
	tail -n 25 "${log_file}" >&2 || true
	die "kubeadm init failed on ${NODE_NAME}; full log in ${log_file}. Fix the cause and run pulumi up again: the next run finishes an init that got past upload-config, and resets and retries any other."
fi
retry 30 2 api_ready || die "API server not ready after kubeadm init; see ${log_file}"
tighten_kubelet_files
tighten_pki
set_marker "${applied_marker}" "${wanted}"
set_marker "${kubelet_marker}" "${KUBELET_CONFIG_SHA256}"
touch "${marker}"
echo "control plane ${NODE_NAME} initialised (Kubernetes v${KUBERNETES_VERSION})"
