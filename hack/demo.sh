#!/usr/bin/env bash
# `make demo` / `make demo-down`: the local stack on an embedded control plane on 127.0.0.1.
#
#   up    start the control plane (if not running), `pulumi up` the local stack with the policy
#         pack on a local file backend, print a summary
#   down  destroy the stack, stop the control plane, remove nothing else
#
# Everything lives in .infralab/ (gitignored): state/, cluster/, passphrase, secrets/.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
work="$repo/.infralab"
stack=local

log() { printf '\n==> demo: %s\n' "$*" >&2; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

export PULUMI_BACKEND_URL="file://$work/state"
export PULUMI_CONFIG_PASSPHRASE_FILE="$work/passphrase"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true
export PATH="$repo/.tools/bin:$PATH"
export KUBECONFIG="$work/cluster/kubeconfig"
# The demo's stack config: the shipped stacks/Pulumi.local.yaml plus the demo's secrets, kept out
# of the tracked file so a demo never dirties the clone.
config_file="$work/Pulumi.$stack.yaml"

# ensure_secret_file keeps one random value per secret, generated once, readable only by you.
ensure_secret_file() {
  local f="$work/secrets/$1"
  if [ ! -s "$f" ]; then
    (umask 077 && openssl rand -base64 24 | tr -d '\n' >"$f")
  fi
}

ensure_env() {
  mkdir -p "$work/state" "$work/secrets" "$work/bin"
  chmod 700 "$work" "$work/secrets"
  if [ ! -s "$work/passphrase" ]; then
    (umask 077 && openssl rand -base64 32 >"$work/passphrase")
    log "generated the state passphrase once: $work/passphrase (keep it; it decrypts the demo's secrets)"
  fi
  command -v pulumi >/dev/null || die "pulumi not found: run 'make tools'"
  go build -o "$work/bin/infralab-env" ./cmd/infralab-env
}

ensure_control_plane() {
  log "starting the embedded control plane (etcd, kube-apiserver, kube-controller-manager on 127.0.0.1)"
  "$work/bin/infralab-env" up --dir "$work/cluster"
}

ensure_stack_config() {
  local salt=""
  [ -f "$config_file" ] && salt=$(grep '^encryptionsalt:' "$config_file" || true)
  cp stacks/Pulumi.$stack.yaml "$config_file"
  [ -z "$salt" ] || printf '%s\n' "$salt" >>"$config_file"
  pulumi stack select --create "$stack" --config-file "$config_file" >/dev/null
  local key
  for key in postgresPassword apiDbPassword exporterDbPassword; do
    ensure_secret_file "$key"
    pulumi config set --secret --config-file "$config_file" "$key" <"$work/secrets/$key"
  done
}

up() {
  ensure_env
  ensure_control_plane
  ensure_stack_config
  log "pulumi up -s $stack --policy-pack policy (builds the program and the policy pack, then applies)"
  local out="$work/last-up.txt" rc=0
  pulumi up -s "$stack" --config-file "$config_file" --policy-pack policy --yes --skip-preview \
    --non-interactive 2>&1 | tee "$out" || rc=$?
  summary "$out" "$rc"
  return "$rc"
}

summary() {
  local out=$1 rc=$2
  log "summary"
  if [ "$rc" -ne 0 ]; then
    echo "pulumi up FAILED (exit $rc); the full output is in $out"
  fi
  echo "Resources:      $(grep -E '^ +[0-9]+ (created|unchanged|updated|deleted)' "$out" | tr -s ' ' | paste -sd, - || echo 'see output')"
  echo "Policy pack:    $(grep -qE 'mandatory|advisory' "$out" && grep -cE '(mandatory|advisory)' "$out" | sed 's/$/ violation line(s), see output/' || echo 'no violations')"
  echo "Pod Security:   namespaces enforce=restricted:"
  kubectl get namespaces -l pod-security.kubernetes.io/enforce=restricted --no-headers -o custom-columns=NAME:.metadata.name 2>/dev/null | sed 's/^/                  /'
  local failed
  failed=$(kubectl get events -A --field-selector reason=FailedCreate --no-headers 2>/dev/null | wc -l)
  echo "                pods created by controllers: $(kubectl get pods -A --no-headers 2>/dev/null | wc -l), FailedCreate events: $failed"
  echo "                (pods stay Pending: the embedded control plane has no kubelet)"
  echo "Kubeconfig:     export KUBECONFIG=$KUBECONFIG"
  echo "State:          $PULUMI_BACKEND_URL (passphrase in $PULUMI_CONFIG_PASSPHRASE_FILE)"
  echo "Next:           kubectl get all -A; make demo-down to remove it"
}

down() {
  if [ -f "$config_file" ] && [ -s "$work/passphrase" ] && command -v pulumi >/dev/null; then
    if [ -x "$work/bin/infralab-env" ] && "$work/bin/infralab-env" status --dir "$work/cluster" >/dev/null 2>&1; then
      log "pulumi destroy -s $stack"
      pulumi destroy -s "$stack" --config-file "$config_file" --yes --skip-preview --non-interactive
    fi
  fi
  if [ -x "$work/bin/infralab-env" ]; then
    log "stopping the embedded control plane"
    "$work/bin/infralab-env" down --dir "$work/cluster"
  fi
  log "done; state, passphrase and secrets stay in $work (rm -rf it to start from scratch)"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
