#!/usr/bin/env bash
# Phase upgrade-drain (runs on the control plane, for worker NODE_NAME): before the worker is
# upgraded to KUBERNETES_VERSION, cordons and drains it. kubectl drain evicts through the Eviction
# API, so PodDisruptionBudgets hold: an eviction a budget forbids is retried until DRAIN_TIMEOUT.
# The node is annotated first, so upgrade-uncordon makes schedulable again only what this drained.
# Nothing to do for a node that is not in the cluster yet or already runs the version.
set -euo pipefail
require NODE_NAME KUBERNETES_VERSION DRAIN_TIMEOUT
export KUBECONFIG=/etc/kubernetes/admin.conf
annotation=infralab.dev/upgrade-drained
if [[ ! -f "${KUBECONFIG}" ]]; then
	echo "no cluster yet: nothing to drain"
	exit 0
fi
have=$(node_kubelet_version "${NODE_NAME}")
if [[ -z "${have}" ]]; then
	echo "${NODE_NAME} has not joined yet: join-worker installs ${KUBERNETES_VERSION}"
	exit 0
fi
if [[ "${have}" == "${KUBERNETES_VERSION}" ]]; then
	echo "${NODE_NAME} already runs ${KUBERNETES_VERSION}: no drain"
	exit 0
fi
if ! why=$(upgrade_path "${have}" "${KUBERNETES_VERSION}"); then
	die "${NODE_NAME} runs ${have}: ${why}"
fi
kubectl annotate --overwrite node "${NODE_NAME}" "${annotation}=${KUBERNETES_VERSION}" >/dev/null ||
	die "cannot annotate node ${NODE_NAME}"
progress "draining for the upgrade ${have} -> ${KUBERNETES_VERSION} (PodDisruptionBudgets respected, up to ${DRAIN_TIMEOUT}s)"
if ! kubectl drain "${NODE_NAME}" --ignore-daemonsets --delete-emptydir-data --timeout="${DRAIN_TIMEOUT}s" >&2; then
	die "drain of ${NODE_NAME} did not finish within ${DRAIN_TIMEOUT}s (a PodDisruptionBudget that allows no eviction? kubectl get pdb -A). ${NODE_NAME} stays cordoned, the cluster is otherwise unchanged; fix the cause and pulumi up again to resume, or kubectl uncordon ${NODE_NAME} to back out (docs/runbooks/upgrade-kubernetes.md)"
fi
progress "drained"
echo "${NODE_NAME} drained"
