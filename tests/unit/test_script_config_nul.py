"""A NUL byte in a script task's command or env is refused when the task is defined, naming the field: no argument
or environment variable can carry one, so every attempt of the pod would fail (as a SYSTEM error, retried)."""

import pytest
from flytekitplugins.prebuilt.kit import ConfigError
from flytekitplugins.prebuilt.script import ScriptTask


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"command": ["python", "main.py", "a\0b"]}, "config.command[2]"),
        ({"command": ["python", "main.py"], "env": {"GREETING": "hi\0there"}}, "config.env.GREETING"),
    ],
)
def test_a_nul_byte_is_refused_at_definition_naming_the_field(tmp_path, fields, field):
    (tmp_path / "main.py").write_text("print('hi')\n")
    with pytest.raises(ConfigError, match="NUL byte") as error:
        ScriptTask("t", source=str(tmp_path), dependencies="none", **fields)
    assert error.value.field == field
