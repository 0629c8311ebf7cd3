#!/usr/bin/env bash
# `make demo` / `make demo-down`: the local stack on an embedded control plane on 127.0.0.1.
#
#   up    start the control plane (if not running), `pulumi up` the local stack with the policy
#         pack on a local file backend, print a summary
#   preview  the same, but `pulumi preview --diff` only (the PR gate of stack local)
#   down  destroy the stack, stop the control plane, remove nothing else
#   stop  stop the control plane only
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
# Plugins come from PULUMI_HOME (installed by version) and the language host from next to the
# pulumi binary (make tools); nothing is looked up on PATH or downloaded.
export PULUMI_IGNORE_AMBIENT_PLUGINS=true
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

# stack_salt prints the stack's "encryptionsalt:" line. `pulumi stack init` writes it into the
# stack's config file, which would be the tracked stacks/Pulumi.local.yaml: so a new stack is made in
# a scratch copy of the project, and an existing one's salt comes from the demo config or the state.
stack_salt() {
  local line state="$work/state/.pulumi/stacks/infralab/$stack.json"
  if [ -f "$config_file" ] && line=$(grep -m1 '^encryptionsalt:' "$config_file"); then
    echo "$line"
  elif [ -f "$state" ] && line=$(grep -m1 -o '"salt": *"[^"]*"' "$state"); then
    echo "encryptionsalt: $(echo "$line" | cut -d'"' -f4)"
  else
    local scratch="$work/scratch"
    rm -rf "$scratch" && mkdir -p "$scratch" && cp Pulumi.yaml "$scratch/"
    pulumi --non-interactive -C "$scratch" stack init "$stack" >/dev/null
    grep -h -m1 '^encryptionsalt:' -r "$scratch"
  fi
}

ensure_stack_config() {
  local salt
  salt=$(stack_salt)
  cp "stacks/Pulumi.$stack.yaml" "$config_file"
  printf '%s\n' "$salt" >>"$config_file"
  local key
  for key in postgresPassword apiDbPassword exporterDbPassword; do
    ensure_secret_file "$key"
    pulumi config set --secret -s "$stack" --config-file "$config_file" "$key" <"$work/secrets/$key"
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
  echo "Resources:      $(grep -E '^ +[-+~]? *[0-9]+ (created|unchanged|updated|deleted|replaced)' "$out" | tr -s ' ' | paste -sd, - || true)"
  echo "Policy pack:    $(sed -n '/^Policies:/,/^$/p' "$out" | sed '1d;/^$/d' | sed 's/^ *//' | paste -sd';' -)"
  if grep -qE '\[(mandatory|advisory)\]' "$out"; then
    grep -E '\[(mandatory|advisory)\]' "$out" | sed 's/^/                /'
  fi
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

preview() {
  ensure_env
  ensure_control_plane
  ensure_stack_config
  log "pulumi preview -s $stack --policy-pack policy --diff"
  pulumi preview -s "$stack" --config-file "$config_file" --policy-pack policy --diff --non-interactive
}

stop() {
  [ ! -x "$work/bin/infralab-env" ] || "$work/bin/infralab-env" down --dir "$work/cluster"
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
  preview) preview ;;
  down) down ;;
  stop) stop ;;
  *) die "usage: $0 up|preview|down|stop" ;;
esac
