"""flytekit's tests/flytekit/unit/extras/sqlite3/test_sql_tracker.py (commit e96c72030), run against our
``SQLite3Task``; the one ``DIFFERENCE:`` is listed in docs/sql.md."""

from collections import OrderedDict

import flytekit.configuration
from flytekit.configuration import Image, ImageConfig
from flytekit.tools.translator import get_serializable

from tests.integration.test_upstream_sqlite3_task import OUR_EXECUTOR
from tests.integration.test_upstream_sqlite3_task import tk as not_tk


def test_sql_lhs():
    assert not_tk.lhs == "tk"


def test_sql_command():
    default_img = Image(name="default", fqn="test", tag="tag")
    serialization_settings = flytekit.configuration.SerializationSettings(
        project="project",
        domain="domain",
        version="version",
        env=None,
        image_config=ImageConfig(default_image=default_img, images=[default_img]),
    )
    srz_t = get_serializable(OrderedDict(), serialization_settings, not_tk)
    assert srz_t.template.container.args[-5:] == [
        "--resolver",
        "flytekit.core.python_customized_container_task.default_task_template_resolver",
        "--",
        "{{.taskTemplatePath}}",
        OUR_EXECUTOR,  # DIFFERENCE: our executor runs the template
    ]
