#!/usr/bin/env bash
# Phase calico: the pinned tigera-operator manifest (verified against its sha256 when one is
# configured), then the generated Installation with our pod CIDR. Server-side apply is
# idempotent, so a re-run converges instead of failing on existing objects.
set -euo pipefail
require CALICO_VERSION STATE_DIR INSTALLATION_B64
export KUBECONFIG=/etc/kubernetes/admin.conf
umask 022
retry 10 2 kubectl get --raw=/readyz >/dev/null || die "API server not ready; check the kubeadm-init phase"

manifest="${STATE_DIR}/tigera-operator-${CALICO_VERSION}.yaml"
if [[ ! -s "${manifest}" ]]; then
	log "downloading tigera-operator ${CALICO_VERSION}"
	tmp=$(mktemp)
	retry 5 5 curl -fsSL --max-time 120 -o "${tmp}" \
		"https://raw.githubusercontent.com/projectcalico/calico/${CALICO_VERSION}/manifests/tigera-operator.yaml" ||
		die "cannot download tigera-operator ${CALICO_VERSION}; check the version and the node's internet access"
	mv "${tmp}" "${manifest}"
fi
if [[ -n "${CALICO_MANIFEST_SHA256:-}" ]]; then
	echo "${CALICO_MANIFEST_SHA256}  ${manifest}" | sha256sum --check --quiet ||
		{ rm -f "${manifest}"; die "tigera-operator ${CALICO_VERSION} does not match the configured sha256"; }
else
	log "no calico manifest sha256 configured; pinned by version only (sha256 $(sha256sum "${manifest}" | cut -d' ' -f1))"
fi

# The operator needs host access; label its namespace before the Pod Security default
# (restricted) can reject its pods.
kubectl create namespace tigera-operator --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace tigera-operator --overwrite pod-security.kubernetes.io/enforce=privileged >/dev/null

log "applying tigera-operator ${CALICO_VERSION}"
retry 5 5 kubectl apply --server-side --force-conflicts -f "${manifest}" >/dev/null
retry 5 5 kubectl wait --for=condition=Established --timeout=120s crd/installations.operator.tigera.io >/dev/null
base64 -d <<<"${INSTALLATION_B64}" | retry 5 5 kubectl apply --server-side --force-conflicts -f - >/dev/null

log "waiting up to 600s for Calico to become available"
deadline=$((SECONDS + 600))
until kubectl wait --for=condition=Available --timeout=30s tigerastatus/calico >/dev/null 2>&1; do
	if ((SECONDS >= deadline)); then
		kubectl get tigerastatus >&2 || true
		kubectl -n calico-system get pods -o wide >&2 || true
		die "Calico not available after 600s; see the tigerastatus and pods above"
	fi
	sleep 5
done
echo "calico ${CALICO_VERSION} available"
