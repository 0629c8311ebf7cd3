#!/usr/bin/env bash
# The box from nothing to the lab's declared phases: keys, the lab program's plan (each VM's
# user-data), the machines booted with it (infralab-box up), then the cluster layer's declared
# commands over SSH through the box's jump host (hack/box-declared.sh run), ending with the
# per-phase table. State: $INFRALAB_BOX_STATE (default /run/infralab-box)/declared.
# Holds the node lock (internal/testenv ExclusiveNode) so no node test runs meanwhile.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
state=${INFRALAB_BOX_STATE:-/run/infralab-box}
d=$state/declared
log() { printf '==> box-run: %s\n' "$*" >&2; }

exec 9>/run/infralab-node-tests.lock
flock 9

(umask 077 && mkdir -p "$d")
for k in ssh jump; do
  [ -s "$d/$k" ] || ssh-keygen -q -t ed25519 -N '' -C "infralab-box-$k" -f "$d/$k"
done
[ -s "$d/encryption" ] || (umask 077 && head -c 32 /dev/urandom | base64 >"$d/encryption")

# box_json [BOX_STATE]: the box description; with the box's state, its pinned host keys and
# instance IDs too.
box_json() {
  jq -n --arg d "$d" --slurpfile st <(if [ -n "${1:-}" ]; then cat "$1"; else echo '{"machines":{}}'; fi) '
    ($st[0].machines // {}) as $m |
    {machines: ([["k8s-cp-1","10.77.0.10"],["k8s-worker-1","10.77.0.11"],["k8s-worker-2","10.77.0.12"]] |
       map({name: .[0], address: .[1], hostKey: ($m[.[0]].hostKey // ""), instanceId: ($m[.[0]].instanceId // "")})),
     jump: {name: "pve1", address: "10.77.0.2"}, jumpUser: "infralab-jump",
     startJump: {bridge: "ilbox0", address: "10.77.0.2/24"},
     nodeCidr: "10.77.0.0/24", gateway: "10.77.0.1", dns: ["10.77.0.1"],
     sshPrivateKeyFile: ($d + "/ssh"), jumpPrivateKeyFile: ($d + "/jump"), encryptionKeyFile: ($d + "/encryption"),
     kubernetes: {allowCgroupV1: true}}'
}

log "the lab program's plan (user-data per VM)"
box_json >"$d/box.json"
hack/box-declared.sh plan "$d/box.json" "$d"

log "machines (infralab-box up with the lab's user-data)"
go run ./cmd/infralab-box up --state-dir "$state" --user-data-dir "$d/user-data"

log "the cluster layer's declared phases over SSH"
box_json "$state/box.json" >"$d/box.json"
hack/box-declared.sh run "$d/box.json" "$d"
