#!/usr/bin/env bash
# apt-get install PACKAGES..., one install at a time on this machine: `make test` sets up Docker, PostgreSQL and the
# local base side by side, and apt refuses a second apt while one holds its lock.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
exec 9>/tmp/flytekitplugins-prebuilt-apt.lock
flock 9
apt-get update -qq >/dev/null
apt-get install -y -qq "$@" >/dev/null
