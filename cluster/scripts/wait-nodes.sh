#!/usr/bin/env bash
# Phase wait-nodes-ready: every expected node registered and Ready, or a timeout naming the
# nodes that are not.
set -euo pipefail
require EXPECTED_NODES NODE_READY_TIMEOUT
export KUBECONFIG=/etc/kubernetes/admin.conf

not_ready() {
	local status n s missing=()
	status=$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"="}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null) || {
		echo "(API server unreachable)"
		return
	}
	for n in ${EXPECTED_NODES}; do
		s=$(awk -F= -v n="${n}" '$1 == n {print $2}' <<<"${status}")
		case "${s}" in
		True) ;;
		"") missing+=("${n} (not registered)") ;;
		*) missing+=("${n} (Ready=${s})") ;;
		esac
	done
	((${#missing[@]} == 0)) || printf '%s\n' "${missing[@]}"
}

deadline=$((SECONDS + NODE_READY_TIMEOUT))
next_report=0
while :; do
	pending=$(not_ready)
	[[ -z "${pending}" ]] && break
	if ((SECONDS >= deadline)); then
		die "nodes not Ready after ${NODE_READY_TIMEOUT}s: $(paste -sd, <<<"${pending}"). On each: journalctl -u kubelet; kubectl describe node NAME"
	fi
	if ((SECONDS >= next_report)); then
		log "waiting for: $(paste -sd, <<<"${pending}")"
		next_report=$((SECONDS + 30))
	fi
	sleep 5
done
log "all nodes Ready: ${EXPECTED_NODES}"
echo "${EXPECTED_NODES}"
