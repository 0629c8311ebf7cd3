#!/bin/sh
# Runs a program from an extracted image root the way the node will: in a private mount
# namespace (start it under `unshare -m --propagation private`), root filesystem read-only,
# only the listed directories writable, as the non-root user chroot's --userspec names.
#   ROOT        extracted image root
#   TMPFS       "dir:uid:gid ..." writable tmpfs volumes inside the image
#   SECRET_SRC  host file copied to /run/secrets/password (a tmpfs), like a mounted Secret
# Arguments: what `env -i` runs, e.g. VAR=value /usr/sbin/chroot --userspec=10999:10999 "$ROOT" cmd
set -eu

mount --bind "$ROOT" "$ROOT"
mount -o remount,bind,ro "$ROOT"
mount --rbind /dev "$ROOT/dev"
mount -t proc proc "$ROOT/proc"
for spec in ${TMPFS:-}; do
	dir=${spec%%:*}
	owner=${spec#*:}
	mount -t tmpfs -o "uid=${owner%%:*},gid=${owner#*:},mode=0700" tmpfs "$ROOT$dir"
done
if [ -n "${SECRET_SRC:-}" ]; then
	mount -t tmpfs -o mode=0755 tmpfs "$ROOT/run"
	mkdir "$ROOT/run/secrets"
	cp "$SECRET_SRC" "$ROOT/run/secrets/password"
	chmod 0444 "$ROOT/run/secrets/password"
fi
exec env -i "$@"
