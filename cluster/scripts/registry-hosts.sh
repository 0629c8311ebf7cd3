#!/usr/bin/env bash
# Helpers for prepare-node when the stack sets kubernetes.imageRepository (cluster/imagerepository.go).
# Prepended after lib.sh; reads IMAGE_REGISTRY_HOST (host[:port]), REGISTRY_CERTS_DIR and, when the
# registry has a CA of its own, IMAGE_REGISTRY_CA_B64.
set -euo pipefail

# registry_hosts_toml prints containerd's hosts.toml for IMAGE_REGISTRY_HOST: pulls and resolves
# go to that host over https, verified against its CA when one is given (never skip_verify).
registry_hosts_toml() {
	local url="https://${IMAGE_REGISTRY_HOST}"
	echo "# Written by infralab (prepare-node): images of kubernetes.imageRepository."
	echo "server = \"${url}\""
	echo
	echo "[host.\"${url}\"]"
	echo "  capabilities = [\"pull\", \"resolve\"]"
	if [[ -n "${IMAGE_REGISTRY_CA_B64:-}" ]]; then
		echo "  ca = \"${REGISTRY_CERTS_DIR}/${IMAGE_REGISTRY_HOST}/ca.crt\""
	fi
}

# ensure_registry_hosts writes the CA and hosts.toml under REGISTRY_CERTS_DIR/IMAGE_REGISTRY_HOST.
# containerd reads that folder on every pull, so no restart is needed when only these change.
ensure_registry_hosts() {
	local dir="${REGISTRY_CERTS_DIR}/${IMAGE_REGISTRY_HOST}" rc ca toml
	install -d -m 0755 "${dir}" || die "cannot create ${dir} on ${NODE_NAME}"
	if [[ -n "${IMAGE_REGISTRY_CA_B64:-}" ]]; then
		ca=$(printf '%s' "${IMAGE_REGISTRY_CA_B64}" | base64 -d) || die "IMAGE_REGISTRY_CA_B64 is not base64"
		rc=0
		printf '%s\n' "${ca}" | write_if_changed "${dir}/ca.crt" 0644 || rc=$?
		((rc != 2)) || die "cannot write ${dir}/ca.crt on ${NODE_NAME}"
	fi
	toml=$(registry_hosts_toml)
	rc=0
	printf '%s\n' "${toml}" | write_if_changed "${dir}/hosts.toml" 0644 || rc=$?
	((rc != 2)) || die "cannot write ${dir}/hosts.toml on ${NODE_NAME}"
}
