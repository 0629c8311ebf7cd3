#!/usr/bin/env bash
# Installs the Debian packages infralab's build and tests need (hack/apt-packages.txt) on a fresh
# Debian machine and checks that Go is new enough (it says how to get it; it does not install Go).
# Safe to re-run: it only installs what is missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$repo/hack/versions.env"

log() { printf '==> deps: %s\n' "$*" >&2; }
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

missing=()
while read -r pkg; do
  case $pkg in '' | '#'*) continue ;; esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done <"$repo/hack/apt-packages.txt"

if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go >= 1.21 fetches the pinned toolchain itself from the Go module proxy (GOTOOLCHAIN); Debian 12's
# golang-go (1.19) cannot, so an old or missing Go is a clear stop rather than a guess.
if ! command -v go >/dev/null; then
  log "Go is not installed: install Go >= $GO_MIN_VERSION (https://go.dev/dl) into /usr/local/go and re-run"
  exit 1
fi
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$GO_MIN_VERSION" "$have" | sort -V | head -n1)" != "$GO_MIN_VERSION" ]; then
  log "go $have is older than $GO_MIN_VERSION: run 'export GOTOOLCHAIN=go$GO_MIN_VERSION' (fetched from the Go proxy) and re-run"
  exit 1
fi
log "ok: go $have, ${#missing[@]} packages installed now"
