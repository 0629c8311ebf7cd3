#!/usr/bin/env bash
# Phase cert-renewal (control plane): installs infralab-renew-certs (RENEW_SCRIPT_B64, which is
# renew-certs.sh) and the daily systemd timer that runs it, then runs it once now. It renews
# kubeadm's leaf certificates once any expires within CERT_RENEW_DAYS days, so the cluster keeps
# running between `pulumi up`s. stdout: the earliest expiry after this run (RFC 3339).
set -euo pipefail
require CERT_RENEW_DAYS STATE_DIR RENEW_SCRIPT_B64
bin=/usr/local/sbin/infralab-renew-certs
units=/etc/systemd/system
unit=infralab-cert-renewal
install -d -m 0755 /usr/local/sbin "${units}"

changed=0
# install_file PATH MODE CONTENT: writes CONTENT (plus a newline) to PATH when it differs.
install_file() {
	local rc=0
	printf '%s\n' "$3" | write_if_changed "$1" "$2" || rc=$?
	case "${rc}" in
	0) changed=1 ;;
	1) ;;
	*) die "cannot write $1" ;;
	esac
}

# Decoded into a variable first: a failed decode stops here instead of writing half a script.
renew_script=$(base64 -d <<<"${RENEW_SCRIPT_B64}") || die "RENEW_SCRIPT_B64 is not base64 (a bug in the caller)"
install_file "${bin}" 0700 "${renew_script}"
install_file "${units}/${unit}.service" 0644 "[Unit]
Description=infralab: renew kubeadm certificates expiring within ${CERT_RENEW_DAYS} days
Documentation=https://github.com/infralab/infralab/blob/main/docs/runbooks/renew-certificates.md
After=kubelet.service containerd.service

[Service]
Type=oneshot
Environment=PHASE=cert-renewal-timer CERT_RENEW_DAYS=${CERT_RENEW_DAYS} STATE_DIR=${STATE_DIR} HOME=/root
ExecStart=${bin}"
install_file "${units}/${unit}.timer" 0644 "[Unit]
Description=infralab: daily check of the kubeadm certificates

[Timer]
OnCalendar=daily
RandomizedDelaySec=1h
# A check missed while the machine was off runs at the next boot.
Persistent=true

[Install]
WantedBy=timers.target"
if ((changed)); then
	systemctl daemon-reload
fi
# Idempotent: enabling an enabled timer and starting a running one change nothing.
systemctl enable --now "${unit}.timer" >&2 || die "systemctl enable --now ${unit}.timer failed; see journalctl -u ${unit}.timer"

CERT_RENEW_DAYS=${CERT_RENEW_DAYS} STATE_DIR=${STATE_DIR} "${bin}"
