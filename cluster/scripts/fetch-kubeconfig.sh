#!/usr/bin/env bash
# Phase fetch-kubeconfig: prints admin.conf sealed (seal.sh) to the keys on stdin, and nothing
# else: stdout and stderr end up in the provider's error text if anything fails, so the admin key
# never travels in the clear. The program opens it and keeps it a Pulumi secret.
set -euo pipefail
require STATE_DIR
read_seal_keys
[[ -f "${STATE_DIR}/init-done" && -s /etc/kubernetes/admin.conf ]] ||
	die "no initialised control plane here: the kubeadm-init phase must succeed first"
seal </etc/kubernetes/admin.conf || die "could not seal /etc/kubernetes/admin.conf (openssl enc failed on the control plane)"
