#!/usr/bin/env bash
# Build the image of one task type, tagged with the name tasks of this package version point at.
#   scripts/build-image.sh sql
# BASE_IMAGE: defaults to python:3.11-slim-bookworm when present or pullable, else to a local base
# built with debootstrap (scripts/make-local-base.sh) - the air-gapped case. The build reaches the
# package index with host networking and the machine's CA bundle (PIP_CERT / SSL_CERT_FILE).
set -euo pipefail
type=${1:?usage: build-image.sh TYPE}
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
dir=$root/images/$type
[ -f "$dir/Dockerfile" ] || { echo "no images/$type/Dockerfile" >&2; exit 2; }
bash "$root/scripts/ensure-docker.sh"

image=$("$py" -m flytekitplugins.prebuilt.cli image-name "$type")
# Skip the build when the image was built from exactly these sources (the tests call this script too).
source_hash=$(cd "$root" && find plugins executors scripts/runtime_requirements.py pyproject.toml "images/$type" \
  -path "images/$type/context" -prune -o -type f ! -name '*.pyc' -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{ index .Config.Labels "prebuilt.source-hash" }}' "$image" 2>/dev/null)" = "$source_hash" ]; then
  echo "build-image: $image is up to date"; exit 0
fi

if [ -z "${BASE_IMAGE:-}" ]; then
  BASE_IMAGE=python:3.11-slim-bookworm
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && ! timeout 30 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    BASE_IMAGE=prebuilt-local-base:bookworm
    echo "build-image: $BASE_IMAGE (python:3.11-slim-bookworm cannot be pulled here)"
    bash "$root/scripts/make-local-base.sh" "$BASE_IMAGE"
  fi
fi

context=$dir/context
rm -rf "$context" && mkdir -p "$context/wheels"
${UV:-uv} build -q --wheel --out-dir "$context/wheels" "$root"
"$py" "$root/scripts/runtime_requirements.py" "$type" > "$context/requirements.txt"
cert=${PIP_CERT:-${SSL_CERT_FILE:-}}
if [ -n "$cert" ] && [ -f "$cert" ]; then cp "$cert" "$context/ca.crt"; else : > "$context/ca.crt"; fi

version=$("$py" -c 'from flytekitplugins.prebuilt.kit.images import package_version; print(package_version())')
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "build-image: building $image from $BASE_IMAGE"
docker build --network host -q -f "$dir/Dockerfile" -t "$image" \
  --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VERSION="$version" --build-arg REVISION="$revision" --label prebuilt.source-hash="$source_hash" "$dir" >/dev/null
# drop our older final images (each has its own copy of the venv); build-stage layers stay as the cache
docker image prune -f --filter label=prebuilt.source-hash >/dev/null
echo "build-image: built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
