import pytest
from flytekit import Secret
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.sql import SQLConfig


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({}, "config.url"),
        ({"url": "not a url"}, "config.url"),
        ({"url": "postgresql://u:hunter2@db/x"}, "config.url"),
        ({"url": "sqlite:////a.db", "sqlite_file": "s3://b/a.db"}, "config.url"),
        ({"url": "sqlite:////a.db", "password_secret": Secret(group="g", key="k")}, "config.password_secret"),
        ({"url": "postgresql://u@db/x", "password_secret": Secret(group="g", key="")}, "config.password_secret"),
        ({"url": "postgresql://u@db/x", "connect_args": {"password": "x"}}, "config.connect_args.password"),
        ({"url": "postgresql://u@db/x", "reader": "fast"}, "config.reader"),
        ({"url": "mysql://u@db/x", "reader": "adbc"}, "config.reader"),
        ({"url": "sqlite:////a.db", "batch_rows": 0}, "config.batch_rows"),
        ({"url": "sqlite:////a.db", "compressed": True}, "config.compressed"),
    ],
)
def test_bad_configs_fail_naming_the_field(kwargs, field):
    with pytest.raises(ConfigError) as error:
        SQLConfig(**kwargs).validate()
    assert error.value.field == field


def test_round_trip_through_a_protobuf_struct_restores_types():
    from google.protobuf import json_format, struct_pb2

    config = SQLConfig(url="postgresql://u@db/x", password_secret=Secret(group="db", key="pw"), batch_rows=5000)
    struct = struct_pb2.Struct()
    struct.update(config.to_custom())  # what serialization does: every number becomes a float
    restored = SQLConfig.from_custom(json_format.MessageToDict(struct))
    assert restored == config and isinstance(restored.batch_rows, int)


def test_unknown_fields_are_refused():
    with pytest.raises(ConfigError, match="unknown field") as error:
        SQLConfig.from_custom({"url": "sqlite:////a.db", "turbo": True})
    assert error.value.field == "config.turbo"
