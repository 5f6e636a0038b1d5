"""Environments that survive pods, and the trust boundary of their store (flytekitplugins-prebuilt issue 17): the
store is only where the platform put it; a task with nothing to install never touches it; an archive is unpacked
only when it matches the digest stored after it, and never out of its folder; a stalled store is a miss within the
build's deadline. Real uv (offline: the requirement is a wheel in the project), real tar, a folder as the store, a
real socket on 127.0.0.1 that never answers as the stalled one (the fresh-container case:
tests/integration/test_script_env_store.py)."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import io
import logging
import os
import shutil
import socket
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.data_persistence import FileAccessProvider
from flytekit.loggers import logger as flytekit_logger
from flytekitplugins.prebuilt.executors.script import env_store, environments
from flytekitplugins.prebuilt.executors.script.locks import MARKER, detect
from flytekitplugins.prebuilt.kit.errors import UserError

PLANTED = "PLANTED-BY-A-WRITER-OF-THE-STORE"


def _wheel(folder: Path) -> Path:
    """A pure-Python wheel of the package ``tiny``, made here: uv installs it with no index (UV_OFFLINE)."""
    files = {
        "tiny/__init__.py": b"VALUE = 1\n",
        "tiny-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tiny\nVersion: 1.0\n",
        "tiny-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    folder.mkdir(parents=True)
    wheel = folder / "tiny-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("tiny-1.0.dist-info/RECORD", "\n".join([*record, "tiny-1.0.dist-info/RECORD,,"]) + "\n")
    return wheel


@pytest.fixture
def spec(tmp_path, monkeypatch):
    """A spec that installs one package, from a wheel in the project."""
    monkeypatch.setenv("UV_OFFLINE", "1")
    project = tmp_path / "project"
    _wheel(project / "wheels")
    (project / "requirements.txt").write_text("./wheels/tiny-1.0-py3-none-any.whl\n")
    return detect(project, "requirements")


@pytest.fixture
def log(monkeypatch):
    """What flytekit's logger (which does not propagate) said during the test."""
    records: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: records.append(record.getMessage())
    monkeypatch.setattr(flytekit_logger, "level", logging.INFO)
    flytekit_logger.addHandler(handler)
    yield records
    flytekit_logger.removeHandler(handler)


@pytest.fixture
def stalled_store():
    """An HTTP URL on 127.0.0.1 whose server accepts connections and never answers; its accepted sockets."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed at the end of the test
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/envs", accepted
    server.close()
    for connection in accepted:
        connection.close()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _no_build(*args, **kwargs):
    raise AssertionError("built although the store has it")


def _planted_archive(built: Path, tmp_path: Path) -> bytes:
    """A valid archive of a complete environment (a copy of ``built``) that also holds a file its build never
    wrote: what a writer of the store could put there."""
    venv = tmp_path / "attacker" / built.name
    shutil.copytree(built, venv, symlinks=True)
    (venv / PLANTED).write_text("ran")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(venv, arcname=".")
    return buffer.getvalue()


# ================================================================================================ where


@pytest.mark.parametrize(
    "variable, expected",
    [("s3://team/envs/", "s3://team/envs"), ("off", None), ("", None), (None, None)],
)
def test_the_store_is_only_where_the_platform_configured_it(tmp_path, monkeypatch, variable, expected):
    if variable is None:
        monkeypatch.delenv(env_store.STORE_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(env_store.STORE_VARIABLE, variable)
    # a cluster's context: the raw outputs in a bucket every pod may write; never a place for environments
    access = FileAccessProvider(local_sandbox_dir=str(tmp_path / "sandbox"), raw_output_prefix="s3://bucket/data")
    with FlyteContextManager.with_context(FlyteContextManager.current_context().with_file_access(access)):
        assert env_store.store_prefix() == expected


@pytest.mark.parametrize(
    "variable, value",
    [(env_store.TIMEOUT_VARIABLE, "soon"), (env_store.TIMEOUT_VARIABLE, "0"), (env_store.READONLY_VARIABLE, "maybe")],
)
def test_a_mistake_in_the_stores_variables_is_refused_naming_it(monkeypatch, variable, value):
    monkeypatch.setenv(env_store.STORE_VARIABLE, "s3://team/envs")
    monkeypatch.setenv(variable, value)
    with pytest.raises(UserError, match=variable):
        env_store.store_prefix()


# ================================================================================================ nothing to install


@pytest.mark.parametrize("requirements", [None, "# nothing pinned yet\n"])
def test_a_task_with_nothing_to_install_never_reads_or_writes_the_store(tmp_path, requirements):
    project = tmp_path / "project"
    project.mkdir()
    if requirements is not None:
        (project / "requirements.txt").write_text(requirements)
    spec = detect(project, "auto")
    store = tmp_path / "store"
    built = environments.ensure_environment(spec, tmp_path / "pod1", store=str(store))
    assert _files(store) == []  # nothing written

    planted = Path(env_store.archive_uri(str(store), spec.name))  # a complete, digest-matching archive: not read
    planted.parent.mkdir(parents=True)
    planted.write_bytes(_planted_archive(built, tmp_path))
    Path(env_store.digest_uri(str(store), spec.name)).write_text(_sha256(planted) + "\n")
    venv = environments.ensure_environment(spec, tmp_path / "pod2", store=str(store))
    assert (venv / MARKER).is_file() and not (venv / PLANTED).exists()


# ================================================================================================ digests


def test_an_environment_built_once_is_unpacked_by_an_empty_cache_without_building(tmp_path, spec, monkeypatch):
    store = str(tmp_path / "store")
    first = environments.ensure_environment(spec, tmp_path / "pod1", store=store)
    (archive,) = Path(store).glob(f"*/{first.name}.tar.gz")
    assert archive == Path(env_store.archive_uri(store, first.name))
    assert Path(env_store.digest_uri(store, first.name)).read_text() == _sha256(archive) + "\n"

    monkeypatch.setattr(environments, "_build", _no_build)
    second = environments.ensure_environment(spec, tmp_path / "pod2", store=store)  # a fresh pod's empty disk
    assert (second / MARKER).read_text() == (first / MARKER).read_text()
    assert second.name == first.name and second.parent == tmp_path / "pod2"
    assert list(second.glob("lib/python*/site-packages/tiny/__init__.py"))
    assert not list((tmp_path / "pod2").glob(".*building*"))


@pytest.mark.parametrize("damage", ["truncated", "altered", "digest-less", "digest not a sha256", "archive gone"])
def test_an_archive_that_does_not_match_its_digest_is_rebuilt_and_replaced_never_run(tmp_path, spec, damage):
    store = str(tmp_path / "store")
    built = environments.ensure_environment(spec, tmp_path / "pod1", store=store)
    name = built.name
    archive, digest = Path(env_store.archive_uri(store, name)), Path(env_store.digest_uri(store, name))
    if damage == "truncated":
        archive.write_bytes(archive.read_bytes()[:200])
    elif damage == "altered":  # a complete environment of this key, replaced by a writer of the archive alone
        archive.write_bytes(_planted_archive(built, tmp_path))
    elif damage == "digest-less":  # e.g. stored before digests, or by a writer who removed it
        archive.write_bytes(_planted_archive(built, tmp_path))
        digest.unlink()
    elif damage == "archive gone":  # its digest is still there: stored again all the same
        archive.unlink()
    else:
        digest.write_text("not a digest\n")

    rebuilt = environments.ensure_environment(spec, tmp_path / "pod2", store=store)
    assert (rebuilt / MARKER).is_file() and not (rebuilt / PLANTED).exists()
    assert digest.read_text() == _sha256(archive) + "\n"  # replaced: archive and digest agree again
    with tarfile.open(archive) as replaced:
        assert f"./{MARKER}" in replaced.getnames() and f"./{PLANTED}" not in replaced.getnames()
    assert not list(archive.parent.glob("*.partial"))


def test_over_http_an_archive_is_unpacked_only_with_its_digest(tmp_path, spec):
    """The same through flytekit's data persistence to a real HTTP server (fsspec's http filesystem)."""
    served = tmp_path / "served"
    built = environments.ensure_environment(spec, tmp_path / "builder", store=str(served / "envs"))
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = f"http://127.0.0.1:{server.server_address[1]}/envs"
    try:
        assert env_store.fetch(store, built.name, tmp_path / "pod1" / built.name) == env_store.FETCHED
        assert (tmp_path / "pod1" / built.name / MARKER).read_text() == (built / MARKER).read_text()
        Path(env_store.digest_uri(str(served / "envs"), built.name)).unlink()
        assert env_store.fetch(store, built.name, tmp_path / "pod2" / built.name) == env_store.UNUSABLE
        assert not (tmp_path / "pod2" / built.name).exists()
        assert env_store.fetch(store, "requirements-absent", tmp_path / "pod3" / "x") == env_store.MISSING
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_unpacking_stays_inside_its_folder_even_with_a_matching_digest(tmp_path):
    """A writer of both the archive and its digest (one store) gets no file written outside the target: GNU tar
    skips ``..`` members, strips a leading ``/`` and never writes through a link it extracted."""
    outside = tmp_path / "outside"
    outside.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in ("../escaped", str(outside / "absolute"), "out/through", "up/through"):
            if name.endswith("through"):
                link = tarfile.TarInfo(name.split("/")[0])
                link.type, link.linkname = tarfile.SYMTYPE, str(outside) if name[0] == "o" else "../outside"
                archive.addfile(link)
            member = tarfile.TarInfo(name)
            member.size = 1
            archive.addfile(member, io.BytesIO(b"x"))
    store = tmp_path / "store"
    uri = Path(env_store.archive_uri(str(store), "requirements-evil"))
    uri.parent.mkdir(parents=True)
    uri.write_bytes(buffer.getvalue())
    Path(env_store.digest_uri(str(store), "requirements-evil")).write_text(_sha256(uri) + "\n")

    target = tmp_path / "env" / "requirements-evil"
    assert env_store.fetch(str(store), "requirements-evil", target) == env_store.UNUSABLE
    assert _files(outside) == [] and not (tmp_path / "env" / "escaped").exists()
    assert not target.exists()


def test_pods_that_only_restore_never_upload(tmp_path, spec, monkeypatch):
    store = str(tmp_path / "store")
    monkeypatch.setenv(env_store.READONLY_VARIABLE, "1")
    environments.ensure_environment(spec, tmp_path / "pod1", store=store)
    assert _files(Path(store)) == []

    monkeypatch.delenv(env_store.READONLY_VARIABLE)  # the platform's build identity fills the store
    built = environments.ensure_environment(spec, tmp_path / "builder", store=store)
    monkeypatch.setenv(env_store.READONLY_VARIABLE, "1")
    monkeypatch.setattr(environments, "_build", _no_build)
    restored = environments.ensure_environment(spec, tmp_path / "pod2", store=store)
    assert (restored / MARKER).read_text() == (built / MARKER).read_text()


# ================================================================================================ a stalled store


def test_a_stalled_store_falls_back_to_installing_and_is_not_uploaded_to(
    tmp_path, spec, monkeypatch, log, stalled_store
):
    store, accepted = stalled_store
    monkeypatch.setenv(env_store.TIMEOUT_VARIABLE, "1")
    venv = environments.ensure_environment(spec, tmp_path / "pod", store=store)
    assert list(venv.glob("lib/python*/site-packages/tiny/__init__.py"))  # installed here
    assert accepted  # the store was asked
    assert any("does not answer" in line for line in log)
    assert not any("cannot store" in line or " stored at " in line for line in log)  # no upload tried


def test_store_requests_end_by_the_builds_deadline(tmp_path, spec, monkeypatch, stalled_store):
    """The default request timeout (30 s) is longer than what is left: the deadline is what bounds the wait."""
    store, accepted = stalled_store
    monkeypatch.delenv(env_store.TIMEOUT_VARIABLE, raising=False)
    target = tmp_path / "env" / spec.name
    assert env_store.fetch(store, spec.name, target, deadline=time.monotonic() + 2) == env_store.STALLED
    assert not target.exists() and accepted

    venv = environments.ensure_environment(spec, tmp_path / "pod", store=None)
    env_store.publish(store, spec.name, venv, deadline=time.monotonic() + 1)  # returns: logged, never raised
    assert os.path.isdir(venv)


def test_a_stalled_store_gets_no_more_than_the_tasks_deadline(tmp_path, spec, monkeypatch, stalled_store):
    """A task's deadline (the executors pass ``deadline_seconds`` as ``store_seconds``) bounds the store's requests:
    a store that never answers costs at most that, not the 30 s a request may take, and the pod installs instead."""
    store, accepted = stalled_store
    monkeypatch.delenv(env_store.TIMEOUT_VARIABLE, raising=False)
    started = time.monotonic()
    venv = environments.ensure_environment(spec, tmp_path / "pod", store=store, store_seconds=2)
    assert os.path.isdir(venv) and accepted
    assert time.monotonic() - started < 25
