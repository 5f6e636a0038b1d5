"""Registration's uploads, as Flyte Admin's data proxy takes them, into the emulator's object store (a folder).

``pyflyte register`` and ``pyflyte run --remote`` serialize inside their FlyteRemote's context, whose data location
is ``flyte://data`` (flytekit ``clis/sdk_in_container/register.py``, ``run.py``). A file written there goes through
flytekit's ``FlyteFS`` (``remote/remote_fs.py``) to ``FlyteRemote.upload_file`` (``remote/remote.py``), which asks
Admin for a signed URL (``CreateUploadLocation``) and returns the object's native URL,
``<bucket>/<prefix>/<project>/<domain>/<filename_root>/<file name>`` (flyteorg/flyte
``flyteadmin/dataproxy/service.go``), with ``filename_root`` the base32 md5 of the content that ``FlyteFS`` computes.

Here the same ``FlyteFS`` runs, over a stand-in for the remote whose ``upload_file`` copies the file to that path
under the emulator's root (the bucket): what a task does with ``flyte://`` during serialization is what it does at
registration, and its template names a location the emulated pods can read.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pathlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Optional

from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.data_persistence import FileAccessProvider
from flytekit.remote.remote_fs import REMOTE_PLACEHOLDER, get_flyte_fs
from flytekit.tools.script_mode import hash_file


class DataProxy:
    """What ``FlyteFS`` needs of a ``FlyteRemote``: its default project and domain, and ``upload_file``."""

    def __init__(self, root: str, project: str, domain: str):
        self.root, self.default_project, self.default_domain = root, project, domain

    def upload_file(
        self,
        to_upload: pathlib.Path,
        project: Optional[str] = None,
        domain: Optional[str] = None,
        filename_root: Optional[str] = None,
    ) -> tuple[bytes, str]:
        md5_bytes, _, _ = hash_file(to_upload)
        folder = filename_root or base64.b32encode(md5_bytes).decode()
        target = os.path.join(self.root, project or self.default_project, domain or self.default_domain, folder)
        os.makedirs(target, exist_ok=True)
        final = os.path.join(target, to_upload.name)
        partial = f"{final}.{uuid.uuid4().hex[:8]}.partial"  # an object appears whole, as a PUT makes it
        shutil.copyfile(to_upload, partial)
        os.replace(partial, final)
        return md5_bytes, final


class _RegistrationFileAccess(FileAccessProvider):
    """flytekit's file access with ``flyte://`` served by ``FlyteFS`` over a ``DataProxy``, as FlyteRemote registers
    it with fsspec, but for this context only."""

    def __init__(self, proxy: DataProxy, **kwargs):
        self._flyte_fs = get_flyte_fs(remote=proxy)  # type: ignore[arg-type]  (set first: __init__ asks for one)
        super().__init__(**kwargs)

    def get_filesystem(self, protocol: Optional[str] = None, anonymous: bool = False, path=None, **kwargs):
        if protocol == "flyte":
            return self._flyte_fs(**kwargs)
        return super().get_filesystem(protocol, anonymous=anonymous, path=path, **kwargs)


@contextlib.contextmanager
def registration_context(root: str, project: str, domain: str) -> Iterator[None]:
    """Serialize as ``pyflyte register`` does: inside a context whose data location is ``flyte://data``, its uploads
    landing in ``root`` where Admin's data proxy would put them."""
    current = FlyteContextManager.current_context().file_access
    with tempfile.TemporaryDirectory(prefix="emulator-registration-") as sandbox:
        file_access = _RegistrationFileAccess(
            DataProxy(root, project, domain),
            local_sandbox_dir=sandbox,
            raw_output_prefix=REMOTE_PLACEHOLDER,
            data_config=current.data_config,
        )
        with FlyteContextManager.with_context(FlyteContextManager.current_context().with_file_access(file_access)):
            yield
