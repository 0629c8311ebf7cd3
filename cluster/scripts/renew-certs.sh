#!/usr/bin/env bash
# infralab-renew-certs (installed on the control plane by the cert-renewal phase, run by it and by
# the daily infralab-cert-renewal.timer): when any leaf certificate kubeadm manages expires within
# CERT_RENEW_DAYS days, `kubeadm certs renew all`, then the static pods that read them are
# restarted the way kubeadm documents it (each manifest moved out of /etc/kubernetes/manifests
# until the kubelet has stopped the pod, then moved back). Prints the earliest expiry (RFC 3339).
#
# kubeadm v1.35 (cmd/kubeadm/app/cmd/certs.go): check-expiration lists admin.conf,
# super-admin.conf, controller-manager.conf, scheduler.conf and the PKI leaf certificates; renew
# all gives each a new key and a certificate valid for certificateValidityPeriod (365 days) and
# then says "You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and
# etcd". The CAs (10 years) are not renewed; the kubelet rotates its own client certificate.
# --config is the file kubeadm-init wrote, so neither call needs a working API server.
set -euo pipefail
require CERT_RENEW_DAYS STATE_DIR
umask 077
config="${STATE_DIR}/kubeadm-config.yaml"
manifests=/etc/kubernetes/manifests
# parked: manifests moved out for a restart. pending: components still to restart after a
# renewal. Both outlive a run that was cut off, so the next run finishes the restart.
parked="${STATE_DIR}/parked-manifests"
pending="${STATE_DIR}/static-pods-to-restart"
log_file=/var/log/infralab/cert-renewal.log
components=(etcd kube-apiserver kube-controller-manager kube-scheduler)
install -d -m 0700 "${STATE_DIR}" "${parked}" /var/log/infralab
[[ -s "${config}" ]] || die "no ${config}: the kubeadm-init phase must succeed first"

# The timer and the phase never renew or restart at the same time.
exec 9>>"${STATE_DIR}/cert-renewal.lock"
flock -w 900 9 || die "another certificate renewal is still running after 15 minutes (lock ${STATE_DIR}/cert-renewal.lock)"

for f in "${parked}"/*.yaml; do
	[[ -e "${f}" ]] || continue
	log "putting back ${f##*/}, parked by a renewal that was cut off"
	mv -f "${f}" "${manifests}/"
done

# check sets earliest (RFC 3339), due and external_due (names) from kubeadm's own list. residualTime
# is not used: the JSONPath printer turns that int64 into a float (3.1e+07).
check() {
	local list name missing external expires t limit
	list=$(timeout 120 kubeadm certs check-expiration --config "${config}" \
		-o 'jsonpath={range .certificates[*]}{.name}{"\t"}{.missing}{"\t"}{.externallyManaged}{"\t"}{.expirationDate}{"\n"}{end}' 2>>"${log_file}") ||
		die "kubeadm certs check-expiration failed; see ${log_file}"
	limit=$(($(date +%s) + CERT_RENEW_DAYS * 86400))
	earliest="" due=() external_due=()
	local earliest_t=0
	while IFS=$'\t' read -r name missing external expires; do
		[[ -n "${name}" ]] || continue
		if [[ "${missing}" == true ]]; then
			log "${name}: missing, skipped"
			continue
		fi
		t=$(date -d "${expires}" +%s) || die "cannot read the expiry of ${name}: ${expires}"
		if ((t < limit)); then
			if [[ "${external}" == true ]]; then external_due+=("${name}"); else due+=("${name}"); fi
		fi
		if [[ -z "${earliest}" ]] || ((t < earliest_t)); then earliest=${expires} earliest_t=${t}; fi
	done <<<"${list}"
	[[ -n "${earliest}" ]] || die "kubeadm certs check-expiration listed no certificate; see ${log_file}"
}

cri() { crictl --runtime-endpoint unix:///run/containerd/containerd.sock "$@"; }
running() { [[ -n "$(cri ps --name "^$1\$" --state running -q 2>/dev/null)" ]]; }
stopped() { ! running "$1"; }
api_ready() { kubectl --kubeconfig /etc/kubernetes/admin.conf get --raw=/readyz >/dev/null 2>&1; }
# poll N CMD...: CMD succeeds within N tries, 2 s apart.
poll() {
	local n=$1 i
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 2
	done
	return 1
}

# restart C: the kubelet stops a static pod whose manifest is gone (it looks every 20 s,
# fileCheckFrequency) and starts it again when the manifest is back.
restart() {
	local c=$1
	if [[ ! -f "${manifests}/${c}.yaml" ]]; then
		log "${c}: no static pod manifest here, nothing to restart"
		return 0
	fi
	log "restarting ${c} to load its new certificates"
	mv -f "${manifests}/${c}.yaml" "${parked}/${c}.yaml"
	if ! poll 60 stopped "${c}"; then
		mv -f "${parked}/${c}.yaml" "${manifests}/"
		die "the kubelet did not stop ${c} within 120 s of its manifest being moved away; the manifest is back. See journalctl -u kubelet; the next run restarts it again"
	fi
	mv -f "${parked}/${c}.yaml" "${manifests}/"
	poll 90 running "${c}" || die "${c} did not come back within 180 s of its manifest returning: crictl ps -a --name ${c}, crictl logs <id>, journalctl -u kubelet. The next run restarts it again"
	if [[ "${c}" == kube-apiserver ]]; then
		poll 60 api_ready || die "the API server is not ready 120 s after its restart: crictl logs of kube-apiserver. The next run restarts it again"
	fi
}

check
if ((${#external_due[@]} > 0)); then
	die "certificates signed by an external CA expire within ${CERT_RENEW_DAYS} days and kubeadm cannot renew them: ${external_due[*]}. Renew them with that CA (kubeadm certs generate-csr), then run pulumi up"
fi
if ((${#due[@]} > 0)); then
	log "certificates expiring within ${CERT_RENEW_DAYS} days: ${due[*]}; renewing all (log: ${log_file})"
	if ! timeout 300 kubeadm certs renew all --config "${config}" >>"${log_file}" 2>&1; then
		tail -n 20 "${log_file}" >&2 || true
		die "kubeadm certs renew all failed; full log in ${log_file}"
	fi
	printf '%s\n' "${components[@]}" >"${pending}"
fi
if [[ -s "${pending}" ]]; then
	while read -r c; do
		[[ -n "${c}" ]] || continue
		restart "${c}"
		# Done with c: the rest stays pending for a run that is cut off.
		sed -i "/^${c}\$/d" "${pending}"
	done < <(cat "${pending}")
	rm -f "${pending}"
	log "control plane restarted with the renewed certificates"
	check
	((${#due[@]} == 0)) || die "after renewing, these still expire within ${CERT_RENEW_DAYS} days: ${due[*]}. Is the ClusterConfiguration's certificateValidityPeriod shorter than certRenewDays?"
fi
echo "${earliest}"
