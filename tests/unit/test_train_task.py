"""The train task type's definition: its contract (golden custom), and every mistake refused when the task is defined,
naming the field."""

import json
from collections import OrderedDict
from pathlib import Path

import pytest
from flyteidl.plugins.kubeflow import pytorch_pb2
from flytekit import Secret
from flytekit.configuration import Image, ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekit.types.directory import FlyteDirectory
from flytekitplugins.prebuilt.kit import ConfigError
from flytekitplugins.prebuilt.kit.backend_plugin import NAMESPACE_KEY
from flytekitplugins.prebuilt.kit.contract import canonical_json
from flytekitplugins.prebuilt.script import ScriptPreset
from flytekitplugins.prebuilt.script.spec import ScriptExtras
from flytekitplugins.prebuilt.train import Elastic, Role, RunPolicy, TrainConfig, TrainPreset, TrainTask
from flytekitplugins.prebuilt.train.config import TENSORBOARD_DIR
from flytekitplugins.prebuilt.train.spec import SPEC
from google.protobuf import json_format

GOLDEN = Path(__file__).parent / "golden"
SOURCE = str(GOLDEN / "train_src")
SETTINGS = SerializationSettings(project="p", domain="d", version="v1", image_config=ImageConfig.auto_default_image())


def golden_train_task() -> TrainTask:
    return TrainTask(
        "golden",
        source=SOURCE,
        config=TrainConfig(
            command=("train.py", "--lr", "{{.inputs.lr}}"),
            processes_per_node=2,
            env={"MODE": "fast"},
            secret_env={"TOKEN": Secret(group="api", key="token")},
            deadline_seconds=600,
            tensorboard_output="logs",
        ),
        inputs={"lr": float},
        outputs={"accuracy": float, "logs": FlyteDirectory},
        requests={"cpu": "2"},
    )


def test_train_custom_is_the_golden_v1():
    """tests/unit/golden/train_custom_v1.json pins schema version 1 of the train type's custom."""
    custom = get_serializable(OrderedDict(), SETTINGS, golden_train_task()).template.custom
    assert canonical_json(custom) == canonical_json(json.loads((GOLDEN / "train_custom_v1.json").read_text()))


def test_the_executor_reads_back_a_typed_train_config_and_the_bundle():
    config, extras = SPEC.load(golden_train_task().get_custom(SETTINGS))
    assert isinstance(config, TrainConfig) and isinstance(extras, ScriptExtras)
    assert config.processes_per_node == 2 and config.nodes == 1 and config.backend == "auto"
    assert config.artifacts == {"logs": TENSORBOARD_DIR}  # the TensorBoard folder is collected as an artifact


def two_node_task(**keywords) -> TrainTask:
    return TrainTask(
        "two_nodes",
        source=SOURCE,
        command=["train.py"],
        nodes=2,
        processes_per_node=2,
        outputs={"a": float},
        **keywords,
    )


def test_one_node_is_a_container_task_of_our_own_type():
    template = get_serializable(OrderedDict(), SETTINGS, golden_train_task()).template
    assert (template.type, template.task_type_version) == ("prebuilt-train", SPEC.schema_version)
    assert NAMESPACE_KEY not in template.custom


def test_several_nodes_are_a_pytorchjob_that_flytes_plugin_decodes_as_it_does():
    """Flyte's pytorch plugin (flyteplugins go/tasks/plugins/k8s/kfoperators/pytorch/pytorch.go) accepts
    task_type_version 1 only, and decodes the whole custom into flyteidl's kubeflow DistributedPyTorchTrainingTask
    with jsonpb's AllowUnknownFields (pluginmachinery/utils/marshal_utils.go): done here the same way."""
    template = get_serializable(OrderedDict(), SETTINGS, two_node_task()).template
    assert (template.type, template.task_type_version) == ("pytorch", 1)  # not our schema version
    job = json_format.ParseDict(
        json.loads(json.dumps(template.custom)),
        pytorch_pb2.DistributedPyTorchTrainingTask(),
        ignore_unknown_fields=True,
    )
    assert job.master_replicas.replicas == 1 and job.worker_replicas.replicas == 1  # master + 1 worker = 2 pods
    assert job.master_replicas.restart_policy == job.worker_replicas.restart_policy == 0  # Never: Flyte retries
    assert not job.HasField("elastic_config")  # the operator then sets MASTER_ADDR and each pod's node rank
    # our contract under one key that no protobuf field name can take, beside the plugin's fields
    assert set(template.custom) == {"masterReplicas", "workerReplicas", NAMESPACE_KEY}
    config, _ = SPEC.load(template.custom)
    assert (config.nodes, config.processes_per_node) == (2, 2)


def test_four_nodes_are_a_master_and_three_workers():
    task = TrainTask("four", source=SOURCE, command=["train.py"], nodes=4, outputs={"a": float})
    custom = get_serializable(OrderedDict(), SETTINGS, task).template.custom
    assert custom["masterReplicas"] == {"replicas": 1} and custom["workerReplicas"] == {"replicas": 3}


def kfpytorch_custom(master, worker, run_policy) -> dict:
    """What flytekit's own PyTorch task writes for the same settings: ``PyTorchFunctionTask.get_custom`` and
    ``_convert_run_policy_to_flyte_idl`` (flytekit plugins/flytekit-kf-pytorch/flytekitplugins/kfpytorch/task.py),
    restated here with the flyteidl messages and flytekit's resource conversion they use."""
    from flyteidl.plugins.kubeflow import common_pb2
    from flytekit import Resources
    from flytekit.core.resources import convert_resources_to_resource_model

    def replica(replicas, image=None, requests=None, limits=None):
        resources = convert_resources_to_resource_model(requests=requests, limits=limits)
        return pytorch_pb2.DistributedPyTorchTrainingReplicaSpec(
            replicas=replicas, image=image, resources=resources.to_flyte_idl() if resources else None
        )

    job = pytorch_pb2.DistributedPyTorchTrainingTask(
        master_replicas=replica(1, **master(Resources)),
        worker_replicas=replica(2, **worker(Resources)),
        run_policy=common_pb2.RunPolicy(**run_policy(common_pb2)),
    )
    return json_format.MessageToDict(job)


def test_the_run_policy_and_roles_are_written_as_kfpytorch_writes_them():
    task = TrainTask(
        "prod",
        source=SOURCE,
        command=["train.py"],
        nodes=3,
        requests={"cpu": "2"},
        run_policy=RunPolicy(
            clean_pod_policy="Running", ttl_seconds_after_finished=600, active_deadline_seconds=7200, backoff_limit=1
        ),
        master=Role(requests={"cpu": 4, "memory": "8Gi"}, limits={"memory": "16Gi"}),
        worker=Role(image="ghcr.io/acme/train:2", requests={"cpu": "3"}),
        outputs={"a": float},
    )
    custom = get_serializable(OrderedDict(), SETTINGS, task).template.custom
    expected = kfpytorch_custom(
        master=lambda R: {"requests": R(cpu="4", mem="8Gi"), "limits": R(mem="16Gi")},
        worker=lambda R: {"image": "ghcr.io/acme/train:2", "requests": R(cpu="3")},
        run_policy=lambda pb: {
            "clean_pod_policy": pb.CLEANPOD_POLICY_RUNNING,
            "ttl_seconds_after_finished": 600,
            "active_deadline_seconds": 7200,
            "backoff_limit": 1,
        },
    )
    assert {k: v for k, v in custom.items() if k != NAMESPACE_KEY} == expected
    job = json_format.ParseDict(custom, pytorch_pb2.DistributedPyTorchTrainingTask(), ignore_unknown_fields=True)
    assert job.run_policy.active_deadline_seconds == 7200 and job.worker_replicas.image == "ghcr.io/acme/train:2"
    config, _ = SPEC.load(custom)  # the executor reads them back, typed
    assert config.master.requests == {"cpu": "4", "memory": "8Gi"} and config.run_policy.backoff_limit == 1


def test_an_elastic_task_is_written_as_kfpytorchs_elastic_writes_it():
    """kfpytorch's ``PytorchElasticFunctionTask.get_custom`` (flytekit plugins/flytekit-kf-pytorch/flytekitplugins/
    kfpytorch/task.py): MAX workers, no master, flyteidl's ``ElasticConfig`` (c10d, MIN, MAX, processes per node,
    restarts) and the run policy; Flyte's plugin then drops the master (flyteplugins kfoperators/pytorch/pytorch.go).
    One node: the container plugin, as kfpytorch's single-node Elastic (a plain pod, no operator)."""
    from flyteidl.plugins.kubeflow import common_pb2

    task = TrainTask(
        "elastic",
        source=SOURCE,
        command=["train.py"],
        processes_per_node=2,
        elastic=Elastic(nnodes="2:4", max_restarts=3),
        run_policy=RunPolicy(backoff_limit=2),
        worker=Role(restart_policy="OnFailure"),
    )
    custom = get_serializable(OrderedDict(), SETTINGS, task).template.custom
    expected = pytorch_pb2.DistributedPyTorchTrainingTask(
        worker_replicas=pytorch_pb2.DistributedPyTorchTrainingReplicaSpec(
            replicas=4, restart_policy=common_pb2.RESTART_POLICY_ON_FAILURE
        ),
        elastic_config=pytorch_pb2.ElasticConfig(
            rdzv_backend="c10d", min_replicas=2, max_replicas=4, nproc_per_node=2, max_restarts=3
        ),
        run_policy=common_pb2.RunPolicy(backoff_limit=2),
    )
    assert task.task_type == "pytorch"
    assert {k: v for k, v in custom.items() if k != NAMESPACE_KEY} == json_format.MessageToDict(expected)
    config, _ = SPEC.load(custom)  # the executor reads it back, typed
    assert (config.nodes, config.min_nodes, config.elastic.max_restarts) == (4, 2, 3)
    assert config.elastic.rdzv_configs == {"timeout": 900, "join_timeout": 900}  # kfpytorch's default
    from flytekitplugins.prebuilt.emulator import replicas  # the emulator reads it as the plugin and operator do

    job = replicas.pytorch_job(custom, 1, "job", 23456)
    assert [pod.name for pod in job.pods] == [f"job-worker-{i}" for i in range(4)] and job.elastic
    assert job.backoff_limit == 2 and job.active_deadline is None and all(pod.restarted for pod in job.pods)
    assert {k: v for k, v in job.pods[1].env.items() if k.startswith("PET_")} == {
        "PET_RDZV_ENDPOINT": "127.0.0.1:23456",
        "PET_RDZV_BACKEND": "c10d",
        "PET_NNODES": "2:4",
        "PET_MAX_RESTARTS": "3",
        "PET_NPROC_PER_NODE": "2",
    }
    one = TrainTask("one", source=SOURCE, command=["train.py"], elastic=Elastic(nnodes=1, max_restarts=2))
    assert one.task_type == "prebuilt-train" and SPEC.load(one.get_custom(None))[0].elastic.max_restarts == 2


def test_without_a_run_policy_or_roles_every_replica_gets_the_containers():
    custom = get_serializable(OrderedDict(), SETTINGS, two_node_task()).template.custom
    assert "runPolicy" not in custom and custom["masterReplicas"] == custom["workerReplicas"] == {"replicas": 1}


def test_our_key_is_rejected_by_a_strict_decoder():
    """The contract depends on the plugin ignoring unknown keys (flyteplugins
    go/tasks/pluginmachinery/utils/marshal_utils.go, UnmarshalStruct: jsonpb.Unmarshaler{AllowUnknownFields: true}).
    A strict decoder refuses our key: should Flyte ever decode strictly, this test says why multi-node tasks broke."""
    custom = get_serializable(OrderedDict(), SETTINGS, two_node_task()).template.custom
    with pytest.raises(json_format.ParseError, match=NAMESPACE_KEY):
        json_format.ParseDict(json.loads(json.dumps(custom)), pytorch_pb2.DistributedPyTorchTrainingTask())


def test_a_multi_node_tasks_identity_covers_the_plugins_fields():
    assert (
        two_node_task().identity
        != TrainTask(
            "two_nodes", source=SOURCE, command=["train.py"], processes_per_node=2, outputs={"a": float}
        ).identity
    )


def test_a_task_requesting_gpus_runs_in_the_cuda_image_and_a_registration_can_mirror_each_variant():
    cpu = TrainTask("cpu", source=SOURCE, command=["train.py"], processes_per_node=2)
    gpu = TrainTask("gpu", source=SOURCE, command=["train.py"], requests={"gpu": 1})
    assert cpu.container_image.endswith("-py3.11") and gpu.container_image.endswith("-py3.11-cuda")
    assert cpu.container_image.rsplit(":", 1)[0] == gpu.container_image.rsplit(":", 1)[0]  # one repository
    mirrors = ImageConfig.create_from(
        default_image=None,
        other_images=[
            Image.look_up_image_info("prebuilt-train", "mirror.example/train:cpu"),
            Image.look_up_image_info("prebuilt-train-cuda", "mirror.example/train:cuda"),
        ],
    )
    settings = SerializationSettings(project="p", domain="d", version="v1", image_config=mirrors)
    assert get_serializable(OrderedDict(), settings, gpu).template.container.image == "mirror.example/train:cuda"
    assert get_serializable(OrderedDict(), settings, cpu).template.container.image == "mirror.example/train:cpu"
    pinned = TrainTask("pinned", source=SOURCE, command=["train.py"], requests={"gpu": 1}, container_image="my/img:1")
    assert pinned.container_image == "my/img:1"  # container_image= overrides the choice


def test_the_template_runs_pyflyte_execute_with_the_checkpoint_prefixes():
    template = get_serializable(OrderedDict(), SETTINGS, golden_train_task()).template
    args = template.container.args
    assert args[args.index("--checkpoint-path") + 1] == "{{.checkpointOutputPrefix}}"
    assert args[args.index("--prev-checkpoint") + 1] == "{{.prevCheckpointPrefix}}"
    assert args.index("--prev-checkpoint") < args.index("--resolver")
    assert template.type == "prebuilt-train" and template.metadata.runtime.version  # flytekit's runtime metadata


def test_gpus_in_kubernetes_units_reach_the_container_resources():
    task = TrainTask("gpu", source=SOURCE, command=["train.py"], requests={"gpu": 2, "cpu": "8"}, limits={"gpu": 2})
    resources = get_serializable(OrderedDict(), SETTINGS, task).template.container.resources
    assert {(e.name, e.value) for e in resources.requests} >= {(2, "2")}  # ResourceName.GPU == 2
    assert task.config.processes_per_node == 0  # one per GPU, decided where the GPUs are


@pytest.mark.parametrize(
    "keywords, field, message",
    [
        ({"nodes": 0}, "config.nodes", "expected an integer >= 1"),
        ({"command": ["python", "train.py"]}, "config.command", "start it with the script"),
        ({"command": ["torchrun", "train.py"]}, "config.command", "start it with the script"),
        ({"command": ["-m"]}, "config.command", "'-m' must be followed by a module name"),
        ({"command": ["-m", "not a module"]}, "config.command", "'-m' must be followed by a module name"),
        ({"command": ["/abs/train.py"]}, "config.command", "expected a script path inside the bundle"),
        ({"command": ["missing.py"]}, "config.command", "'missing.py' is not in the bundle"),
        ({"command": ["train.py"], "shell": True}, "config.shell", "launched by torchrun, not a shell"),
        ({"processes_per_node": -1}, "config.processes_per_node", "expected an integer >= 0"),
        ({"backend": "mpi"}, "config.backend", "'mpi' is not one of auto, nccl, gloo"),
        ({"backend": "nccl"}, "config.backend", "nccl needs GPUs"),
        ({"env": {"RANK": "3"}}, "config.env.RANK", "is set or read by torchrun"),
        ({"env": {"PET_NNODES": "2"}}, "config.env.PET_NNODES", "is set or read by torchrun"),
        ({"env": {"PREBUILT_DIST_BACKEND": "mpi"}}, "config.env.PREBUILT_DIST_BACKEND", "is set by the executor"),
        ({"tensorboard_output": "logs", "artifacts": {"logs": "runs/"}}, "config.tensorboard_output", "remove it"),
        ({"tensorboard_output": "accuracy"}, "outputs.accuracy", "must be FlyteFile, FlyteDirectory"),
        ({"requests": {"gpu": "1.5"}}, "requests.gpu", "GPUs are whole devices"),
        ({"requests": {"gpu": 1}, "processes_per_node": 2}, "config.processes_per_node", "nccl needs a GPU per"),
        ({"retires": 2}, "retires", "unknown keyword argument"),
        ({"collective_timeout_seconds": 0}, "config.collective_timeout_seconds", "expected an integer >= 1"),
        ({"checkpoint_max_size": "20GB"}, "config.checkpoint_max_size", "not a Kubernetes quantity"),
        ({"run_policy": RunPolicy(backoff_limit=2)}, "config.run_policy", "set nodes > 1"),
        ({"master": Role()}, "config.master", "set nodes > 1"),
        ({"nodes": 2, "run_policy": RunPolicy(clean_pod_policy="all")}, "config.run_policy.clean_pod_policy", "'all'"),
        (
            {"nodes": 2, "run_policy": RunPolicy(active_deadline_seconds=0)},
            "config.run_policy.active_deadline_seconds",
            "expected an integer >= 1",
        ),
        (
            {"nodes": 2, "run_policy": RunPolicy(ttl_seconds_after_finished=1.5)},
            "config.run_policy.ttl_seconds_after_finished",
            "expected int",
        ),
        ({"nodes": 2, "master": Role(requests={"cpu": "2 cores"})}, "config.master.requests.cpu", "not a Kubernetes"),
        ({"nodes": 2, "worker": Role(requests={"memroy": "1Gi"})}, "config.worker.requests.memroy", "unknown resource"),
        (
            {"nodes": 2, "worker": Role(requests={"cpu": "2"}, limits={"cpu": "1"})},
            "config.worker.limits.cpu",
            "below the request",
        ),
        ({"nodes": 2, "worker": Role(image="my image")}, "config.worker.image", "not an image reference"),
        ({"nodes": 2, "worker": Role(limits={"gpu": 1})}, "config.worker.limits.gpu", "1 GPU(s) where the task has 0"),
        ({"elastic": Elastic(nnodes="3:2")}, "config.elastic.nnodes", "needs 1 <= MIN <= MAX (MIN 3, MAX 2)"),
        ({"elastic": Elastic(nnodes="0:2")}, "config.elastic.nnodes", "needs 1 <= MIN <= MAX"),
        ({"elastic": Elastic(nnodes="two")}, "config.elastic.nnodes", "expected a number or 'MIN:MAX'"),
        ({"elastic": Elastic(nnodes="1:2:3")}, "config.elastic.nnodes", "expected a number or 'MIN:MAX'"),
        ({"elastic": Elastic(nnodes=2, max_restarts=-1)}, "config.elastic.max_restarts", "expected an integer >= 0"),
        ({"elastic": Elastic(rdzv_configs={"join_timeout": "9"})}, "config.elastic.rdzv_configs.join_timeout", "int"),
        ({"nodes": 3, "elastic": Elastic(nnodes="1:2")}, "config.nodes", "elastic.nnodes's MAX (2); leave nodes out"),
        ({"elastic": Elastic(nnodes=2), "master": Role()}, "config.master", "an elastic job has no master"),
        ({"nodes": 2, "worker": Role(restart_policy="OnFailure")}, "config.worker.restart_policy", "elastic jobs only"),
        (
            {"elastic": Elastic(nnodes=2), "worker": Role(restart_policy="Sometimes")},
            "config.worker.restart_policy",
            "'Sometimes' is not one of Never, OnFailure, Always",
        ),
    ],
)
def test_mistakes_are_refused_at_definition_naming_the_field(keywords, field, message):
    keywords = {"command": ["train.py"], **keywords}
    with pytest.raises(ConfigError) as error:
        TrainTask("t", source=SOURCE, outputs={"accuracy": float}, **keywords)
    assert error.value.field == field and message in str(error.value)


def test_two_processes_on_cpus_with_gloo_and_a_module_entry_point():
    task = TrainTask("m", source=SOURCE, command=["-m", "train", "--x", "1"], processes_per_node=2)
    assert task.config.command == ("-m", "train", "--x", "1") and task.config.script == ""
    assert TrainTask("s", source=SOURCE, command=["./train.py"], backend="gloo").config.script == "train.py"


def test_presets_build_train_configs_and_script_presets_are_adopted():
    cpu = TrainPreset.of(processes_per_node=2, deadline_seconds=600, requests={"cpu": "2"}, env={"A": "1"})
    task = TrainTask("p", source=SOURCE, command=["train.py"], preset=cpu.extend(env={"B": "2"}, nodes=1))
    assert isinstance(task.config, TrainConfig) and task.config.processes_per_node == 2
    assert task.config.env == {"A": "1", "B": "2"} and task.config.deadline_seconds == 600
    assert task.resources.requests.cpu == "2"  # the preset's resources travel with it
    shared = ScriptPreset.of(dependencies="none", secret_env={"TOKEN": Secret(group="g", key="k")})
    adopted = TrainTask("s", source=SOURCE, command=["train.py"], preset=shared, processes_per_node=3)
    assert adopted.config.dependencies == "none" and adopted.config.processes_per_node == 3
    assert [s.key for s in adopted.security_context.secrets] == ["k"]
    with pytest.raises(ConfigError, match="not a TrainConfig field"):
        TrainPreset.of(processes=2)
    with pytest.raises(ConfigError, match="not a ScriptConfig field"):
        ScriptPreset.of(processes_per_node=2)  # a script preset stays a script preset


def test_config_or_keywords_not_both():
    with pytest.raises(ConfigError, match="give either config, or command"):
        TrainTask("c", source=SOURCE, config=TrainConfig(command=("train.py",)), command=["train.py"])
    with pytest.raises(ConfigError, match="not both"):
        TrainTask("c", source=SOURCE, config=TrainConfig(command=("train.py",)), processes_per_node=2)
