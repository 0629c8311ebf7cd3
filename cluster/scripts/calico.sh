#!/usr/bin/env bash
# Phase calico: the pinned operator-crds.yaml and tigera-operator.yaml of CALICO_VERSION (each
# checked against its sha256 when one is given) from CALICO_MANIFEST_BASE_URL
# (<base>/<version>/manifests/<file>: raw.githubusercontent.com in the lab, a mirror such as the
# box's), then the generated Installation with our pod CIDR. With CALICO_IMAGE_REGISTRY set (the
# stack's image repository), the operator Deployment runs <registry>/tigera/operator:<tag>, as
# the Installation's spec.registry makes every Calico image come from there. Server-side apply
# is idempotent, so a re-run converges instead of failing on existing objects.
#
# Order matters since Calico v3.30: tigera-operator.yaml holds no CRDs (the operator creates them
# itself, -manage-crds=true, but only once its pod runs), so waiting for the Installation CRD
# right after applying it fails at once with NotFound. operator-crds.yaml is applied first; the
# operator's own bootstrap then finds them present (it only creates missing ones).
set -euo pipefail
require CALICO_VERSION CALICO_MANIFEST_BASE_URL STATE_DIR INSTALLATION_B64
export KUBECONFIG=/etc/kubernetes/admin.conf
umask 022
retry 10 2 kubectl get --raw=/readyz >/dev/null || die "API server not ready; check the kubeadm-init phase"

# calico_manifest NAME SHA_VAR: prints the path of manifests/NAME of CALICO_VERSION, downloaded
# once into STATE_DIR and checked against the sha256 in SHA_VAR (when set) on every run. The
# file keeps the downloaded bytes, so the check holds on every run, whatever is derived from it.
calico_manifest() {
	local name=$1 sha_var=$2 file tmp have
	file="${STATE_DIR}/calico-${CALICO_VERSION}-${name}"
	if [[ ! -s "${file}" ]]; then
		log "downloading ${name} of Calico ${CALICO_VERSION}"
		tmp=$(mktemp "${file}.XXXXXX")
		if ! retry 5 5 curl -fsSL --max-time 120 -o "${tmp}" \
			"${CALICO_MANIFEST_BASE_URL}/${CALICO_VERSION}/manifests/${name}"; then
			rm -f "${tmp}"
			die "cannot download ${name} of Calico ${CALICO_VERSION} from ${CALICO_MANIFEST_BASE_URL}/${CALICO_VERSION}/manifests/; check the version, kubernetes.calicoManifestBaseUrl and the node's access to that host"
		fi
		mv -f "${tmp}" "${file}"
	fi
	if [[ -n "${!sha_var:-}" ]]; then
		have=$(sha256sum "${file}" | cut -d' ' -f1)
		if [[ "${have}" != "${!sha_var}" ]]; then
			rm -f "${file}"
			die "${name} of Calico ${CALICO_VERSION} has sha256 ${have}, which does not match ${sha_var} ${!sha_var}; check calicoVersion and the pinned sha256 (the file was removed, the next run downloads it again)"
		fi
	else
		log "no ${sha_var} configured; ${name} pinned by version only (sha256 $(sha256sum "${file}" | cut -d' ' -f1))"
	fi
	printf '%s\n' "${file}"
}

crds=$(calico_manifest operator-crds.yaml CALICO_CRDS_SHA256)
operator=$(calico_manifest tigera-operator.yaml CALICO_MANIFEST_SHA256)

# The operator's image from the image repository: exactly one line of the verified manifest
# changes (its one container, quay.io/tigera/operator:<tag>), into a file of its own rewritten
# on every run, so the pinned download stays as it was checked. A manifest with any other
# operator image fails here rather than running upstream's image behind the registry's back.
if [[ -n "${CALICO_IMAGE_REGISTRY:-}" ]]; then
	pattern='^( +image: )quay\.io/(tigera/operator:[^[:space:]]+)$'
	if [[ "$(grep -cE "${pattern}" "${operator}")" != 1 ]] || [[ "$(grep -cE '^ +image: ' "${operator}")" != 1 ]]; then
		die "tigera-operator.yaml of Calico ${CALICO_VERSION} has not exactly one quay.io/tigera/operator image; cannot point it at ${CALICO_IMAGE_REGISTRY}"
	fi
	local_operator="${STATE_DIR}/calico-${CALICO_VERSION}-tigera-operator.local.yaml"
	sed -E "s#${pattern}#\1${CALICO_IMAGE_REGISTRY}/\2#" "${operator}" >"${local_operator}.tmp"
	mv -f "${local_operator}.tmp" "${local_operator}"
	operator=${local_operator}
fi
# A file, not a pipe into `retry ... -f -`: the first attempt would consume stdin and every retry
# would apply nothing.
installation="${STATE_DIR}/calico-installation.yaml"
write_b64_if_changed INSTALLATION_B64 "${installation}" 0644 || [[ $? -eq 1 ]]

# The operator needs host access. The manifest labels its namespace privileged itself; labelling
# it first as well keeps Pod Security (restricted by default) from rejecting the operator's pod
# should a release ever ship the namespace without that label.
kubectl create namespace tigera-operator --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace tigera-operator --overwrite pod-security.kubernetes.io/enforce=privileged >/dev/null

# Server-side: the CRDs are larger than the 256 KiB last-applied annotation client-side apply needs.
log "applying the Calico ${CALICO_VERSION} CRDs"
retry 5 5 kubectl apply --server-side --force-conflicts -f "${crds}" >/dev/null
retry 5 5 kubectl wait --for=condition=Established --timeout=120s \
	crd/installations.operator.tigera.io crd/apiservers.operator.tigera.io >/dev/null
log "applying tigera-operator ${CALICO_VERSION}"
retry 5 5 kubectl apply --server-side --force-conflicts -f "${operator}" >/dev/null
log "applying the Installation"
retry 5 5 kubectl apply --server-side --force-conflicts -f "${installation}" >/dev/null

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
