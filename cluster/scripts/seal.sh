#!/usr/bin/env bash
# Helpers for the phases whose value is a secret (fetch-kubeconfig, join-token), prepended after
# lib.sh. pulumi-command puts a failed command's whole stdout and stderr into its error text
# whatever `logging` says, so such a phase prints only a sealed copy of its value (the format is
# documented in cluster/sealed). The keys arrive on stdin and never appear in any process's
# arguments: openssl reads its password from the environment of its own process only, and the
# HMAC is computed by builtins and sha256sum reading pipes.
set -euo pipefail

# read_seal_keys reads the key line (sealed.Keys.Stdin) into seal_enc and seal_mac.
read_seal_keys() {
	local version=""
	IFS=' ' read -r version seal_enc seal_mac || true
	[[ "${version}" == infralab-seal-v1 && "${seal_enc:-}" =~ ^[0-9a-f]{64}$ && "${seal_mac:-}" =~ ^[0-9a-f]{64}$ ]] ||
		die "no sealing keys on stdin (a bug in the caller: the program sends them)"
}

# hmac_sha256 KEYHEX: HMAC-SHA256 (RFC 2104) of stdin, in hex. The key is at most one SHA-256
# block (64 bytes), so it is zero-padded, not hashed first.
hmac_sha256() {
	local key=$1 i b ipad="" opad="" inner
	for ((i = 0; i < 64; i++)); do
		b=0
		if ((i < ${#key} / 2)); then b=$((16#${key:i*2:2})); fi
		printf -v ipad '%s\\x%02x' "${ipad}" $((b ^ 0x36))
		printf -v opad '%s\\x%02x' "${opad}" $((b ^ 0x5c))
	done
	inner=$({ printf '%b' "${ipad}"; cat; } | sha256sum | cut -d' ' -f1) || return 1
	for ((i = 0; i < ${#inner}; i += 2)); do opad+="\\x${inner:i:2}"; done
	printf '%b' "${opad}" | sha256sum | cut -d' ' -f1
}

# seal: stdin sealed to the keys read_seal_keys read, as one line on stdout.
seal() {
	local blob tag
	blob=$(SEAL_PASS=${seal_enc} openssl enc -aes-256-ctr -pbkdf2 -iter 10000 -md sha256 -salt -pass env:SEAL_PASS | base64 -w0) || return 1
	tag=$(printf 'infralab-sealed-v1:%s' "${blob}" | hmac_sha256 "${seal_mac}") || return 1
	printf 'infralab-sealed-v1:%s:%s\n' "${blob}" "${tag}"
}
