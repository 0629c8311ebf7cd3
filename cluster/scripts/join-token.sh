#!/usr/bin/env bash
# Phase join-token: a fresh bootstrap token (lifetime TOKEN_TTL) plus the CA public key hash, as JSON,
# sealed (seal.sh) to the keys on stdin: stdout is the only thing printed and it never holds the
# token in the clear, since the provider's error text repeats it. Earlier tokens of ours are
# deleted first, so at most one exists; delete-join-token deletes this one as soon as every node
# is Ready.
set -euo pipefail
require TOKEN_TTL TOKEN_DESCRIPTION
read_seal_keys
export KUBECONFIG=/etc/kubernetes/admin.conf
retry 10 2 kubectl get --raw=/readyz >/dev/null || die "API server not ready; check the kubeadm-init phase"

# The listing holds whole tokens, so neither it nor kubeadm's messages are ever printed; errors
# name only a token's public ID.
listing=$(kubeadm token list 2>&1) || die "kubeadm token list failed on the control plane (output not shown: it holds tokens); run it there to see why"
old=$(awk -v d="${TOKEN_DESCRIPTION}" 'NR > 1 && index($0, d) {print $1}' <<<"${listing}")
for t in ${old}; do
	if ! out=$(kubeadm token delete "${t}" 2>&1) && ! grep -q 'not found' <<<"${out}"; then
		die "could not delete the earlier infralab join token ${t%%.*}; delete it with kubeadm token delete ${t%%.*} on the control plane, then run pulumi up again"
	fi
done

token=$(kubeadm token create --ttl "${TOKEN_TTL}" --description "${TOKEN_DESCRIPTION}")
[[ "${token}" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || die "kubeadm token create returned no token"
hash=$(openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1) ||
	die "cannot read the cluster CA /etc/kubernetes/pki/ca.crt on the control plane; the token just made expires by itself after ${TOKEN_TTL}"
printf '{"token":"%s","caCertHash":"sha256:%s"}' "${token}" "${hash}" | seal ||
	die "could not seal the join token (openssl enc failed on the control plane); the token expires by itself after ${TOKEN_TTL}"
