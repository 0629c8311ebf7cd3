#!/bin/sh
# The postgres-roles Job's command: waits (bounded) until PostgreSQL accepts connections at
# PGHOST:PGPORT through the same Service, DNS and NetworkPolicy path psql will use, then runs
# roles.sql once. Without the wait, a Job that starts with the database fails, and the Job
# controller's back-off (10 s, 20 s, ...) costs far more than the database needs to come up.
# Env: PGHOST, PGPORT, PGUSER, PGDATABASE (as for psql), PG_WAIT_SECONDS (default 300),
# ROLES_SQL (default /sql/roles.sql).
set -eu

wait_s=${PG_WAIT_SECONDS:-300}
sql=${ROLES_SQL:-/sql/roles.sql}
start=$(date +%s)
waited=0
until pg_isready -q -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" -t 2; do
	elapsed=$(($(date +%s) - start))
	if [ "$elapsed" -ge "$wait_s" ]; then
		echo "postgres-roles: PostgreSQL at $PGHOST:$PGPORT still does not accept connections after ${elapsed}s (PG_WAIT_SECONDS=$wait_s); giving up, the Job retries" >&2
		exit 1
	fi
	if [ "$waited" = 0 ]; then
		echo "postgres-roles: waiting up to ${wait_s}s for PostgreSQL at $PGHOST:$PGPORT to accept connections"
		waited=1
	fi
	sleep 0.5
done
echo "postgres-roles: PostgreSQL at $PGHOST:$PGPORT accepts connections (waited $(($(date +%s) - start))s); running $sql"
exec psql --no-psqlrc -v ON_ERROR_STOP=1 -f "$sql"
