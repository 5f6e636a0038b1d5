"""Images per Python (3.10, 3.11, 3.12): a task picks the Python of its image (``python_version=``, AME's
``pythonVersion``), the image's name says it, a registration can mirror each, and the builder builds each."""

import textwrap
from collections import OrderedDict

import pytest
from flytekit.configuration import Image, ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.kit import ConfigError
from flytekitplugins.prebuilt.kit.images import IMAGE_PYTHON, image_tag
from flytekitplugins.prebuilt.project import load
from flytekitplugins.prebuilt.script import ScriptTask
from flytekitplugins.prebuilt.sql import SQLTask
from flytekitplugins.prebuilt.train import TrainTask

from build_tools.building import Builder
from build_tools.checkout import ImageError
from tests.conftest import ROOT

SOURCE = str(ROOT / "tests" / "unit" / "golden" / "train_src")
SETTINGS = SerializationSettings(project="p", domain="d", version="v1", image_config=ImageConfig.auto_default_image())


def tasks(**keywords) -> dict:
    return {
        "sql": SQLTask("q", query_template="select 1", url="sqlite:///x.db", **keywords),
        "script": ScriptTask("s", source=SOURCE, command=["python", "train.py"], **keywords),
        "train": TrainTask("t", source=SOURCE, command=["train.py"], **keywords),
    }


@pytest.mark.parametrize("python", ["3.10", "3.11", "3.12"])
def test_every_type_runs_in_the_image_of_the_python_it_asks_for(python):
    for task_type, task in tasks(python_version=python).items():
        assert task.container_image == image_tag(task_type, python=python)
        assert task.container_image.endswith(f"-py{python}")
        assert get_serializable(OrderedDict(), SETTINGS, task).template.container.image == task.container_image
    assert all(task.container_image.endswith(f"-py{IMAGE_PYTHON}") for task in tasks().values())  # the default


def test_the_python_and_the_variant_are_both_in_the_name():
    gpu = TrainTask("g", source=SOURCE, command=["train.py"], requests={"gpu": 1}, python_version="3.12")
    assert gpu.container_image.endswith("-py3.12-cuda")


def test_a_registration_mirrors_each_python_by_name():
    mirrors = ImageConfig.create_from(
        default_image=None,
        other_images=[
            Image.look_up_image_info("prebuilt-sql", "mirror.example/sql:default"),
            Image.look_up_image_info("prebuilt-sql-py3.12", "mirror.example/sql:py312"),
        ],
    )
    settings = SerializationSettings(project="p", domain="d", version="v1", image_config=mirrors)
    for python, mirrored in (("3.12", "mirror.example/sql:py312"), (IMAGE_PYTHON, "mirror.example/sql:default")):
        task = SQLTask("q", query_template="select 1", url="sqlite:///x.db", python_version=python)
        assert get_serializable(OrderedDict(), settings, task).template.container.image == mirrored


@pytest.mark.parametrize(
    "keywords, message",
    [
        ({"python_version": "3.9"}, "the images are built for Python 3.10, 3.11, 3.12"),
        ({"python_version": 3.1}, "write it as a string"),
        ({"python_version": "3.12", "container_image": "my/img:1"}, "the image's Python is its own"),
    ],
)
def test_a_python_without_an_image_is_refused_naming_the_field(keywords, message):
    with pytest.raises(ConfigError) as error:
        SQLTask("q", query_template="select 1", url="sqlite:///x.db", **keywords)
    assert error.value.field == "python_version" and message in str(error.value)


def test_the_builder_builds_for_the_supported_pythons_only():
    assert Builder(python="3.12").python == "3.12"
    with pytest.raises(ImageError, match="images are built for 3.10, 3.11, 3.12"):
        Builder(python="3.9")


def test_a_project_files_python_version_picks_the_image(tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "flyte-prebuilt.yaml").write_text(
        textwrap.dedent(
            """\
            project: py
            tasks:
              - name: hello
                executor: !custom
                  pythonVersion: '3.12'
                  command: python train.py
            """
        )
    )
    task = load(tmp_path / "flyte-prebuilt.yaml").tasks["hello"]
    assert task.container_image.endswith("-py3.12")
    python = ScriptTask("py.hello", source=str(tmp_path), command=["python", "train.py"], dependencies="none",
                        python_version="3.12")  # fmt: skip
    assert (
        get_serializable(OrderedDict(), SETTINGS, task).template
        == get_serializable(OrderedDict(), SETTINGS, python).template
    )
