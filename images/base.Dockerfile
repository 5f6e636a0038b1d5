# Shared stages of every task type's image: Python + flytekit + flytekitplugins-prebuilt[<type>].
# `flyte-prebuilt images build <type>` (make images) joins this file and images/<type>/Dockerfile,
# which starts `FROM runtime`, and builds them with the type's requirements in context/.
# Real builds use python:3.11-slim-bookworm; air-gapped builds pass a local base made by
# scripts/make-local-base.sh and a wheelhouse.
ARG PYTHON_VERSION=3.11
ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim-bookworm

FROM ${BASE_IMAGE} AS deps
ARG UV_VERSION=0.13.8
# context/: install.sh (installs a requirements file: index or wheelhouse, CA bundle), ca.crt (extra CA bundle for the
# index; may be empty), wheelhouse/ (all wheels, for builds without a package index; may be empty),
# requirements-common.txt (flytekit, pinned), requirements.txt (the type's extra, pinned), wheels/ (this package).
# Layers go from what every type shares to what is its own, so that the types' images share their first layers:
# `make images` installs flytekit once for all of them.
COPY context/install.sh context/ca.crt /tmp/context/
COPY context/wheelhouse/ /tmp/context/wheelhouse/
RUN sh /tmp/context/install.sh uv
COPY context/requirements-common.txt /tmp/context/
RUN sh /tmp/context/install.sh /tmp/context/requirements-common.txt
COPY context/requirements.txt /tmp/context/
RUN sh /tmp/context/install.sh /tmp/context/requirements.txt

# What changes with every source edit comes last, in a stage of its own: a type's stages that do not need this
# package (the train type's framework) start from `deps` and stay cached.
FROM deps AS build
COPY context/wheels/ /tmp/context/wheels/
RUN /opt/uv/bin/uv pip install -q --no-cache --no-deps --compile-bytecode --python /opt/prebuilt/bin/python \
      /tmp/context/wheels/*.whl

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
