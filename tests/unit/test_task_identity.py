"""The content identity (the automatic ``cache_version``) covers what changes a task's outputs: its config, image,
container environment and the secrets it requests; not where or how big its pod is (``kit.contract``)."""

from collections import OrderedDict
from pathlib import Path

import pytest
from flytekit import Resources, Secret
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask
from flytekitplugins.prebuilt.sql import SQLTask

GOLDEN = Path(__file__).parent / "golden"


def settings(**env) -> SerializationSettings:
    return SerializationSettings(
        project="p", domain="d", version="v1", image_config=ImageConfig.auto_default_image(), env=env or None
    )


def sql(**keywords):
    return SQLTask(
        "q", "select current_timestamp as now", url="postgresql://reader@db:5432/app", cache=True, **keywords
    )


def script(**keywords):
    source = str(GOLDEN / "script_src")
    return ScriptTask(
        "s", source=source, command=["python", "main.py"], preset=ScriptPreset.of(dependencies="none"), cache=True,
        **keywords,
    )  # fmt: skip


def registered_cache_version(task, registration=None) -> str:
    return get_serializable(OrderedDict(), registration or settings(), task).template.metadata.discovery_version


@pytest.mark.parametrize("build", [sql, script], ids=["sql", "script"])
def test_tasks_differing_only_in_environment_have_different_cache_versions(build):
    utc, paris = build(environment={"TZ": "UTC"}), build(environment={"TZ": "Europe/Paris"})
    assert utc.metadata.cache_version == utc.identity != paris.identity == paris.metadata.cache_version
    assert registered_cache_version(utc) != registered_cache_version(paris)
    assert build(environment={"TZ": "UTC"}).identity == utc.identity  # the same environment: the same task
    assert build().identity not in (utc.identity, paris.identity)


def test_the_registrations_environment_counts_as_the_tasks():
    """``pyflyte register --env K=V`` puts K in the container: the cache registered with it is another one."""
    task = sql()
    plain = registered_cache_version(task)
    assert registered_cache_version(task, settings(TZ="Europe/Paris")) != plain
    assert registered_cache_version(task, settings()) == plain


def test_a_secret_requested_beyond_the_config_counts_by_its_request():
    plain = sql()
    staging = sql(secret_requests=[Secret(group="staging", key="token")])
    production = sql(secret_requests=[Secret(group="production", key="token")])
    as_file = sql(secret_requests=[Secret(group="staging", key="token", mount_requirement=Secret.MountType.FILE)])
    assert len({plain.identity, staging.identity, production.identity, as_file.identity}) == 4


def test_resources_and_retries_leave_the_identity_as_flytes_cache_key_does():
    plain = sql()
    other = sql(requests=Resources(cpu="2", mem="4Gi"), limits=Resources(cpu="4", mem="8Gi"), retries=3)
    assert other.identity == plain.identity
