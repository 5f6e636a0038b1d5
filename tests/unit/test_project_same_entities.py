"""A task written in YAML is the task the Python API builds: same TaskTemplate, identity and cache_version (for every
task type); a pipeline is a workflow whose steps pass outputs to inputs; a trigger is a scheduled launch plan."""

import textwrap
from collections import OrderedDict
from pathlib import Path

import pytest
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.models.security import Secret
from flytekit.tools.translator import get_serializable
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekitplugins.prebuilt.project import load
from flytekitplugins.prebuilt.script import ScriptConfig, ScriptTask
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask
from flytekitplugins.prebuilt.train import TrainConfig, TrainTask

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = SerializationSettings(
    project="p", domain="development", version="v1", image_config=ImageConfig.auto_default_image()
)


def serialized(entity):
    return get_serializable(OrderedDict(), SETTINGS, entity)


def same(yaml_task, python_task) -> None:
    assert serialized(yaml_task).template.to_flyte_idl() == serialized(python_task).template.to_flyte_idl()
    assert yaml_task.identity == python_task.identity
    assert yaml_task.metadata.cache_version == python_task.metadata.cache_version


def project_file(tmp_path, text: str) -> Path:
    path = tmp_path / "flyte-prebuilt.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_sql_task(tmp_path):
    loaded = load(
        project_file(
            tmp_path,
            """\
            project: shop
            tasks:
              - name: big_orders
                type: sql
                query: select customer from orders where amount >= :min_amount
                url: postgresql://reader@db:5432/sales
                password_secret: { group: sales-db, key: password }
                connect_args: { connect_timeout: 10 }
                batch_rows: 5000
                inputs: { min_amount: float }
                resources: { cpu: "1", memory: 1Gi }
                retries: 2
                cache: true
            """,
        )
    )
    from flytekit import Resources

    python = SQLTask(
        name="shop.big_orders",
        query_template="select customer from orders where amount >= :min_amount",
        config=SQLConfig(
            url="postgresql://reader@db:5432/sales",
            password_secret=Secret(group="sales-db", key="password"),
            connect_args={"connect_timeout": 10},
            batch_rows=5000,
        ),
        inputs={"min_amount": float},
        requests=Resources(cpu="1", mem="1Gi"),
        retries=2,
        cache=True,
    )
    same(loaded.tasks["big_orders"], python)
    assert python.metadata.cache_version == python.identity  # cache: true without a version is the identity


def test_script_task_with_ame_spellings(tmp_path):
    (tmp_path / "train.py").write_text("print('train')\n")
    (tmp_path / "requirements.txt").write_text("six\n")
    loaded = load(
        project_file(
            tmp_path,
            """\
            project: ml
            templates:
              - name: gpu
                resources: { memory: 10G, cpu: 4, storage: 30G, nvidia.com/gpu: 1 }
                environment: [{ key: MODE, val: fast }]
            tasks:
              - name: train
                fromTemplate: gpu
                executor: !pip
                  pythonVersion: 3.11
                  command: python train.py --epochs {{.inputs.epochs}}
                secrets:
                  - { group: blob, key: token, injectAs: BLOB_TOKEN }
                env: { SEED: "7" }
                artifacts:
                  paths: { model: out/model.pt, runs: runs/ }
                  saveChangedFiles: true
                inputs: { epochs: int }
                outputs: { accuracy: float }
                deadline_seconds: 600
                retries: 1
                cache: true
                cache_version: "2"
            """,
        )
    )
    python = ScriptTask(
        name="ml.train",
        source=str(tmp_path),
        config=ScriptConfig(
            command=("python", "train.py", "--epochs", "{{.inputs.epochs}}"),
            dependencies="requirements",
            env={"MODE": "fast", "SEED": "7"},
            secret_env={"BLOB_TOKEN": Secret(group="blob", key="token")},
            artifacts={"model": "out/model.pt", "runs": "runs"},
            changed_files_output="changed_files",
            deadline_seconds=600,
        ),
        inputs={"epochs": int},
        outputs={"accuracy": float, "model": FlyteFile, "runs": FlyteDirectory, "changed_files": FlyteDirectory},
        requests={"memory": "10G", "cpu": 4, "ephemeral_storage": "30G", "gpu": 1},
        retries=1,
        cache=True,
        cache_version="2",
    )
    same(loaded.tasks["train"], python)


def test_train_task(tmp_path):
    (tmp_path / "train.py").write_text("print('train')\n")
    loaded = load(
        project_file(
            tmp_path,
            """\
            project: ml
            tasks:
              - name: fit
                type: train
                command: [train.py, --lr, "{{.inputs.lr}}"]
                dependencies: none
                processes_per_node: 2
                backend: gloo
                tensorboard_output: board
                inputs: { lr: float }
                outputs: { loss: float, board: directory }
                resources: { cpu: "2" }
                cache: true
            """,
        )
    )
    python = TrainTask(
        name="ml.fit",
        source=str(tmp_path),
        config=TrainConfig(
            command=("train.py", "--lr", "{{.inputs.lr}}"),
            dependencies="none",
            processes_per_node=2,
            backend="gloo",
            tensorboard_output="board",
        ),
        inputs={"lr": float},
        outputs={"loss": float, "board": FlyteDirectory},
        requests={"cpu": "2"},
        cache=True,
    )
    same(loaded.tasks["fit"], python)


@pytest.fixture(scope="module")
def example():
    return load(ROOT / "examples" / "project")


def test_a_pipeline_is_a_workflow_whose_steps_pass_outputs_to_inputs(example):
    spec = serialized(example.pipelines["report"].workflow)
    template = spec.template
    nodes = {n.id: n for n in template.nodes}
    names = {n.id: n.task_node.reference_id.name for n in template.nodes}
    assert sorted(names.values()) == ["shop.count", "shop.extract", "shop.summary", "shop.total"]
    by_task = {name: nodes[node_id] for node_id, name in names.items()}
    extract = [i for i, n in names.items() if n == "shop.extract"][0]
    for parallel in ("shop.count", "shop.total"):  # one group: both after extract, neither after the other
        assert by_task[parallel].upstream_node_ids == [extract]
        (binding,) = by_task[parallel].inputs
        assert (binding.var, binding.binding.promise.node_id, binding.binding.promise.var) == (
            "orders",
            extract,
            "orders",
        )
    summary = by_task["shop.summary"]
    assert sorted(summary.upstream_node_ids) == sorted(i for i, n in names.items() if n in ("shop.count", "shop.total"))
    assert list(template.interface.inputs) == ["rows"]
    assert list(template.interface.outputs) == ["line"]
    assert template.id.name == "shop.report"


def test_a_trigger_is_a_launch_plan_with_its_schedule_and_inputs(example):
    plan = serialized(example.launch_plans["report"])
    assert plan.id.name == "shop.report.schedule"
    assert plan.spec.entity_metadata.schedule.cron_schedule.schedule == "0 6 * * *"
    assert plan.spec.default_inputs.parameters["rows"].default.scalar.primitive.integer == 100


def test_a_scheduled_task_gets_a_one_node_workflow(tmp_path):
    loaded = load(
        project_file(
            tmp_path,
            """\
            project: shop
            tasks:
              - name: nightly_count
                type: sql
                query: select count(*) from orders where day = :day
                sqlite_file: s3://bucket/shop.db
                inputs: { day: str }
                triggers: { schedule: "@daily", inputs: { day: today } }
            """,
        )
    )
    workflow = serialized(loaded.wrappers["nightly_count"]).template
    assert [n.task_node.reference_id.name for n in workflow.nodes] == ["shop.nightly_count"]
    plan = serialized(loaded.launch_plans["nightly_count"])
    assert plan.spec.workflow_id.name == "shop.nightly_count"
    assert plan.spec.entity_metadata.schedule.cron_schedule.schedule == "@daily"
    assert set(loaded.entities) == {"nightly_count", "nightly_count_workflow", "nightly_count_schedule"}


def test_an_alias_is_the_same_entity(example):
    assert example.entities["nightly"] is example.entities["report"]


def test_a_multi_node_train_tasks_run_policy_and_roles(tmp_path):
    """The PyTorchJob's settings are config fields: a project file gives them as nested mappings, and a mistake in
    them names the YAML key."""
    from flytekitplugins.prebuilt.train import Role, RunPolicy

    (tmp_path / "train.py").write_text("print('train')\n")
    text = """\
        project: ml
        tasks:
          - name: fit
            type: train
            command: [train.py]
            dependencies: none
            nodes: 3
            run_policy: { clean_pod_policy: All, active_deadline_seconds: 7200, backoff_limit: BACKOFF }
            master: { requests: { cpu: "4", memory: 8Gi } }
            worker: { image: "ghcr.io/acme/train:2", limits: { memory: 4Gi } }
            outputs: { loss: float }
            resources: { cpu: "2" }
        """
    loaded = load(project_file(tmp_path, text.replace("BACKOFF", "3")))
    python = TrainTask(
        name="ml.fit",
        source=str(tmp_path),
        config=TrainConfig(
            command=("train.py",),
            dependencies="none",
            nodes=3,
            run_policy=RunPolicy(clean_pod_policy="All", active_deadline_seconds=7200, backoff_limit=3),
            master=Role(requests={"cpu": "4", "memory": "8Gi"}),
            worker=Role(image="ghcr.io/acme/train:2", limits={"memory": "4Gi"}),
        ),
        outputs={"loss": float},
        requests={"cpu": "2"},
    )
    same(loaded.tasks["fit"], python)
    with pytest.raises(Exception, match=r"run_policy.*backoff_limit.*expected an integer >= 1"):
        load(project_file(tmp_path, text.replace("BACKOFF", "0")))


def test_an_elastic_train_task(tmp_path):
    """``elastic`` is a config field too: a nested mapping in a project file, its mistakes naming the YAML key."""
    from flytekitplugins.prebuilt.train import Elastic, Role

    (tmp_path / "train.py").write_text("print('train')\n")
    text = """\
        project: ml
        tasks:
          - name: fit
            type: train
            command: [train.py]
            dependencies: none
            processes_per_node: 2
            elastic: { nnodes: "NNODES", max_restarts: 3 }
            worker: { restart_policy: OnFailure }
        """
    loaded = load(project_file(tmp_path, text.replace("NNODES", "2:4")))
    python = TrainTask(
        name="ml.fit",
        source=str(tmp_path),
        config=TrainConfig(
            command=("train.py",),
            dependencies="none",
            processes_per_node=2,
            elastic=Elastic(nnodes="2:4", max_restarts=3),
            worker=Role(restart_policy="OnFailure"),
        ),
    )
    same(loaded.tasks["fit"], python)
    with pytest.raises(Exception, match=r"elastic.nnodes.*needs 1 <= MIN <= MAX"):
        load(project_file(tmp_path, text.replace("NNODES", "5:4")))
