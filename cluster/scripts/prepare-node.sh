#!/usr/bin/env bash
# Phase prepare-node: kernel modules and sysctls, swap off, containerd with the systemd cgroup
# driver, and kubeadm/kubelet/kubectl pinned from pkgs.k8s.io and held. Every step checks its
# own result first, so a re-run on a prepared node changes nothing.
set -euo pipefail
require NODE_NAME KUBERNETES_VERSION
[[ "${KUBERNETES_VERSION}" =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "KUBERNETES_VERSION must be x.y.z, got ${KUBERNETES_VERSION}"
minor="v${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

refuse_version_change

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
for p in ca-certificates curl gpg containerd; do
	dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q 'install ok installed' || need+=("${p}")
done
if ((${#need[@]} > 0)); then
	log "${NODE_NAME}: installing ${need[*]}"
	apt_get update
	apt_get install --no-install-recommends "${need[@]}"
fi

log "${NODE_NAME}: containerd with the systemd cgroup driver"
mkdir -p /etc/containerd
config=$(containerd config default | sed -E 's/SystemdCgroup = false/SystemdCgroup = true/')
grep -q 'SystemdCgroup = true' <<<"${config}" || die "containerd's default config has no SystemdCgroup option; unsupported containerd $(containerd --version)"
rc=0
printf '%s\n' "${config}" | write_if_changed /etc/containerd/config.toml 0644 || rc=$?
((rc != 2)) || die "cannot write /etc/containerd/config.toml on ${NODE_NAME}"
if ((rc == 0)); then
	systemctl restart containerd
fi
systemctl enable --now containerd >/dev/null 2>&1
retry 10 1 test -S /run/containerd/containerd.sock

log "${NODE_NAME}: pkgs.k8s.io ${minor} repository"
install -d -m 0755 /etc/apt/keyrings
keyring=/etc/apt/keyrings/kubernetes-${minor}.gpg
if [[ ! -s "${keyring}" ]]; then
	tmp=$(mktemp)
	retry 5 5 curl -fsSL --max-time 60 -o "${tmp}" "https://pkgs.k8s.io/core:/stable:/${minor}/deb/Release.key"
	gpg --batch --yes --dearmor -o "${keyring}" "${tmp}"
	rm -f "${tmp}"
fi
rc=0
echo "deb [signed-by=${keyring}] https://pkgs.k8s.io/core:/stable:/${minor}/deb/ /" |
	write_if_changed /etc/apt/sources.list.d/kubernetes.list 0644 || rc=$?
((rc != 2)) || die "cannot write /etc/apt/sources.list.d/kubernetes.list on ${NODE_NAME}"
repo_changed=$((rc == 0 ? 1 : 0))

if k8s_packages_ready; then
	log "${NODE_NAME}: kubelet/kubeadm/kubectl ${KUBERNETES_VERSION} already installed and held"
else
	if ((repo_changed)) || ! apt-cache policy kubeadm 2>/dev/null | grep -q "${KUBERNETES_VERSION}-"; then
		apt_get update
	fi
	pkg=$(apt-cache madison kubeadm | awk -v v="${KUBERNETES_VERSION}-" 'index($3, v) == 1 {print $3; exit}')
	[[ -n "${pkg}" ]] || die "pkgs.k8s.io ${minor} has no kubeadm ${KUBERNETES_VERSION}; pick a released patch version"
	log "${NODE_NAME}: installing kubelet kubeadm kubectl ${pkg}"
	apt_get install --allow-change-held-packages --no-install-recommends \
		"kubelet=${pkg}" "kubeadm=${pkg}" "kubectl=${pkg}"
	apt-mark hold kubelet kubeadm kubectl >/dev/null
fi
systemctl enable kubelet >/dev/null 2>&1
echo "${NODE_NAME} prepared for Kubernetes ${KUBERNETES_VERSION}"
