#!/usr/bin/env bash
# Helpers prepended to every phase script before it is sent to a node (see cluster/command.go).
# Progress goes to stderr; stdout is reserved for a phase's output value.
set -euo pipefail
# The command runs under `env -i`, which drops HOME: kubectl would then put its cache in a
# root-owned .kube under the SSH user's home (the working directory). Root's home it is.
export HOME=/root

# kubelet_conf exists once a node belongs to a cluster (after kubeadm init, or once the cluster
# has issued the kubelet's client certificate during kubeadm join).
kubelet_conf=/etc/kubernetes/kubelet.conf

log() { printf '[%s] %s\n' "${PHASE:-infralab}" "$*" >&2; }

die() {
	printf '[%s] ERROR: %s\n' "${PHASE:-infralab}" "$*" >&2
	exit 1
}

# retry ATTEMPTS FIRST_DELAY_SECONDS CMD...: doubles the delay after each failure, capped at 60 s.
retry() {
	local attempts=$1 delay=$2 n=1
	shift 2
	until "$@"; do
		if ((n >= attempts)); then
			log "gave up after ${attempts} attempts: $*"
			return 1
		fi
		log "attempt ${n}/${attempts} failed, retrying in ${delay}s: $*"
		sleep "${delay}"
		n=$((n + 1))
		delay=$((delay * 2 > 60 ? 60 : delay * 2))
	done
}

# apt_get waits for the dpkg lock (cloud-init and unattended-upgrades hold it on first boot)
# and bounds each run, so a stuck mirror fails the phase instead of hanging it.
apt_get() {
	DEBIAN_FRONTEND=noninteractive retry 5 5 timeout 600 apt-get -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3 -q -y "$@"
}

# write_if_changed PATH MODE: writes stdin to PATH atomically. Returns 0 if the content changed,
# 1 if PATH already held it, 2 if it could not be written. Call it as
# `... | write_if_changed P M || [[ $? -eq 1 ]]`: a full or read-only disk then fails the phase
# instead of passing for "unchanged" (set -e is off inside a function called before `||`).
write_if_changed() {
	local path=$1 mode=$2 tmp
	if ! tmp=$(mktemp "${path}.XXXXXX"); then
		log "cannot create a file next to ${path}"
		return 2
	fi
	if ! chmod "${mode}" "${tmp}" || ! cat >"${tmp}"; then
		rm -f "${tmp}"
		log "cannot write ${path}"
		return 2
	fi
	if [[ -f "${path}" ]] && cmp -s "${tmp}" "${path}"; then
		rm -f "${tmp}"
		return 1
	fi
	if ! mv -f "${tmp}" "${path}"; then
		rm -f "${tmp}"
		log "cannot replace ${path}"
		return 2
	fi
}

# write_b64_if_changed VAR PATH MODE: decodes the base64 in variable VAR and writes it to PATH
# with write_if_changed, with its return codes (0 changed, 1 unchanged, 2 not written). Input
# that does not decode is 2 and PATH is left alone: decoding first, into a file of its own,
# keeps base64's exit status apart from write_if_changed's (in `base64 -d | write_if_changed`
# a decode error was read as "unchanged" after the truncated output had been written).
write_b64_if_changed() {
	local var=$1 path=$2 mode=$3 tmp rc=0
	if ! tmp=$(mktemp "${path}.b64.XXXXXX"); then
		log "cannot create a file next to ${path}"
		return 2
	fi
	if ! base64 -d <<<"${!var}" >"${tmp}" 2>/dev/null; then
		rm -f "${tmp}"
		log "${var} is not valid base64; ${path} left unchanged"
		return 2
	fi
	write_if_changed "${path}" "${mode}" <"${tmp}" || rc=$?
	rm -f "${tmp}"
	return "${rc}"
}

# require VAR...: fails with the names of missing inputs (a bug in the caller, not the node).
require() {
	local v missing=()
	for v in "$@"; do
		[[ -n "${!v:-}" ]] || missing+=("${v}")
	done
	((${#missing[@]} == 0)) || die "missing inputs: ${missing[*]}"
}

# installed_k8s_version prints x.y.z of the installed kubelet, or nothing.
installed_k8s_version() {
	dpkg-query -W -f='${Version}' kubelet 2>/dev/null | sed -E 's/^([0-9]+\.[0-9]+\.[0-9]+).*/\1/' || true
}

# k8s_packages_ready: kubelet, kubeadm and kubectl are all installed at KUBERNETES_VERSION and
# all held (dpkg's selection "hold" is what `apt-mark hold` sets).
k8s_packages_ready() {
	local p status
	for p in kubelet kubeadm kubectl; do
		status=$(dpkg-query -W -f='${Status} ${Version}' "${p}" 2>/dev/null) || return 1
		[[ "${status}" == "hold ok installed ${KUBERNETES_VERSION}-"* ]] || return 1
	done
}

# refuse_version_change stops when the node already belongs to a cluster running another version.
# An upgrade needs `kubeadm upgrade`, node by node; re-running init or join would break the cluster.
refuse_version_change() {
	local have
	have=$(installed_k8s_version)
	if [[ -f "${kubelet_conf}" && -n "${have}" && "${have}" != "${KUBERNETES_VERSION}" ]]; then
		die "node runs Kubernetes ${have} but ${KUBERNETES_VERSION} was requested: changing the version of a running cluster is not supported yet (needs kubeadm upgrade). Set kubernetesVersion back to ${have}, or rebuild the cluster."
	fi
}

# tighten_kubelet_files: kubeadm and the packages leave these 0644; the CIS benchmark wants 0600.
tighten_kubelet_files() {
	local f
	for f in /var/lib/kubelet/config.yaml /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf \
		/etc/systemd/system/kubelet.service.d/10-kubeadm.conf "${kubelet_conf}"; do
		[[ -f "${f}" ]] && chmod 0600 "${f}"
	done
	return 0
}

# marker_is FILE VALUE: FILE records VALUE. Markers in STATE_DIR record what a node last applied,
# so a re-run does the work only when the wanted value differs, and again after a failure.
marker_is() { [[ -f "$1" && "$(<"$1")" == "$2" ]]; }

# set_marker FILE VALUE (atomically, so an interrupted write leaves the old value or none).
set_marker() {
	printf '%s\n' "$2" >"$1.new"
	mv -f "$1.new" "$1"
}

# restart_kubelet restarts the kubelet and fails unless it stays active for 30 s: a kubelet that
# rejects its configuration exits within seconds and systemd starts it again every 10 s.
restart_kubelet() {
	systemctl restart kubelet || return 1
	for _ in 1 2 3 4 5 6; do
		sleep 5
		systemctl is-active --quiet kubelet || return 1
	done
}
