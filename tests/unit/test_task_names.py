"""A prebuilt task registers under the name it is given (as upstream's SQLite3Task): a name Flyte cannot carry is
refused at definition, and two tasks of one registration sharing a name are refused when it serializes them."""

import importlib.util
import sys
import textwrap
from collections import OrderedDict

import pytest
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.kit import ConfigError
from flytekitplugins.prebuilt.sql import SQLite3Config, SQLite3Task, SQLTask


def settings() -> SerializationSettings:
    """One registration: pyflyte register / package serialize every entity with one settings object."""
    return SerializationSettings(project="p", domain="d", version="v1", image_config=ImageConfig.auto_default_image())


def define_in(folder, module_name: str, task_name: str):
    """Import a module file of ``folder`` defining an SQLTask named ``task_name`` at its top level; that task."""
    path = folder / f"{module_name}.py"
    path.write_text(
        textwrap.dedent(f"""\
            from flytekitplugins.prebuilt.sql import SQLTask

            ident = SQLTask({task_name!r}, "select 1 as one", url="sqlite://")
        """)
    )
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[module_name]
    return module.ident


@pytest.mark.parametrize("name", ["", "__name__", "jobs.__main__", "big orders", "a..b", ".a", "a\n", None, 3])
def test_a_name_flyte_cannot_carry_is_refused_at_definition(name):
    with pytest.raises(ConfigError) as error:
        SQLTask(name, "select 1", url="sqlite://")
    assert error.value.field == "name"


def test_the_given_name_is_the_registered_name_as_upstreams_sqlite3_task():
    upstream_style = SQLite3Task("ident", "select 1", task_config=SQLite3Config(uri="s3://bucket/shop.db"))
    ours = SQLTask("ident", "select 1", url="sqlite://")
    for task in (upstream_style, ours):
        assert get_serializable(OrderedDict(), settings(), task).template.id.name == "ident"


def test_two_modules_defining_one_name_cannot_be_registered_together(tmp_path):
    a, b = define_in(tmp_path, "jobs_a", "ident"), define_in(tmp_path, "jobs_b", "ident")
    registration, entities = settings(), OrderedDict()
    get_serializable(entities, registration, a)
    with pytest.raises(ConfigError) as error:
        get_serializable(entities, registration, b)
    assert error.value.field == "name"
    assert "jobs_a.py" in str(error.value) and "jobs_b.py" in str(error.value) and "'jobs_b.ident'" in str(error.value)
    # each alone, or both in different registrations (separate packages), is what Flyte keeps apart
    assert get_serializable(OrderedDict(), settings(), b).template.id.name == "ident"


def test_a_file_imported_twice_defines_one_task(tmp_path):
    first = define_in(tmp_path, "jobs", "ident")
    again = define_in(tmp_path, "jobs", "ident")  # a reload, a module imported under a second name
    registration = settings()
    get_serializable(OrderedDict(), registration, first)
    assert get_serializable(OrderedDict(), registration, again).template.id.name == "ident"


def test_a_custom_read_outside_any_serialization_claims_no_name():
    """`task.get_custom(None)` (upstream's tests, our docs) serializes for no registration: nothing to claim."""
    from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

    task = SQLTask("read_outside", "select 1", SQLConfig(url="sqlite:////x.db"))
    assert task.get_custom(None)["prebuilt"]["type"] == "sql"
