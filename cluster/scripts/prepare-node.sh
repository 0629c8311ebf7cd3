#!/usr/bin/env bash
# Phase prepare-node: kernel modules and sysctls, swap off, containerd CONTAINERD_VERSION from
# Docker's containerd.io packages with the systemd cgroup driver and kubeadm's sandbox image, and
# kubeadm/kubelet/kubectl pinned from pkgs.k8s.io; packages held. Every step checks its own result
# first, so a re-run on a prepared node changes nothing. It runs detached from the SSH session
# (detach_phase): a dropped connection no longer kills apt half-way.
set -euo pipefail
require NODE_NAME KUBERNETES_VERSION CONTAINERD_VERSION SANDBOX_IMAGE
[[ "${KUBERNETES_VERSION}" =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "KUBERNETES_VERSION must be x.y.z, got ${KUBERNETES_VERSION}"
minor="v${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
[[ "${CONTAINERD_VERSION}" =~ ^2\.[0-9]+\.[0-9]+$ ]] || die "CONTAINERD_VERSION must be 2.y.z, got ${CONTAINERD_VERSION}"

detach_phase no-stdin

# PACKAGE_REPOSITORY_URL (kubernetes.packageRepository) replaces both upstreams with one mirror in
# their URL layouts, signed by the key PACKAGE_REPOSITORY_KEY_FINGERPRINT pins; unset = upstream.
k8s_base=https://pkgs.k8s.io
docker_base=https://download.docker.com
# "Docker Release (CE deb)", as Docker's install docs give it (docker/docs engine/install/debian.md).
docker_key_fingerprint=9DC858229FC7DD38854AE2D88D81803C0EBFCD88
mirror_fingerprint=""
if [[ -n "${PACKAGE_REPOSITORY_URL:-}" ]]; then
	[[ "${PACKAGE_REPOSITORY_KEY_FINGERPRINT:-}" =~ ^[0-9A-F]{40}$ ]] || die "PACKAGE_REPOSITORY_KEY_FINGERPRINT must be 40 upper-case hex digits"
	k8s_base=${PACKAGE_REPOSITORY_URL%/}
	docker_base=${k8s_base}
	docker_key_fingerprint=${PACKAGE_REPOSITORY_KEY_FINGERPRINT}
	mirror_fingerprint=${PACKAGE_REPOSITORY_KEY_FINGERPRINT}
fi

# Supported images (docs/cluster.md): the ones Docker publishes containerd.io for and this
# project tests against. Anything else stops here, before any change.
os_id=$(. /etc/os-release && echo "${ID:-}")
os_version=$(. /etc/os-release && echo "${VERSION_ID:-}")
os_codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
case "${os_id} ${os_version}" in
"debian 12" | "debian 13" | "ubuntu 24.04") ;;
*) die "${NODE_NAME} runs ${os_id:-an unknown OS} ${os_version}; supported images are Debian 12, Debian 13 and Ubuntu 24.04 (docs/cluster.md)" ;;
esac

# A node of a running cluster at another version is upgraded by the upgrade phases (repository,
# packages, kubeadm upgrade), after this phase: here it keeps its packages. A path kubeadm cannot
# take (a skipped minor, a downgrade) stops here, before any change.
upgrade_pending=0
have=$(installed_k8s_version)
# shellcheck disable=SC2154 # kubelet_conf is lib.sh's
if [[ -f "${kubelet_conf}" && -n "${have}" && "${have}" != "${KUBERNETES_VERSION}" ]]; then
	why=$(upgrade_path "${have}" "${KUBERNETES_VERSION}") || die "${NODE_NAME} runs Kubernetes ${have}: ${why}. Nothing was changed."
	upgrade_pending=1
fi

# A dropped session used to kill dpkg half-way; every apt-get after that fails with "dpkg was
# interrupted". Finish what it left before any apt work.
repair_dpkg

log "${NODE_NAME}: kernel modules"
printf '%s\n' overlay br_netfilter | write_if_changed /etc/modules-load.d/infralab-k8s.conf 0644 || [[ $? -eq 1 ]]
for m in overlay br_netfilter; do
	modprobe "${m}" || die "cannot load kernel module ${m}"
done

# The last six values are what kubelet's protectKernelDefaults insists on; with any other value
# the kubelet refuses to start instead of silently changing them.
log "${NODE_NAME}: sysctls"
write_if_changed /etc/sysctl.d/90-infralab-k8s.conf 0644 <<'CONF' || [[ $? -eq 1 ]]
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward = 1
vm.overcommit_memory = 1
vm.panic_on_oom = 0
kernel.panic = 10
kernel.panic_on_oops = 1
kernel.keys.root_maxkeys = 1000000
kernel.keys.root_maxbytes = 25000000
CONF
sysctl --quiet --system >/dev/null

log "${NODE_NAME}: swap off"
swapoff -a
if grep -Eq '^[^#].*[[:space:]]swap[[:space:]]' /etc/fstab; then
	sed -E -i.infralab.bak 's/^([^#].*[[:space:]]swap[[:space:]].*)$/# disabled by infralab: \1/' /etc/fstab
fi

need=()
for p in ca-certificates curl gpg; do
	dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q 'install ok installed' || need+=("${p}")
done
if ((${#need[@]} > 0)); then
	log "${NODE_NAME}: installing ${need[*]}"
	apt_get update
	apt_get install --no-install-recommends "${need[@]}"
fi
install -d -m 0755 /etc/apt/keyrings

# containerd: Debian's own package is 1.6.20 (end of life, below what Kubernetes 1.35 supports).
# Docker's repository is signed with the key whose fingerprint is pinned here; apt checks every
# package against that signature.
log "${NODE_NAME}: ${docker_base} repository (containerd.io)"
docker_keyring=/etc/apt/keyrings/docker.gpg
docker_repo_changed=0
[[ -s "${docker_keyring}" ]] || docker_repo_changed=1
add_apt_key "${docker_base}/linux/${os_id}/gpg" "${docker_keyring}" "${docker_key_fingerprint}"
rc=0
echo "deb [signed-by=${docker_keyring}] ${docker_base}/linux/${os_id} ${os_codename} stable" |
	write_if_changed /etc/apt/sources.list.d/docker.list 0644 || rc=$?
((rc != 2)) || die "cannot write /etc/apt/sources.list.d/docker.list on ${NODE_NAME}"
((rc != 0)) || docker_repo_changed=1
ensure_held_package containerd.io "${CONTAINERD_VERSION}" "${docker_repo_changed}" \
	"${docker_base} has no containerd.io ${CONTAINERD_VERSION} for ${os_id} ${os_codename}; set kubernetes.containerdVersion to one it lists"

log "${NODE_NAME}: containerd config (systemd cgroup driver, sandbox ${SANDBOX_IMAGE})"
mkdir -p /etc/containerd
# Into a variable first: a failure must stop here, not reach write_if_changed as empty input.
config=$(containerd_config "${SANDBOX_IMAGE}")
rc=0
printf '%s\n' "${config}" | write_if_changed /etc/containerd/config.toml 0644 || rc=$?
((rc != 2)) || die "cannot write /etc/containerd/config.toml on ${NODE_NAME}"
if [[ -n "${IMAGE_REGISTRY_HOST:-}" ]]; then
	log "${NODE_NAME}: containerd hosts.toml for ${IMAGE_REGISTRY_HOST} (kubernetes.imageRepository)"
	ensure_registry_hosts
fi
if ((rc == 0)); then
	systemctl restart containerd
fi
systemctl enable --now containerd >/dev/null 2>&1
retry 10 1 test -S /run/containerd/containerd.sock || die "containerd on ${NODE_NAME} does not listen on /run/containerd/containerd.sock; see journalctl -u containerd"

if ((upgrade_pending)); then
	systemctl enable kubelet >/dev/null 2>&1
	echo "${NODE_NAME} prepared; Kubernetes ${have} -> ${KUBERNETES_VERSION} is left to the upgrade phases (containerd ${CONTAINERD_VERSION})"
	exit 0
fi

log "${NODE_NAME}: ${k8s_base} ${minor} repository"
keyring=/etc/apt/keyrings/kubernetes-${minor}.gpg
if [[ -n "${mirror_fingerprint}" ]]; then
	# A mirror's key is pinned; its own keyring file, so going back to upstream fetches upstream's.
	keyring=/etc/apt/keyrings/kubernetes-${minor}-mirror.gpg
	add_apt_key "${k8s_base}/core:/stable:/${minor}/deb/Release.key" "${keyring}" "${mirror_fingerprint}"
elif [[ ! -s "${keyring}" ]]; then
	tmp=$(mktemp)
	retry 5 5 curl -fsSL --max-time 60 -o "${tmp}" "https://pkgs.k8s.io/core:/stable:/${minor}/deb/Release.key"
	gpg --batch --yes --dearmor -o "${keyring}" "${tmp}"
	rm -f "${tmp}"
fi
rc=0
echo "deb [signed-by=${keyring}] ${k8s_base}/core:/stable:/${minor}/deb/ /" |
	write_if_changed /etc/apt/sources.list.d/kubernetes.list 0644 || rc=$?
((rc != 2)) || die "cannot write /etc/apt/sources.list.d/kubernetes.list on ${NODE_NAME}"
repo_changed=$((rc == 0 ? 1 : 0))

if k8s_packages_ready; then
	log "${NODE_NAME}: kubelet/kubeadm/kubectl ${KUBERNETES_VERSION} already installed and held"
else
	if ((repo_changed)) || ! apt_knows kubeadm "${KUBERNETES_VERSION}"; then
		apt_get update
	fi
	pkg=$(package_version kubeadm "${KUBERNETES_VERSION}") ||
		die "${k8s_base} ${minor} has no kubeadm ${KUBERNETES_VERSION}; pick a released patch version"
	log "${NODE_NAME}: installing kubelet kubeadm kubectl ${pkg}"
	apt_get install --allow-change-held-packages --no-install-recommends \
		"kubelet=${pkg}" "kubeadm=${pkg}" "kubectl=${pkg}"
	apt-mark hold kubelet kubeadm kubectl >/dev/null
fi
systemctl enable kubelet >/dev/null 2>&1
echo "${NODE_NAME} prepared for Kubernetes ${KUBERNETES_VERSION} (containerd ${CONTAINERD_VERSION})"
