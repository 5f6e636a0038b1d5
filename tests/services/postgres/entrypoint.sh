#!/bin/sh
# A fresh cluster at every start: user $POSTGRES_USER with password $POSTGRES_PASSWORD (scram-sha-256), listening on
# every address of the container's network.
set -eu
bin=/usr/lib/postgresql/15/bin
password_file=$(mktemp)
printf '%s' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" >"$password_file"
"$bin/initdb" -D "$PGDATA" -U "${POSTGRES_USER:-prebuilt}" -A scram-sha-256 --pwfile="$password_file" >/dev/null
rm -f "$password_file"
echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
