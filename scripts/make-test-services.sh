#!/usr/bin/env bash
# Build the images of the test services (tests/docker-compose.yml: a registry, PostgreSQL) from tests/services/<name>/
# on the local debootstrap base (scripts/make-local-base.sh), since none can be pulled here. apt runs inside the build
# with host networking (apt's mirror is reachable from the host's network). A build is skipped when the image carries
# the hash of its folder. One run at a time on this machine (each pytest worker's session calls it).
set -euo pipefail
exec 9>/tmp/flytekitplugins-prebuilt-test-services.lock
flock 9
here=$(cd "$(dirname "$0")/.." && pwd)
docker image inspect prebuilt-local-base:bookworm >/dev/null 2>&1 || bash "$here/scripts/make-local-base.sh"
for service in registry postgres; do
  folder="$here/tests/services/$service"
  tag="prebuilt-test-$service:bookworm"
  hash=$(cd "$folder" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
  built=$(docker image inspect -f '{{ index .Config.Labels "prebuilt.source-hash" }}' "$tag" 2>/dev/null || true)
  if [ "$built" = "$hash" ]; then continue; fi
  echo "make-test-services: building $tag" >&2
  log=$(mktemp)
  docker build --network host --label "prebuilt.source-hash=$hash" -t "$tag" "$folder" >"$log" 2>&1 \
    || { tail -n 30 "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
done
