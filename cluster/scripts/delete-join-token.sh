#!/usr/bin/env bash
# Phase delete-join-token: runs once every node is Ready and deletes the workers' bootstrap
# token, so that credential exists only while joins are pending. stdin carries the token's ID
# (the public half; the secret half is never sent here). A token that is already gone (deleted by
# an earlier run or by hand, or expired and cleaned up) counts as deleted.
set -euo pipefail
export KUBECONFIG=/etc/kubernetes/admin.conf
id=$(cat)
[[ "${id}" =~ ^[a-z0-9]{6}$ ]] || die "no bootstrap token ID on stdin"
retry 10 2 kubectl get --raw=/readyz >/dev/null || die "API server not ready; check the control plane"

if out=$(kubeadm token delete "${id}" 2>&1); then
	log "join token deleted"
elif grep -q 'not found' <<<"${out}"; then
	log "join token already deleted"
else
	die "kubeadm token delete failed: ${out//${id}/<token id>}"
fi
echo "join token deleted"
