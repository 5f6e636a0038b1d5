# Shared stages of every task type's image: Python + flytekit + flytekitplugins-prebuilt[<type>].
# `flyte-prebuilt images build <type>` (make images) joins this file and images/<type>/Dockerfile,
# which starts `FROM runtime`, and builds them with the type's requirements in context/.
# Real builds use python:3.11-slim-bookworm; air-gapped builds pass a local base made by
# scripts/make-local-base.sh and a wheelhouse.
ARG PYTHON_VERSION=3.11
ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG UV_VERSION=0.13.8
# context/: requirements.txt (pinned runtime deps), wheels/ (this package), wheelhouse/ (all wheels, for
# builds without a package index; may be empty), ca.crt (extra CA bundle for the index; may be empty)
COPY context/requirements.txt context/ca.crt /tmp/context/
COPY context/wheelhouse/ /tmp/context/wheelhouse/
RUN set -e; \
    if [ -s /tmp/context/ca.crt ]; then export PIP_CERT=/tmp/context/ca.crt SSL_CERT_FILE=/tmp/context/ca.crt; fi; \
    offline=""; if [ -n "$(ls /tmp/context/wheelhouse)" ]; then offline="--no-index --find-links /tmp/context/wheelhouse"; fi; \
    python3 -m venv /opt/uv && /opt/uv/bin/pip install -q --no-cache-dir --disable-pip-version-check $offline "uv==${UV_VERSION}"; \
    python3 -m venv /opt/prebuilt; \
    /opt/uv/bin/uv pip install -q --no-cache --python /opt/prebuilt/bin/python $offline -r /tmp/context/requirements.txt
COPY context/wheels/ /tmp/context/wheels/
RUN /opt/uv/bin/uv pip install -q --no-cache --no-deps --python /opt/prebuilt/bin/python /tmp/context/wheels/*.whl \
 && /opt/prebuilt/bin/python -m compileall -q -j 0 /opt/prebuilt/lib >/dev/null

FROM ${BASE_IMAGE} AS runtime
# An init as PID 1 (Debian's tini): it forwards SIGTERM to the executor (PID 1 ignores every signal it has no
# handler for) and reaps orphaned processes. Kubernetes keeps an image's ENTRYPOINT when a pod gives only args,
# as Flyte's container tasks do. The local base (scripts/make-local-base.sh) has it, for builds without network.
RUN command -v tini >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends tini >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; } \
 || { echo "cannot install tini (no network?): rebuild the local base (scripts/make-local-base.sh includes it)" >&2; exit 1; }
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.source="https://github.com/flytekitplugins-prebuilt/flytekitplugins-prebuilt" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /opt/prebuilt /opt/prebuilt
ENV PATH=/opt/prebuilt/bin:$PATH \
    LANG=C.UTF-8 \
    FLYTE_SDK_RICH_TRACEBACKS=0
RUN useradd --uid 1000 --create-home flytekit
WORKDIR /home/flytekit
USER 1000
ENTRYPOINT ["tini", "--"]
CMD ["python3"]
