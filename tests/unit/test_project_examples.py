"""Every example of AME's project file (its task documentation), adapted to our names
(tests/unit/fixtures/project/ame/README.md), loads; the one we cannot map (MLflow) is refused saying why."""

from pathlib import Path

import pytest
from flytekitplugins.prebuilt.project import ProjectErrors, load

AME = Path(__file__).resolve().parent / "fixtures" / "project" / "ame"
EXAMPLES = sorted(p for p in AME.glob("*.yaml") if p.name != "21_mlflow_executor.yaml")


def test_every_example_is_here():
    assert len(EXAMPLES) == 20


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_loads(example):
    loaded = load(example)
    assert loaded.tasks or loaded.pipelines


def test_what_the_examples_compile_to():
    gpu = load(AME / "02_resources.yaml").tasks["train_my_model"]
    requests = gpu.resources.requests
    assert (requests.cpu, requests.mem, requests.gpu, requests.ephemeral_storage) == ("4", "10G", "1", "30G")
    secrets = load(AME / "09_template_same_project.yaml").tasks["train_my_model"]
    assert {(s.group, s.key) for s in secrets.security_context.secrets} == {
        ("ame", "blob_storage_key"),
        ("company_vault/path/to", "secret"),
    }
    assert secrets.config.dependencies == "poetry" and secrets.config.command == ("python", "train.py")
    assert load(AME / "11_artifact_paths.yaml").tasks["artifact_task"].config.artifacts == {
        "artifact_dir": "path/to/artifact_dir"
    }
    parallel = load(AME / "19_pipeline_parallel.yaml").pipelines["train_my_model"]
    assert [[s.name for s in group] for group in parallel.groups] == [
        ["prepare_dataset_one", "prepare_dataset_two"],
        ["training"],
    ]
    assert load(AME / "16_cron_trigger.yaml").launch_plans["train_my_model"].schedule.cron_schedule.schedule == (
        "0 3 * * *"
    )


def test_mlflow_is_refused_with_the_reason():
    with pytest.raises(ProjectErrors) as raised:
        load(AME / "21_mlflow_executor.yaml")
    (problem,) = raised.value.problems
    assert problem.position.line == 5 and "!mlflow: MLflow projects are not supported" in problem.message
