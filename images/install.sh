#!/bin/sh
# Installs into the image's environment (/opt/prebuilt), from the package index or, when the build context holds a
# wheelhouse, from it alone; with the context's CA bundle when it has one. `install.sh uv` makes the two environments
# (uv's own, /opt/uv, and /opt/prebuilt); `install.sh FILE` installs a requirements file, compiled to bytecode (the
# image's user cannot write __pycache__, so every import would compile again).
set -e
if [ -s /tmp/context/ca.crt ]; then export PIP_CERT=/tmp/context/ca.crt SSL_CERT_FILE=/tmp/context/ca.crt; fi
offline=""
if [ -n "$(ls /tmp/context/wheelhouse)" ]; then offline="--no-index --find-links /tmp/context/wheelhouse"; fi
if [ "$1" = uv ]; then
  python3 -m venv /opt/uv
  /opt/uv/bin/pip install -q --no-cache-dir --disable-pip-version-check $offline "uv==${UV_VERSION}"
  python3 -m venv /opt/prebuilt
else
  /opt/uv/bin/uv pip install -q --no-cache --compile-bytecode --python /opt/prebuilt/bin/python $offline -r "$1"
fi
