"""`@task`'s keywords on every prebuilt task type (sql, script, train), each checked where Flyte reads it in the
registered template (flytekit's own serializer, `get_serializable`), and a bad value refused naming the field."""

from collections import OrderedDict
from pathlib import Path

import pytest
from flytekit import Cache, ImageSpec, PodTemplate, Resources
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.extras.accelerators import T4
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.kit import ConfigError
from flytekitplugins.prebuilt.kit.contract import identity
from flytekitplugins.prebuilt.kit.images import default_image
from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask
from flytekitplugins.prebuilt.sql import SQLTask
from flytekitplugins.prebuilt.train import TrainTask
from kubernetes.client import V1Container, V1PodSpec, V1Volume

GOLDEN = Path(__file__).parent / "golden"
SETTINGS = SerializationSettings(project="p", domain="d", version="v1", image_config=ImageConfig.auto_default_image())


def sql(**keywords):
    return SQLTask("q", "select :n as n", url="sqlite://", inputs={"n": int}, **keywords)


def script(**keywords):
    return ScriptTask(
        "s",
        source=str(GOLDEN / "script_src"),
        command=["python", "main.py"],
        inputs={"n": int},
        preset=ScriptPreset.of(dependencies="none"),
        **keywords,
    )


def train(**keywords):
    return TrainTask("t", source=str(GOLDEN / "train_src"), command=["train.py"], inputs={"n": int}, **keywords)


TYPES = {"sql": sql, "script": script, "train": train}
every_type = pytest.mark.parametrize("make", TYPES.values(), ids=TYPES.keys())


def template(task, settings=SETTINGS):
    return get_serializable(OrderedDict(), settings, task).template


def resources_of(container):
    return (
        {r.name: r.value for r in container.resources.requests},
        {r.name: r.value for r in container.resources.limits},
    )


CPU, MEMORY, GPU = 1, 3, 2  # flyteidl core.Resources.ResourceName


@every_type
def test_environment_lands_in_the_container(make):
    """flytekit's base class crashes on `environment` (`{**settings.env}` with no env); settings' env merges in."""
    env = template(make(environment={"LOG_LEVEL": "debug"})).container.env
    assert env == {"LOG_LEVEL": "debug"}
    with_env = SerializationSettings(
        project="p", domain="d", version="v1", image_config=SETTINGS.image_config, env={"FROM_SETTINGS": "1"}
    )
    assert template(make(environment={"A": "x"}), with_env).container.env == {"FROM_SETTINGS": "1", "A": "x"}
    with pytest.raises(ConfigError) as error:
        make(environment={"A": 1})
    assert error.value.field == "environment.A"


@every_type
@pytest.mark.parametrize(
    "given",
    [
        {"requests": Resources(cpu="1", mem="2Gi"), "limits": Resources(cpu="2", mem="4Gi")},
        {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
        {"resources": Resources(cpu=("1", "2"), mem=("2Gi", "4Gi"))},
    ],
    ids=["Resources", "mapping", "resources="],
)
def test_requests_and_limits_as_resources_or_a_mapping(make, given):
    requests, limits = resources_of(template(make(**given)).container)
    assert requests == {CPU: "1", MEMORY: "2Gi"} and limits == {CPU: "2", MEMORY: "4Gi"}


@every_type
def test_bad_resources_are_refused_naming_the_field(make):
    for keywords, field in [
        ({"requests": {"cpu": "2GB"}}, "requests.cpu"),
        ({"limits": Resources(mem="lots")}, "limits.memory"),
        ({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}, "limits.cpu"),
        ({"resources": Resources(cpu="1"), "requests": {"cpu": "1"}}, "resources"),
        ({"requests": Resources(cpu=("1", "2"))}, "requests.cpu"),
        ({"requests": "1 cpu"}, "requests"),
    ]:
        with pytest.raises(ConfigError) as error:
            make(**keywords)
        assert error.value.field == field, keywords


@every_type
def test_pod_template_carries_the_container(make):
    pod = PodTemplate(
        primary_container_name="main",
        labels={"team": "data"},
        pod_spec=V1PodSpec(containers=[V1Container(name="main")], volumes=[V1Volume(name="scratch")]),
    )
    tt = template(make(pod_template=pod, environment={"A": "x"}, requests={"cpu": "1"}))
    assert tt.container is None  # Flyte then reads the pod spec's primary container
    assert tt.config == {"primary_container_name": "main"}
    assert tt.k8s_pod.metadata.labels == {"team": "data"}
    spec = tt.k8s_pod.pod_spec
    assert [v["name"] for v in spec["volumes"]] == ["scratch"]
    (main,) = spec["containers"]
    assert main["name"] == "main" and main["image"] == default_image(make().SPEC.name)
    assert main["args"][-1].startswith("flytekitplugins.prebuilt.executors.")
    assert {"name": "A", "value": "x"} in main["env"] and main["resources"]["requests"] == {"cpu": "1"}
    with pytest.raises(ConfigError) as error:
        make(pod_template={"spec": {}})
    assert error.value.field == "pod_template"


@every_type
def test_pod_template_name_lands_in_the_metadata(make):
    assert template(make(pod_template_name="gpu-nodes")).metadata.pod_template_name == "gpu-nodes"
    with pytest.raises(ConfigError) as error:
        make(pod_template_name=3)
    assert error.value.field == "pod_template_name"


@every_type
def test_accelerator_lands_in_the_extended_resources(make):
    tt = template(make(accelerator=T4))
    assert tt.extended_resources.gpu_accelerator.device == "nvidia-tesla-t4"
    assert template(make()).extended_resources is None
    with pytest.raises(ConfigError) as error:
        make(accelerator="t4")
    assert error.value.field == "accelerator"


@every_type
def test_shared_memory_lands_in_the_extended_resources(make):
    sized = template(make(shared_memory="2Gi")).extended_resources.shared_memory
    assert sized.size_limit == "2Gi" and sized.mount_path == "/dev/shm"
    assert template(make(shared_memory=True)).extended_resources.shared_memory.size_limit == ""
    with pytest.raises(ConfigError) as error:
        make(shared_memory="2GB")
    assert error.value.field == "shared_memory"


@every_type
def test_cache_object_lands_in_the_metadata(make):
    metadata = template(make(cache=Cache(version="v7", serialize=True, ignored_inputs=("n",)))).metadata
    assert metadata.discoverable and metadata.discovery_version == "v7"
    assert metadata.cache_serializable and list(metadata.cache_ignore_input_vars) == ["n"]
    automatic = make(cache=True)
    assert template(automatic).metadata.discovery_version == automatic.identity  # no version: the identity
    with pytest.raises(ConfigError) as error:
        make(cache=Cache(version="1", ignored_inputs=("missing",)))
    assert error.value.field == "cache.ignored_inputs"


@pytest.mark.parametrize("make", [sql, train], ids=["sql", "train"])
def test_enable_deck_is_what_the_template_says(make):
    """sql and train write a Deck: the template says so unless enable_deck=False (then the executor writes none)."""
    assert template(make()).metadata.generates_deck is True
    assert template(make(enable_deck=True)).metadata.generates_deck is True
    assert template(make(enable_deck=False)).metadata.generates_deck is False
    assert make(enable_deck=False).task_template.metadata.generates_deck is False  # what an in-process run executes
    with pytest.raises(ConfigError) as error:
        make(enable_deck="yes")
    assert error.value.field == "enable_deck"


def test_enable_deck_on_a_type_without_a_deck_is_refused():
    assert template(script()).metadata.generates_deck is False
    assert template(script(enable_deck=False)).metadata.generates_deck is False
    with pytest.raises(ConfigError, match="writes no Deck") as error:
        script(enable_deck=True)
    assert error.value.field == "enable_deck"


@every_type
def test_image_spec_as_container_image(make):
    """An ImageSpec is registered as the image it builds to (here already built: found by its id in the image
    configuration, as flytekit looks it up before building), and the identity hashes that name."""
    spec = ImageSpec(name="extended", base_image=default_image(make().SPEC.name), registry="registry.example/team")
    task = make(container_image=spec, cache=True)
    assert task.identity == identity(task.get_custom(SETTINGS), spec.image_name())  # defined: nothing is built
    built = f"registry.example/team/extended:{spec.tag}"
    settings = SerializationSettings(
        project="p",
        domain="d",
        version="v1",
        image_config=ImageConfig.from_images("ghcr.io/example/user:1", {spec.id: built}),
    )
    tt = template(task, settings)
    assert tt.container.image == built
    assert tt.metadata.discovery_version == identity(task.get_custom(SETTINGS), built) == task.identity
    with pytest.raises(ConfigError) as error:
        make(container_image=3)
    assert error.value.field == "container_image"


@every_type
def test_a_named_image_in_the_registrations_image_config_replaces_ours(make):
    """`--image prebuilt-<type>=...` (or the config file's images): a mirror, with the identity and the automatic
    cache_version of the image that will run; a task's own container_image stays as given."""
    kind = make().SPEC.name
    mirror = f"mirror.example/prebuilt-{kind}:0.1.0-py3.11"
    settings = SerializationSettings(
        project="p",
        domain="d",
        version="v1",
        image_config=ImageConfig.validate_image(None, "image", ("ghcr.io/example/user:1", f"prebuilt-{kind}={mirror}")),
    )
    ours, mirrored = template(make(cache=True)), template(make(cache=True), settings)
    assert ours.container.image == default_image(kind) and mirrored.container.image == mirror
    assert mirrored.metadata.discovery_version != ours.metadata.discovery_version
    task = make(cache=True)
    assert template(task, settings).metadata.discovery_version == identity(task.get_custom(SETTINGS), mirror)
    assert template(make(container_image="mine/x:1"), settings).container.image == "mine/x:1"
    pinned = template(make(cache=Cache(version="mine")), settings)
    assert pinned.metadata.discovery_version == "mine"  # a version the author gave is kept
