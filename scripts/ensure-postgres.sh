#!/usr/bin/env bash
# Make PostgreSQL's server binaries available (the tests start their own server on 127.0.0.1).
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then exit 0; fi
echo "ensure-postgres: installing postgresql" >&2
bash "$(dirname "$0")/apt-install.sh" postgresql
