#!/usr/bin/env bash
# Make a Docker engine available: install docker.io when no engine is installed, start dockerd in the
# background when none answers, and wait for its socket; install Debian's docker-compose (1.29), with which the tests'
# pytest-docker starts their services (tests/docker-compose.yml). Idempotent; needs root for the installs.
set -euo pipefail
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "ensure-docker: installing docker-compose" >&2
  bash "$(dirname "$0")/apt-install.sh" --no-install-recommends docker-compose
fi
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing docker.io" >&2
  bash "$(dirname "$0")/apt-install.sh" docker.io
fi
if ! docker info >/dev/null 2>&1; then
  echo "ensure-docker: starting dockerd" >&2
  # a daemon killed with its session leaves a pid file that stops the next one from starting
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then rm -f /var/run/docker.pid; fi
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi
docker info >/dev/null 2>&1 || { echo "ensure-docker: dockerd did not start, see /tmp/dockerd.log" >&2; exit 1; }
