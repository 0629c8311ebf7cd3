#!/usr/bin/env bash
# Helpers of the upgrade phases (cluster/upgrade.go) and of prepare-node, prepended after lib.sh.
set -euo pipefail

# progress MESSAGE: a line of progress with the node and the seconds since the phase started.
progress() { log "${NODE_NAME}: $* (${SECONDS}s)"; }

# upgrade_path FROM TO: returns 0 when kubeadm can go from FROM to TO (x.y.z) in one step: the
# same version, a later patch, or the next minor. Otherwise prints why and the path to take, and
# returns 1. The same rule as cluster.UpgradeProblem (cluster/upgrade.go).
upgrade_path() {
	local from=$1 to=$2 fM fm fp tM tm tp
	IFS=. read -r fM fm fp <<<"${from}"
	IFS=. read -r tM tm tp <<<"${to}"
	if ((tM != fM)); then
		echo "${from} to ${to} changes the major version; kubeadm cannot do that"
		return 1
	fi
	if ((tm < fm || (tm == fm && tp < fp))); then
		echo "${from} to ${to} is a downgrade, which kubeadm does not support: set kubernetes.version back to ${from}"
		return 1
	fi
	if ((tm > fm + 1)); then
		echo "${from} to ${to} skips ${fM}.$((fm + 1)): kubeadm upgrades one minor at a time; set kubernetes.version to ${fM}.$((fm + 1)).<newest patch>, pulumi up, then ${to}"
		return 1
	fi
}

# node_kubelet_version NODE prints x.y.z of the kubelet NODE reports, or nothing (no such node).
node_kubelet_version() {
	local v
	v=$(kubectl get node "$1" -o 'jsonpath={.status.nodeInfo.kubeletVersion}' 2>/dev/null) || return 0
	printf '%s\n' "${v#v}"
}

# node_ready NODE: its Ready condition is True.
node_ready() {
	[[ "$(kubectl get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# apiserver_version prints x.y.z of the running API server (the server side of kubectl version).
apiserver_version() {
	local json
	json=$(kubectl version -o json 2>/dev/null) || return 0
	sed -n 's/.*"gitVersion": *"v\([0-9.]*\)".*/\1/p' <<<"${json}" | tail -n1
}

# held_at NAME VERSION: NAME is installed at upstream VERSION and held.
held_at() {
	local status
	status=$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null) || return 1
	[[ "${status}" == "hold ok installed $2-"* ]]
}

# k8s_repo VERSION: apt's Kubernetes source is the repository of VERSION's minor (each minor has
# its own repository, <base>/core:/stable:/vX.Y/deb/, and its own Release.key). The base is
# pkgs.k8s.io, or kubernetes.packageRepository's mirror (PACKAGE_REPOSITORY_URL, its key pinned by
# PACKAGE_REPOSITORY_KEY_FINGERPRINT), exactly as prepare-node.sh chooses it. Sets
# k8s_repo_changed=1 when the source list changed, so apt's lists are refreshed.
k8s_repo_changed=0
k8s_repo() {
	local minor keyring tmp rc=0 base=https://pkgs.k8s.io
	[[ "$1" =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "not a version: $1"
	minor="v${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
	install -d -m 0755 /etc/apt/keyrings
	if [[ -n "${PACKAGE_REPOSITORY_URL:-}" ]]; then
		base=${PACKAGE_REPOSITORY_URL%/}
		keyring=/etc/apt/keyrings/kubernetes-${minor}-mirror.gpg
		add_apt_key "${base}/core:/stable:/${minor}/deb/Release.key" "${keyring}" "${PACKAGE_REPOSITORY_KEY_FINGERPRINT:?}"
	else
		keyring=/etc/apt/keyrings/kubernetes-${minor}.gpg
		if [[ ! -s "${keyring}" ]]; then
			tmp=$(mktemp)
			retry 5 5 curl -fsSL --max-time 60 -o "${tmp}" "${base}/core:/stable:/${minor}/deb/Release.key" ||
				die "cannot download the pkgs.k8s.io ${minor} signing key on ${NODE_NAME}"
			gpg --batch --yes --dearmor -o "${keyring}" "${tmp}"
			rm -f "${tmp}"
		fi
	fi
	echo "deb [signed-by=${keyring}] ${base}/core:/stable:/${minor}/deb/ /" |
		write_if_changed /etc/apt/sources.list.d/kubernetes.list 0644 || rc=$?
	((rc != 2)) || die "cannot write /etc/apt/sources.list.d/kubernetes.list on ${NODE_NAME}"
	if ((rc == 0)); then
		k8s_repo_changed=1
		progress "package repository switched to ${base} ${minor}"
	fi
}

# upgrade_packages VERSION NAME...: each NAME installed at VERSION and held again (unhold,
# install, hold); the ones already there are left alone. Returns 0 when something was installed,
# 1 when all were already at VERSION.
upgrade_packages() {
	local version=$1 p pkg
	shift
	local need=() args=()
	for p in "$@"; do
		held_at "${p}" "${version}" || need+=("${p}")
	done
	if ((${#need[@]} == 0)); then
		progress "$* already at ${version} and held"
		return 1
	fi
	if ((k8s_repo_changed)) || ! apt_knows "${need[0]}" "${version}"; then
		apt_get update
	fi
	for p in "${need[@]}"; do
		pkg=$(package_version "${p}" "${version}") ||
			die "the package repository has no ${p} ${version}; pick a released patch version"
		args+=("${p}=${pkg}")
	done
	progress "installing ${args[*]}"
	apt-mark unhold "${need[@]}" >/dev/null
	apt_get install --allow-change-held-packages --no-install-recommends -o Dpkg::Options::=--force-confold "${args[@]}"
	apt-mark hold "${need[@]}" >/dev/null
	return 0
}
