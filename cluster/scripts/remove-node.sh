#!/usr/bin/env bash
# Phase remove-node (control plane), one command per worker. Its create (ACTION=register) only
# registers the worker; its Delete (ACTION=delete), which pulumi-command runs when the worker
# leaves the stack or the stack is destroyed, drains TARGET_NODE and deletes its Node object with
# admin.conf. A Node that is already gone counts as removed, so a retried delete converges.
set -euo pipefail
require ACTION TARGET_NODE DRAIN_TIMEOUT
export KUBECONFIG=/etc/kubernetes/admin.conf

case "${ACTION}" in
register)
	echo "${TARGET_NODE}: drained and deleted from the cluster when it leaves the stack"
	exit 0
	;;
delete) ;;
*) die "unknown ACTION ${ACTION}" ;;
esac

stuck="Fix that and run pulumi up again, or remove the Node without draining it (kubectl delete node ${TARGET_NODE} on the control plane) and run pulumi up: this step then finds it gone"
[[ -s "${KUBECONFIG}" ]] || die "no ${KUBECONFIG} on this control plane, so ${TARGET_NODE} cannot be drained. If the cluster is gone, drop this command from the state: pulumi state delete <URN of this remove-node command>"
retry 5 2 kubectl get --raw=/readyz >/dev/null || die "the API server is not ready, so ${TARGET_NODE} cannot be drained. ${stuck}"

if ! out=$(kubectl get node "${TARGET_NODE}" -o name 2>&1); then
	if grep -q NotFound <<<"${out}"; then
		log "${TARGET_NODE}: its Node is already gone"
		echo "${TARGET_NODE} removed"
		exit 0
	fi
	die "kubectl get node ${TARGET_NODE} failed: ${out}"
fi

# --force: pods without a controller would block the drain, and the VM is going away anyway.
# --skip-wait-for-delete-timeout: pods on a node that is already dead never finish terminating;
# past their grace period plus 30 s they are not waited for (the Node's deletion lets the pod
# garbage collector remove them).
log "${TARGET_NODE}: draining (at most ${DRAIN_TIMEOUT}s)"
if ! kubectl drain "${TARGET_NODE}" --ignore-daemonsets --delete-emptydir-data --force \
	--skip-wait-for-delete-timeout=30 --timeout="${DRAIN_TIMEOUT}s" >&2; then
	die "draining ${TARGET_NODE} did not finish within ${DRAIN_TIMEOUT}s; it stays cordoned. A PodDisruptionBudget may block it (PostgreSQL's, minAvailable 1, while the database runs there: move it first, docs/runbooks/replace-a-node.md). ${stuck}"
fi
kubectl delete node "${TARGET_NODE}" --ignore-not-found >&2 || die "kubectl delete node ${TARGET_NODE} failed. ${stuck}"
log "${TARGET_NODE}: drained and deleted"
echo "${TARGET_NODE} removed"
