#!/bin/sh
# Runs once, when the database volume is created: the role the service connects as. It owns nothing; the
# migration step grants it what it needs (`risk-register db grants`), which leaves the access log insert-only.
# psql quotes the name and password itself (:"name", :'password').
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v app_user="${APP_DB_USER:-register_app}" -v app_password="$APP_DB_PASSWORD" -v db="$POSTGRES_DB" <<'EOSQL'
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';
GRANT CONNECT ON DATABASE :"db" TO :"app_user";
EOSQL
