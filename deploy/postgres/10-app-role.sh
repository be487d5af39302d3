#!/bin/sh
# Runs once, when the database volume is created: the role the service connects as. It owns nothing; the
# migration step grants it what it needs (`risk-register db grants`), which leaves the access log insert-only.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<EOSQL
CREATE ROLE register_app LOGIN PASSWORD '${APP_DB_PASSWORD}';
GRANT CONNECT ON DATABASE "${POSTGRES_DB}" TO register_app;
EOSQL
