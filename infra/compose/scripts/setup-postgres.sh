#!/bin/sh
# One-shot (temporalio/admin-tools): create Temporal's two PostgreSQL databases and bring their
# schemas up to the version this admin-tools image ships. Safe to run on every `up`: creating an
# existing database or base schema is skipped, update-schema is a no-op when current — and it is
# what migrates the schemas when TEMPORAL_VERSION is raised.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
PORT=${DB_PORT:-5432}
SCHEMA=/etc/temporal/schema/postgresql/v12
echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$PORT"
until nc -z -w 2 "$POSTGRES_SEEDS" "$PORT"; do sleep 1; done
for db in temporal temporal_visibility; do
  tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$PORT" --db "$db" "$@"; }
  tool create-database 2>/dev/null || echo "database $db exists"
  if [ "$db" = temporal ]; then dir=$SCHEMA/temporal/versioned; else dir=$SCHEMA/visibility/versioned; fi
  tool setup-schema -v 0.0 2>/dev/null || echo "schema of $db already set up"
  tool update-schema -d "$dir"
done
echo "Temporal schemas are current"
