#!/usr/bin/env bash
# Phase upgrade-uncordon (runs on the control plane, for worker NODE_NAME, after upgrade-node):
# waits until the worker is Ready at KUBERNETES_VERSION, then uncordons it if upgrade-drain
# cordoned it (its annotation), so the next worker's drain starts only with this one serving.
set -euo pipefail
require NODE_NAME KUBERNETES_VERSION NODE_READY_TIMEOUT
export KUBECONFIG=/etc/kubernetes/admin.conf
annotation=infralab.dev/upgrade-drained
if [[ ! -f "${KUBECONFIG}" ]] || [[ -z "$(node_kubelet_version "${NODE_NAME}")" ]]; then
	echo "${NODE_NAME} has not joined yet: nothing to uncordon"
	exit 0
fi
deadline=$((SECONDS + NODE_READY_TIMEOUT))
until node_ready "${NODE_NAME}" && [[ "$(node_kubelet_version "${NODE_NAME}")" == "${KUBERNETES_VERSION}" ]]; do
	((SECONDS < deadline)) || die "${NODE_NAME} is not Ready at ${KUBERNETES_VERSION} after ${NODE_READY_TIMEOUT}s (it runs $(node_kubelet_version "${NODE_NAME}")); it stays cordoned. See journalctl -u kubelet on ${NODE_NAME}, then pulumi up again"
	sleep 5
done
if [[ -n "$(kubectl get node "${NODE_NAME}" -o "jsonpath={.metadata.annotations.infralab\.dev/upgrade-drained}")" ]]; then
	kubectl uncordon "${NODE_NAME}" >&2 || die "kubectl uncordon ${NODE_NAME} failed"
	kubectl annotate node "${NODE_NAME}" "${annotation}-" >/dev/null || die "cannot remove ${annotation} from ${NODE_NAME}"
	progress "uncordoned"
fi
progress "Ready at ${KUBERNETES_VERSION}"
echo "${NODE_NAME} Ready at ${KUBERNETES_VERSION}"
