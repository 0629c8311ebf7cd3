#!/usr/bin/env bash
# Phase join-token: a fresh bootstrap token (lifetime TOKEN_TTL) plus the CA public key hash, as JSON on
# stdout (secret, never logged). Earlier tokens of ours are deleted first, so at most one exists;
# delete-join-token deletes this one as soon as every node is Ready.
set -euo pipefail
require TOKEN_TTL TOKEN_DESCRIPTION
export KUBECONFIG=/etc/kubernetes/admin.conf
retry 10 2 kubectl get --raw=/readyz >/dev/null || die "API server not ready; check the kubeadm-init phase"

old=$(kubeadm token list 2>/dev/null | awk -v d="${TOKEN_DESCRIPTION}" 'NR > 1 && index($0, d) {print $1}')
for t in ${old}; do
	kubeadm token delete "${t}" >/dev/null 2>&1 || true
done

token=$(kubeadm token create --ttl "${TOKEN_TTL}" --description "${TOKEN_DESCRIPTION}")
[[ "${token}" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || die "kubeadm token create returned no token"
hash=$(openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
printf '{"token":"%s","caCertHash":"sha256:%s"}\n' "${token}" "${hash}"
