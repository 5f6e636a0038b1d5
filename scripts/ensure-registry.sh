#!/usr/bin/env bash
# Make Debian's docker-registry (a real OCI registry) available for the publish tests (127.0.0.1 only).
set -euo pipefail
command -v docker-registry >/dev/null 2>&1 && exit 0
echo "ensure-registry: installing docker-registry" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq docker-registry >/dev/null
