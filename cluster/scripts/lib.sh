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

# repair_dpkg finishes what an interrupted dpkg left half-done (a dropped SSH session used to kill
# apt mid-install; every later apt-get then fails with "dpkg was interrupted, you must manually
# run 'dpkg --configure -a'"). dpkg --audit prints nothing when there is nothing to finish.
repair_dpkg() {
	local audit
	audit=$(dpkg --audit 2>&1) || true
	[[ -n "${audit}" ]] || return 0
	log "dpkg has unfinished work (an earlier run was cut off?); running dpkg --configure -a"
	DEBIAN_FRONTEND=noninteractive retry 10 5 timeout 600 dpkg --force-confold --configure -a ||
		die "dpkg --configure -a failed; run it on the node to see why, then pulumi up again"
}

# apt_knows NAME VERSION: apt's lists already hold NAME at upstream VERSION. The output is read
# whole first: `apt-cache policy | grep -q` ends apt-cache with SIGPIPE at the first match, and
# pipefail turns that into a failure.
apt_knows() {
	local policy
	policy=$(apt-cache policy "$1" 2>/dev/null) || return 1
	grep -qF -- " $2-" <<<"${policy}"
}

# package_version NAME VERSION prints the newest package version of NAME for upstream VERSION
# (e.g. 1.35.4-1.1 for 1.35.4), or fails. awk reads all of madison's output: with an early
# `exit`, apt-cache died of SIGPIPE and pipefail turned that into a silent end of the phase.
package_version() {
	local madison pkg
	madison=$(apt-cache madison "$1" 2>/dev/null) || return 1
	pkg=$(awk -v v="$2-" 'index($3, v) == 1 && !found { print $3; found = 1 }' <<<"${madison}")
	[[ -n "${pkg}" ]] || return 1
	printf '%s\n' "${pkg}"
}

# ensure_held_package NAME VERSION REPO_CHANGED MISSING_MESSAGE: NAME at upstream VERSION,
# installed and held; refreshes apt's lists only when the repository changed or they do not know
# the version. Keeps a config file we wrote (--force-confold) when the package ships its own.
ensure_held_package() {
	local name=$1 version=$2 changed=$3 missing=$4 status pkg
	status=$(dpkg-query -W -f='${Status} ${Version}' "${name}" 2>/dev/null) || status=""
	if [[ "${status}" == "hold ok installed ${version}-"* ]]; then
		log "${name} ${version} already installed and held"
		return 0
	fi
	if ((changed)) || ! apt_knows "${name}" "${version}"; then
		apt_get update
	fi
	pkg=$(package_version "${name}" "${version}") || die "${missing}"
	log "installing ${name} ${pkg}"
	apt_get install --allow-change-held-packages --allow-downgrades --no-install-recommends \
		-o Dpkg::Options::=--force-confold "${name}=${pkg}"
	apt-mark hold "${name}" >/dev/null
}

# key_fingerprint FILE prints the fingerprint of each primary key in FILE (armoured or not).
key_fingerprint() {
	local home rc=0
	home=$(mktemp -d)
	gpg --homedir "${home}" --batch --with-colons --show-keys "$1" 2>/dev/null |
		awk -F: '$1 == "pub" { want = 1 } $1 == "fpr" && want { print $10; want = 0 }' || rc=$?
	rm -rf "${home}"
	return "${rc}"
}

# add_apt_key URL KEYRING FINGERPRINT: KEYRING holds exactly the key with FINGERPRINT, downloaded
# from URL when it does not already; any other key is refused.
add_apt_key() {
	local url=$1 keyring=$2 want=$3 tmp have
	have=$(key_fingerprint "${keyring}" 2>/dev/null) || have=""
	[[ -s "${keyring}" && "${have}" == "${want}" ]] && return 0
	tmp=$(mktemp)
	if ! retry 5 5 curl -fsSL --max-time 60 -o "${tmp}" "${url}"; then
		rm -f "${tmp}"
		die "cannot download ${url}"
	fi
	have=$(key_fingerprint "${tmp}") || have=""
	if [[ "${have}" != "${want}" ]]; then
		rm -f "${tmp}"
		die "the key at ${url} has fingerprint ${have:-none}, not ${want}: refusing to trust it"
	fi
	gpg --batch --yes --dearmor -o "${keyring}" "${tmp}"
	chmod 0644 "${keyring}"
	rm -f "${tmp}"
}

# containerd_config SANDBOX_IMAGE prints /etc/containerd/config.toml: only the keys we set, in the
# config version the installed containerd writes (3 for 2.0-2.2, 4 for 2.3; their CRI keys are the
# same, containerd v2.3.3 cmd/containerd/server/config/config.go migrations); containerd merges
# the file with its built-in defaults. runc's SystemdCgroup matches the kubelet's cgroupDriver
# systemd (kubelet 1.35 reads the driver from the runtime, CRI RuntimeConfig); the sandbox (pause)
# image is the one kubeadm expects, so its preflight does not warn and no second pause is pulled.
containerd_config() {
	local v
	v=$(containerd config default 2>/dev/null | sed -n '1s/^version = \([0-9][0-9]*\)$/\1/p') || v=""
	case "${v}" in
	3 | 4) ;;
	*) die "containerd ($(containerd --version 2>&1 || true)) writes config version ${v:-unknown}; this phase knows versions 3 and 4 (containerd 2.x)" ;;
	esac
	cat <<TOML
# Written by infralab (prepare-node); containerd merges it with its defaults.
version = ${v}

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = '$1'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = true
TOML
	# kubernetes.imageRepository: containerd looks up per-host settings (the registry's CA) in
	# REGISTRY_CERTS_DIR (registry-hosts.sh writes them).
	if [[ -n "${REGISTRY_CERTS_DIR:-}" ]]; then
		printf "\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '%s'\n" "${REGISTRY_CERTS_DIR}"
	fi
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
		die "node runs Kubernetes ${have} but ${KUBERNETES_VERSION} was requested: the upgrade phases (upgrade-control-plane, upgrade-node) have not finished on it; pulumi up again resumes them (docs/runbooks/upgrade-kubernetes.md)"
	fi
}

# tighten_kubelet_files: kubeadm and the packages leave these 0644; the CIS benchmark wants 0600.
tighten_kubelet_files() {
	local f
	# The cluster CA certificate too (CIS 4.1.7, 600 or stricter): on a worker only the kubelet,
	# as root, reads it.
	for f in /var/lib/kubelet/config.yaml /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf \
		/etc/systemd/system/kubelet.service.d/10-kubeadm.conf "${kubelet_conf}" /etc/kubernetes/pki/ca.crt; do
		[[ -f "${f}" ]] && chmod 0600 "${f}"
	done
	return 0
}

# tighten_pki: kubeadm writes the certificates under /etc/kubernetes/pki 0644 (client-go
# util/cert WriteCert); CIS 1.1.20 wants 0600. Only root reads them: the control plane's static
# pods run as root (kubeadm sets a non-root user only with the RootlessControlPlane feature gate,
# cmd/kubeadm/app/phases/controlplane/manifests.go, which we leave off), and so does the kubelet.
# kubeadm never loosens them again: a renewal rewrites the file in place (os.WriteFile keeps the
# mode of an existing file). Runs on every kubeadm-init run, so a renewed or restored file is
# tightened by the next one.
tighten_pki() {
	local f
	for f in /etc/kubernetes/pki/*.crt /etc/kubernetes/pki/etcd/*.crt; do
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

# jobs_dir holds the detached runs of the long phases, one directory per phase.
jobs_dir=/var/lib/infralab/jobs

# detach_phase stdin|no-stdin: runs the rest of this phase as a transient systemd unit
# (infralab-<phase>.service, in system.slice, not in the SSH session's scope) and follows it, so
# a dropped SSH connection ends only the follower: the unit, and apt or kubeadm inside it, runs to
# the end. With "stdin", the phase's stdin is handed to the unit through a 0600 file that is
# deleted once the unit has started. When an earlier run's unit is still running, this run
# re-attaches to it first (its log so far, then the rest live), waits for it to end, and then runs
# the phase itself, which finds the work done. Only for phases whose stdout is not a secret: the
# unit's stdout and stderr stay in the job directory (0600) until the next run.
detach_phase() {
	[[ "${INFRALAB_DETACHED:-}" == 1 ]] && return 0
	# /run/systemd/system exists only when systemd is PID 1 (sd_booted).
	if [[ -z "${BASH_EXECUTION_STRING:-}" || ! -d /run/systemd/system ]] || ! command -v systemd-run >/dev/null 2>&1; then
		log "cannot detach from the SSH session here (no systemd, or not run with bash -c); running attached"
		return 0
	fi
	local unit="infralab-${PHASE}" dir="${jobs_dir}/${PHASE}" v rc
	local -a args
	# /var/lib/infralab keeps the usual 0755 (other things live there); the job files are root's.
	mkdir -p "${jobs_dir%/*}"
	install -d -m 0700 "${jobs_dir}" "${dir}"
	if systemctl is-active --quiet "${unit}"; then
		log "${unit} from an earlier run is still running (that SSH session was cut); re-attaching, its output follows"
		rc=0
		follow_job "${unit}" "${dir}" >/dev/null || rc=$?
		log "the earlier run ended (exit ${rc}); now running ${PHASE} itself"
	fi
	rm -f "${dir}/rc" "${dir}/out" "${dir}/err" "${dir}/stdin"
	(umask 077 && printf '%s\n' "${BASH_EXECUTION_STRING}" >"${dir}/script")
	# The unit's command line holds no $: systemd may expand variables in it.
	(umask 077 && cat >"${dir}/job") <<JOB
bash ${dir}/script
rc=\$?
echo "\${rc}" >${dir}/rc.new && mv -f ${dir}/rc.new ${dir}/rc
exit "\${rc}"
JOB
	args=(--unit="${unit}" --collect --quiet -p Type=exec
		-p "StandardOutput=file:${dir}/out" -p "StandardError=file:${dir}/err" --setenv=INFRALAB_DETACHED=1)
	if [[ "$1" == stdin ]]; then
		(umask 077 && cat >"${dir}/stdin")
		args+=(-p "StandardInput=file:${dir}/stdin")
	fi
	for v in $(compgen -e); do
		case "${v}" in PWD | OLDPWD | SHLVL | _ | INFRALAB_DETACHED) continue ;; esac
		args+=(--setenv="${v}=${!v}")
	done
	# A unit of the same name that has just ended may not be unloaded yet: retry briefly.
	if ! retry 5 1 systemd-run "${args[@]}" /bin/bash "${dir}/job"; then
		rm -f "${dir}/stdin"
		die "cannot start ${unit} with systemd-run; see journalctl -u ${unit}"
	fi
	# Type=exec: systemd-run returns once the unit's process runs, so its stdin is open.
	rm -f "${dir}/stdin"
	rc=0
	follow_job "${unit}" "${dir}" || rc=$?
	exit "${rc}"
}

# follow_job UNIT DIR: copies the job's stderr to ours while it runs (from the start), then its
# stdout to ours, and returns its exit status (1 when it ended without one, e.g. killed).
follow_job() {
	local unit=$1 dir=$2 pid
	pid=$(systemctl show -p MainPID --value "${unit}" 2>/dev/null || echo 0)
	if [[ "${pid}" =~ ^[1-9][0-9]*$ ]] && [[ -f "${dir}/err" ]]; then
		# --pid: tail reads what is left and ends when the job's process has exited.
		tail -c +1 -f --pid="${pid}" "${dir}/err" >&2 || true
	elif [[ -f "${dir}/err" ]]; then
		cat "${dir}/err" >&2 || true
	fi
	# The unit may outlive its main process by a moment (stopping); wait for it, bounded.
	for _ in {1..30}; do
		[[ -f "${dir}/rc" ]] && break
		systemctl is-active --quiet "${unit}" || break
		sleep 1
	done
	cat "${dir}/out" 2>/dev/null || true
	if [[ -f "${dir}/rc" ]]; then
		return "$(<"${dir}/rc")"
	fi
	log "${unit} ended without an exit status (killed or the node rebooted?); see journalctl -u ${unit}"
	return 1
}
