#!/usr/bin/env bash
# Phase node-versions (control plane, once every node is Ready): prints the version the API
# server runs and each expected node's kubelet version, as JSON, for the state
# (Kubeadm.KubernetesVersion, Kubeadm.NodeVersions).
set -euo pipefail
require EXPECTED_NODES KUBERNETES_VERSION
export KUBECONFIG=/etc/kubernetes/admin.conf
api=$(kubectl version -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"v\([0-9.]*\)".*/\1/p' | tail -n1) || api=""
[[ -n "${api}" ]] || die "cannot read the API server version (kubectl version -o json)"
out="{\"apiServer\":\"${api}\",\"nodes\":{"
sep=""
for n in ${EXPECTED_NODES}; do
	v=$(kubectl get node "${n}" -o 'jsonpath={.status.nodeInfo.kubeletVersion}' 2>/dev/null) || v=""
	[[ "${v}" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "node ${n} reports no kubelet version"
	[[ "${v}" == "v${KUBERNETES_VERSION}" ]] || log "${n} runs ${v}, not v${KUBERNETES_VERSION}"
	out+="${sep}\"${n}\":\"${v#v}\""
	sep=","
done
echo "${out}}}"
