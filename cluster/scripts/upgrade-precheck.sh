#!/usr/bin/env bash
# Phase upgrade-precheck (control plane): before an upgrade to KUBERNETES_VERSION changes
# anything, checks that kubeadm can take the path (one minor or a patch, never down), that every
# kubelet stays within the supported skew, that the installed Calico supports the target minor
# (CALICO_K8S_MINORS "first last", empty when unknown), and that every node is Ready. On a cluster
# that does not exist yet, or already runs the version everywhere, it has nothing to check.
set -euo pipefail
require NODE_NAME KUBERNETES_VERSION CALICO_VERSION
export KUBECONFIG=/etc/kubernetes/admin.conf
if [[ ! -f "${KUBECONFIG}" ]]; then
	echo "no cluster on ${NODE_NAME} yet: kubeadm-init installs Kubernetes ${KUBERNETES_VERSION}"
	exit 0
fi
retry 10 3 kubectl get --raw=/readyz >/dev/null 2>&1 || die "the API server on ${NODE_NAME} is not ready; the upgrade precheck needs it (crictl ps -a, journalctl -u kubelet)"
running=$(apiserver_version)
[[ -n "${running}" ]] || die "cannot read the API server version on ${NODE_NAME} (kubectl version -o json)"
IFS=. read -r _ target_minor _ <<<"${KUBERNETES_VERSION}"

if ! why=$(upgrade_path "${running}" "${KUBERNETES_VERSION}"); then
	die "the cluster runs ${running}: ${why}. Nothing was changed."
fi
if [[ -n "${CALICO_K8S_MINORS:-}" ]]; then
	read -r lo hi <<<"${CALICO_K8S_MINORS}"
	((target_minor >= lo && target_minor <= hi)) ||
		die "Calico ${CALICO_VERSION} supports Kubernetes 1.${lo} to 1.${hi}, not ${KUBERNETES_VERSION}: upgrade Calico first (kubernetes.calicoVersion). Nothing was changed."
else
	log "no Kubernetes support range known for Calico ${CALICO_VERSION}; check its requirements page before upgrading"
fi

# Skew (kubernetes.io/releases/version-skew-policy): a kubelet may be up to three minors older
# than the API server and never newer. Checked against the target, since the API server moves
# first.
problems=()
nodes=$(kubectl get nodes -o 'jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.nodeInfo.kubeletVersion}{"\t"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}') ||
	die "cannot list the nodes"
while IFS=$'\t' read -r name version ready; do
	[[ -n "${name}" ]] || continue
	IFS=. read -r _ m _ <<<"${version#v}"
	((m >= target_minor - 3)) || problems+=("${name}'s kubelet ${version} is more than three minors older than ${KUBERNETES_VERSION}")
	((m <= target_minor)) || problems+=("${name}'s kubelet ${version} is newer than ${KUBERNETES_VERSION}")
	[[ "${ready}" == True ]] || problems+=("${name} is not Ready (kubectl describe node ${name})")
	log "${name}: kubelet ${version}, Ready=${ready}"
done <<<"${nodes}"
((${#problems[@]} == 0)) || die "not upgrading to ${KUBERNETES_VERSION}: $(printf '%s; ' "${problems[@]}")nothing was changed"

if [[ "${running}" == "${KUBERNETES_VERSION}" ]]; then
	echo "control plane runs ${KUBERNETES_VERSION}; the workers' phases finish what is left"
else
	echo "upgrade ${running} -> ${KUBERNETES_VERSION}: checks passed"
fi
