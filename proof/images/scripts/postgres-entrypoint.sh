#!/bin/sh
# Starts PostgreSQL 15 as the image's non-root user on a read-only root filesystem.
# First start: initialises PGDATA (on a volume) with POSTGRES_USER and the password from
# POSTGRES_PASSWORD_FILE, creates POSTGRES_DB, and allows scram-sha-256 logins over TCP.
# Initialisation happens in PGDATA.init and is renamed into place only when complete, so a
# crash half way leaves nothing a restart would mistake for a database.
set -eu

PGDATA="${PGDATA:-/var/lib/postgresql/data/pgdata}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
SOCKET_DIR="${POSTGRES_SOCKET_DIR:-/var/run/postgresql}"

die() {
	printf 'postgres-entrypoint: %s\n' "$*" >&2
	exit 1
}

case "$POSTGRES_USER" in
'' | *[!A-Za-z0-9_]*) die "POSTGRES_USER: '$POSTGRES_USER' must be letters, digits and _ only" ;;
esac
case "$POSTGRES_DB" in
'' | *[!A-Za-z0-9_]*) die "POSTGRES_DB: '$POSTGRES_DB' must be letters, digits and _ only" ;;
esac

# The password goes to initdb through a pipe: never on a command line, never on disk.
print_password() {
	if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
		[ -r "$POSTGRES_PASSWORD_FILE" ] ||
			die "POSTGRES_PASSWORD_FILE: cannot read $POSTGRES_PASSWORD_FILE; mount the Secret there"
		cat "$POSTGRES_PASSWORD_FILE"
	elif [ -n "${POSTGRES_PASSWORD:-}" ]; then
		printf '%s\n' "$POSTGRES_PASSWORD"
	else
		die "POSTGRES_PASSWORD_FILE: not set; point it at a mounted Secret file (or set POSTGRES_PASSWORD)"
	fi
}

init_database() {
	staging="$PGDATA.init"
	rm -rf "$staging"
	printf 'postgres-entrypoint: initialising %s for user %s, database %s\n' "$PGDATA" "$POSTGRES_USER" "$POSTGRES_DB"
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of flags: split on purpose.
	print_password | initdb -D "$staging" -U "$POSTGRES_USER" --pwfile=/dev/stdin \
		--auth=scram-sha-256 -E UTF8 --locale=C ${POSTGRES_INITDB_ARGS:-}
	printf '%s\n' "# Added by the image: password logins from the pod network." \
		"host all all all scram-sha-256" >>"$staging/pg_hba.conf"
	if [ "$POSTGRES_DB" != postgres ]; then
		printf 'CREATE DATABASE "%s" OWNER "%s"\n' "$POSTGRES_DB" "$POSTGRES_USER" |
			postgres --single -D "$staging" -c unix_socket_directories= postgres >/dev/null
	fi
	mv "$staging" "$PGDATA"
}

[ -s "$PGDATA/PG_VERSION" ] || init_database

# A Unix socket needs a writable directory: a volume mounted there, else TCP only. Probe by
# writing, since a read-only root still shows the directory's owner write bit.
sockets=""
if (: >"$SOCKET_DIR/.probe") 2>/dev/null; then
	rm -f "$SOCKET_DIR/.probe"
	sockets="$SOCKET_DIR"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$sockets" "$@"
