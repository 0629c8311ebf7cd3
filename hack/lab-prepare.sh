#!/usr/bin/env bash
# Prepares this machine for `pulumi preview/up` of a Proxmox stack (lab), before every run:
#   1. installs the proxmoxve and command provider plugins at the versions hack/versions.env pins
#      into PULUMI_HOME (make tools installs only kubernetes: these two cannot be built here), so
#      the run itself downloads nothing (PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true);
#   2. pins each Proxmox host's SSH host key (stack config proxmox.nodes[].sshHostKey) in the
#      known_hosts file the proxmoxve provider reads. The provider has no host key setting: it
#      checks ~/.ssh/known_hosts and adds unknown hosts on first use (bpg v0.95.0
#      proxmox/ssh/client.go, openNodeShell). With the pinned key there first, a different key
#      fails the run ("REMOTE HOST IDENTIFICATION HAS CHANGED") instead of being trusted.
#
# Usage: hack/lab-prepare.sh STACK            (run in the repo; the stack must be selectable)
#        hack/lab-prepare.sh --plugins-only   (step 1 only; hack/tools.sh lab-plugins)
# Environment:
#   PULUMI_HOME            where plugins go (default ~/.cache/infralab/pulumi-home, as make tools)
#   INFRALAB_PLUGIN_DIR    install from release archives in this folder instead of downloading
#                          (pulumi-resource-NAME-vVERSION-linux-amd64.tar.gz, e.g. copied from a
#                          machine with internet); INFRALAB_PLUGIN_SERVER: a mirror URL
#   INFRALAB_KNOWN_HOSTS   the known_hosts file to pin in (default: the provider's, ~/.ssh/known_hosts)
#   INFRALAB_PROJECT       the Pulumi project folder (default: this repo)
set -euo pipefail

stack=${1:-}
if [ -z "$stack" ]; then
  echo "usage: $0 STACK|--plugins-only (a Proxmox stack, e.g. lab)" >&2
  exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$repo/hack/versions.env"
export PATH="$repo/.tools/bin:$PATH"
export PULUMI_HOME=${PULUMI_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/infralab/pulumi-home}
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true
known_hosts=${INFRALAB_KNOWN_HOSTS:-$HOME/.ssh/known_hosts}
project=${INFRALAB_PROJECT:-$repo}

log() { printf '==> lab-prepare: %s\n' "$*" >&2; }
die() { printf 'lab-prepare: %s\n' "$*" >&2; exit 1; }

command -v pulumi >/dev/null || die "no pulumi CLI on PATH; run make tools"

# install_plugin NAME VERSION SERVER: a no-op when PULUMI_HOME already holds that exact version.
install_plugin() {
  local name=$1 version=$2 server=$3
  if [ -d "$PULUMI_HOME/plugins/resource-$name-v$version" ] && [ ! -e "$PULUMI_HOME/plugins/resource-$name-v$version.partial" ]; then
    log "plugin $name $version already installed"
    return
  fi
  local args=(plugin install resource "$name" "$version" --exact)
  if [ -n "${INFRALAB_PLUGIN_DIR:-}" ]; then
    local file="$INFRALAB_PLUGIN_DIR/pulumi-resource-$name-v$version-linux-amd64.tar.gz"
    [ -f "$file" ] || die "INFRALAB_PLUGIN_DIR has no $(basename "$file")"
    args+=(--file "$file")
  elif [ -n "${INFRALAB_PLUGIN_SERVER:-}" ]; then
    args+=(--server "$INFRALAB_PLUGIN_SERVER")
  elif [ -n "$server" ]; then
    args+=(--server "$server")
  fi
  log "installing plugin $name $version into PULUMI_HOME=$PULUMI_HOME"
  local out
  if ! out=$(pulumi "${args[@]}" 2>&1); then
    printf '%s\n' "$out" | tail -n 5 >&2
    die "could not install plugin $name $version (no internet here?). On a machine with internet run
  pulumi plugin install resource $name $version${server:+ --server $server}
or download pulumi-resource-$name-v$version-linux-amd64.tar.gz from its release page, copy it into a
folder here and re-run with INFRALAB_PLUGIN_DIR=that-folder"
  fi
}

# The proxmoxve SDK names its download server in pulumi-plugin.json; command comes from Pulumi's.
install_plugin proxmoxve "$PROXMOXVE_PLUGIN_VERSION" github://api.github.com/muhlba91/pulumi-proxmoxve
install_plugin command "$COMMAND_PLUGIN_VERSION" ""
[ "$stack" != --plugins-only ] || exit 0

# config_get PATH prints one stack config value (plain config: host keys are not secrets).
config_get() { pulumi -C "$project" config get --stack "$stack" --path "$1" 2>/dev/null; }

mkdir -p "$(dirname "$known_hosts")"
chmod 700 "$(dirname "$known_hosts")" 2>/dev/null || true
touch "$known_hosts"
chmod 600 "$known_hosts"

pinned=0
for i in $(seq 0 63); do
  name=$(config_get "infralab:proxmox.nodes[$i].name") || break
  address=$(config_get "infralab:proxmox.nodes[$i].address") || die "proxmox.nodes[$i].address is not set"
  key=$(config_get "infralab:proxmox.nodes[$i].sshHostKey") || die "proxmox.nodes[$i].sshHostKey is not set: on $name's console run cat /etc/ssh/ssh_host_ed25519_key.pub and set it"
  read -r type blob _ <<<"$key"
  [ -n "${blob:-}" ] || die "proxmox.nodes[$i].sshHostKey is not one public key line"
  # ssh-keygen -F also finds hashed entries (HashKnownHosts). Port 22: the provider's default.
  if existing=$(ssh-keygen -F "$address" -f "$known_hosts" 2>/dev/null | grep -v '^#'); then
    if grep -qF " $type $blob" <<<"$existing"; then
      log "$name ($address): host key already pinned"
      pinned=$((pinned + 1))
      continue
    fi
    if grep -q " $type " <<<"$existing"; then
      die "$known_hosts holds another $type key for $address than proxmox.nodes[$i].sshHostKey. If $name was reinstalled, check its key on the console, then run: ssh-keygen -R $address -f $known_hosts"
    fi
  fi
  printf '%s %s %s\n' "$address" "$type" "$blob" >>"$known_hosts"
  log "$name ($address): host key pinned in $known_hosts"
  pinned=$((pinned + 1))
done
[ "$pinned" -gt 0 ] || die "stack $stack lists no proxmox.nodes (or pulumi config get --stack $stack failed: select the backend and log in first)"
