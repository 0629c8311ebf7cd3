#!/usr/bin/env bash
# Phase fetch-kubeconfig: prints admin.conf. The command marks stdout secret and logs nothing.
set -euo pipefail
require STATE_DIR
[[ -f "${STATE_DIR}/init-done" && -s /etc/kubernetes/admin.conf ]] ||
	die "no initialised control plane here: the kubeadm-init phase must succeed first"
cat /etc/kubernetes/admin.conf
