#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim-bookworm when no image registry is reachable
# (air-gapped machines, this project's CI): debootstrap a minimal Debian bookworm with Python 3.11
# from apt's configured mirror and import it into Docker.   Usage: make-local-base.sh [IMAGE_NAME]
set -euo pipefail
name=${1:-prebuilt-local-base:bookworm}
# tini is the images' init (images/base.Dockerfile): a base made before it was included is made again
if docker image inspect "$name" >/dev/null 2>&1 && docker run --rm --entrypoint /bin/sh "$name" -c 'command -v tini' >/dev/null 2>&1; then
  echo "local base image $name exists"; exit 0
fi
mirror=${DEBIAN_MIRROR:-$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -v security | head -n1 | awk "{print \$2}" || true)}
mirror=${mirror:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || bash "$(dirname "$0")/apt-install.sh" debootstrap
root=$(mktemp -d /tmp/prebuilt-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm from $mirror (about a minute)..."
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,tini bookworm "$root" "$mirror" >/tmp/debootstrap.log 2>&1 \
  || { tail -n 20 /tmp/debootstrap.log >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' - "$name" >/dev/null
echo "imported $name"
