"""Environments that survive pods: where the store is, and a build uploaded by one empty cache and unpacked by
another without building anything; a bad archive is rebuilt and replaced. Real uv, real tar, a folder as the
store (the fresh-container case: tests/integration/test_script_env_store.py)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from flytekitplugins.prebuilt.executors.script import env_store, environments
from flytekitplugins.prebuilt.executors.script.locks import MARKER, detect


@pytest.fixture
def spec(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    return detect(project, "none")  # nothing to install: uv builds the environment offline


@pytest.mark.parametrize(
    "variable, raw, expected",
    [
        ("s3://team/envs/", "s3://bucket/data/ab/exec-n0-0", "s3://team/envs"),
        ("off", "s3://bucket/data/ab/exec-n0-0", None),
        ("", "s3://bucket/data/ab/exec-n0-0", "s3://bucket/prebuilt-envs"),
        ("", "gs://bucket/data/ab/exec-n0-0", "gs://bucket/prebuilt-envs"),
        ("", "/tmp/flyte/raw/ab/exec", None),  # a local run: its disk cache is enough
    ],
)
def test_where_environments_are_stored(monkeypatch, variable, raw, expected):
    monkeypatch.setenv(env_store.STORE_VARIABLE, variable)
    assert env_store.store_prefix(raw) == expected


def test_by_default_a_local_run_stores_nothing(monkeypatch):
    monkeypatch.delenv(env_store.STORE_VARIABLE, raising=False)
    assert env_store.store_prefix() is None  # the context's raw output prefix is a local folder


def test_an_environment_built_once_is_unpacked_by_an_empty_cache_without_building(tmp_path, spec, monkeypatch):
    store = str(tmp_path / "store")
    first = environments.ensure_environment(spec, tmp_path / "pod1", store=store)
    (archive,) = Path(store).glob(f"*/{first.name}.tar.gz")
    assert archive == Path(env_store.archive_uri(store, first.name))

    def no_build(*args, **kwargs):
        raise AssertionError("built although the store has it")

    monkeypatch.setattr(environments, "_build", no_build)
    second = environments.ensure_environment(spec, tmp_path / "pod2", store=store)  # a fresh pod's empty disk
    assert (second / MARKER).read_text() == (first / MARKER).read_text()
    assert second.name == first.name and second.parent == tmp_path / "pod2"
    assert environments.venv_python(second).exists()
    assert not list((tmp_path / "pod2").glob(".*building*"))


def test_a_bad_archive_is_rebuilt_and_replaced(tmp_path, spec):
    store = str(tmp_path / "store")
    name = environments.ensure_environment(spec, tmp_path / "pod1", store=store).name
    archive = Path(env_store.archive_uri(store, name))
    archive.write_bytes(archive.read_bytes()[:200])  # truncated
    rebuilt = environments.ensure_environment(spec, tmp_path / "pod2", store=store)
    assert (rebuilt / MARKER).is_file()
    with tarfile.open(archive) as replaced:
        assert f"./{MARKER}" in replaced.getnames()
    assert not list(archive.parent.glob("*.partial"))
