"""Where a bundle too large to travel inside its template goes when the task names no ``bundle_store``: where Flyte
already puts the project's code at registration.

A workflow's task templates travel inside its FlyteWorkflow resource, which etcd refuses above about 1.5 MB
(flyteorg/flyte#4349, #2705), so only bundles of a few KiB stay inline (``INLINE_LIMIT``). A larger one is uploaded
when the task is serialized for registration, through the same channel ``pyflyte register`` and ``pyflyte run
--remote`` use for the fast-registration tarball: Flyte Admin's data proxy (``FlyteRemote.upload_file``, the
``CreateUploadLocation`` RPC). Those commands serialize inside the FlyteRemote's context, whose data location is
``flyte://data`` (flytekit ``clis/sdk_in_container/register.py``, ``run.py``); writing a file there goes through
flytekit's ``FlyteFS`` (``remote/remote_fs.py``), which asks Admin for a signed URL under
``<bucket>/<prefix>/<project>/<domain>/<md5 of the content>/<file name>`` and returns that object's native URL
(``s3://...``): the URI the template names. The path hashes the content, so the same bundle always lands on the
same object and registering again uploads the same bytes to the same place. No bucket is configured by anyone.

Where no Flyte connection is at hand (``pyflyte package``, ``get_serializable`` outside FlyteRemote's context) a
bundle that is too large is refused, naming the ways out: register with ``pyflyte register``, or name a store
(``bundle_store=`` on the task, or ``$PREBUILT_BUNDLE_STORE`` for every task without one).

A store is read by the pods, so it must be somewhere they reach: an object store (``s3://``, ``gs://``, ``abfs://``).
A path on this machine (``/tmp/x``, ``file://``) written into a template is one no pod of a cluster can read.
It is refused where the serialization can only be for a cluster (``pyflyte package``: no Flyte connection), and
warned about inside a registration's context, which the platform emulator also serializes in (its pods share this
machine's disk, a legitimate local use: ``plugins/emulator/data_proxy.py``). A local run registers nothing.
"""

from __future__ import annotations

import os
import tempfile
import warnings

from flytekit.core.context_manager import FlyteContextManager
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.script.bundle import Bundle

INLINE_LIMIT = 4 * 1024  # bundles up to this size travel inside the template (base64: about 5.5 KiB)
STORE_VARIABLE = "PREBUILT_BUNDLE_STORE"  # the bundle store of every task that names none (e.g. for pyflyte package)
# the data location of FlyteRemote's context in the CLI (flytekit remote/remote_fs.py REMOTE_PLACEHOLDER, flyte://data)
FLYTE_PROTOCOL = "flyte://"


def default_store() -> str:
    """``$PREBUILT_BUNDLE_STORE`` (any Flyte data-layer URI), or '' when it is not set."""
    return os.environ.get(STORE_VARIABLE, "").strip().rstrip("/")


def is_local(store: str) -> bool:
    """Whether ``store`` is a path on this machine (no scheme, or ``file://``) rather than an object store."""
    return "://" not in store or store.startswith("file://")


def check_reachable(store: str, field: str) -> None:
    """Refuse (no Flyte connection: ``pyflyte package``) or warn (a registration, or the emulator) when the store
    the template will name is a local path; ``field`` says where it was given (``bundle_store``, the variable)."""
    if not is_local(store):
        return
    problem = (
        f"{store!r} is a path on this machine: the template would name a bundle there, which no pod of a Flyte "
        "cluster can read (only the platform emulator's, which share this disk). Name an object store the pods "
        "can read, e.g. 's3://my-bucket/bundles'"
    )
    if not can_upload():
        raise ConfigError(field, problem)
    warnings.warn(f"{field}: {problem}", LocalBundleStoreWarning, stacklevel=3)


class LocalBundleStoreWarning(UserWarning):
    """A bundle store on this machine's disk was written into a template serialized for registration."""


def can_upload() -> bool:
    """Whether this serialization runs inside a FlyteRemote's context whose uploads go through Admin's data proxy."""
    return FlyteContextManager.current_context().file_access.raw_output_prefix.startswith(FLYTE_PROTOCOL)


def upload(packed: Bundle) -> str:
    """Upload the bundle through Flyte Admin's data proxy (the current context's ``flyte://`` data location) as
    ``<sha256>.zip``; the native URL of the object, which the template names."""
    file_access = FlyteContextManager.current_context().file_access
    with tempfile.TemporaryDirectory(prefix="prebuilt-bundle-") as scratch:
        local = os.path.join(scratch, f"{packed.sha256}.zip")
        with open(local, "wb") as f:
            f.write(packed.data)
        # FlyteFS ignores the path asked for and returns where Admin put the object (flytekit remote/remote_fs.py)
        return file_access.put_data(local, file_access.join(file_access.raw_output_prefix, f"{packed.sha256}.zip"))


def nowhere_to_upload(task_name: str, size: int) -> ConfigError:
    return ConfigError(
        "source",
        f"task {task_name!r}: its bundle is {size / 1024:.0f} KiB, more than the {INLINE_LIMIT // 1024} KiB that "
        "travel inside a task template, and this serialization has no Flyte connection to upload it through "
        "(pyflyte package, or get_serializable outside a FlyteRemote's context). Register with `pyflyte register` "
        "or `pyflyte run --remote`, which upload it where they upload your code; or name a store: "
        f"bundle_store='s3://bucket/prefix' on the task, or ${STORE_VARIABLE} for every task; or ignore files "
        "to bring it under the limit",
    )
