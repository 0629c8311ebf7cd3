#!/usr/bin/env bash
# Builds the box machines' Debian 12 root filesystem with mmdebstrap into OUT (a directory that
# must not exist yet). Called by hack/tools.sh box, which picks OUT from the hash of this file and
# packages.txt, builds into a temporary directory and renames it into place.
# Usage: build.sh OUT
# Environment: BOX_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#   BOX_DEBIAN_SECURITY (default http://deb.debian.org/debian-security).
set -euo pipefail

out=${1:?usage: build.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
mirror=${BOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${BOX_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}

include=$(grep -v '^\s*\(#\|$\)' "$here/packages.txt" | paste -sd, -)

# mmdebstrap runs a hook with sh -c and the tree as $1. customize.sh makes the tree a box machine's (machine-id, host keys, udev, cloud-init).
nice -n 10 mmdebstrap --variant=minbase --mode=root --format=directory \
  --include="$include" \
  --customize-hook="'$here/customize.sh' \"\$1\"" \
  bookworm "$out" \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main"
