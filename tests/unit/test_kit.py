import datetime
import logging
import sys

import pytest
from flytekitplugins.prebuilt.kit import ConfigError, PrebuiltExecutor, UserError
from flytekitplugins.prebuilt.kit.contract import canonical_json, read_header
from flytekitplugins.prebuilt.kit.secrets import SecretScrubber
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask


def test_scrubber_masks_log_records_stdout_and_url_encodings(capsys, caplog):
    scrubber = SecretScrubber()
    scrubber.add("p@ss word")
    with scrubber.active(), caplog.at_level(logging.INFO):
        logging.getLogger("any.library").info("connecting with %s", "p@ss word")
        logging.getLogger("other").info("url postgresql://u:p%40ss%20word@h/db")
        print("echo p@ss word")
    assert "p@ss" not in caplog.text and caplog.text.count("***") == 2
    assert capsys.readouterr().out == "echo ***\n"
    assert sys.stdout is sys.__stdout__ or "Scrubbed" not in type(sys.stdout).__name__


def test_classify_scrubs_and_flattens_the_cause_chain():
    scrubber = SecretScrubber()
    scrubber.add("hunter2")
    try:
        try:
            raise ValueError("driver said hunter2")
        except ValueError as inner:
            raise UserError("query failed") from inner
    except UserError as error:
        clean = PrebuiltExecutor.classify(error, scrubber)
    assert isinstance(clean, UserError) and "hunter2" not in str(clean) and "driver said ***" in str(clean)
    assert clean.__cause__ is None and clean.__context__ is None


@pytest.mark.parametrize(
    "custom, message",
    [
        ({}, "no 'prebuilt' header"),
        ({"prebuilt": {"type": "sql", "version": 1.5}}, "not an integer"),
    ],
)
def test_headers_are_checked(custom, message):
    with pytest.raises(ValueError, match=message):
        read_header(custom)


def test_canonical_json_is_independent_of_key_order_and_struct_floats():
    assert canonical_json({"b": 1.0, "a": [2.0, {"d": 1, "c": None}]}) == canonical_json(
        {"a": [2, {"c": None, "d": 1}], "b": 1}
    )


def test_executor_refuses_another_task_types_template():
    from flytekitplugins.prebuilt.executors.sql import SQLExecutor

    with pytest.raises(UserError, match="for task type 'train'"):
        SQLExecutor().load({"prebuilt": {"type": "train", "version": 1}})


def test_task_keywords_like_task_decorator_and_typos_refused():
    t = SQLTask("t", "select 1", SQLConfig(url="sqlite:////x.db"), retries=3, timeout=60, interruptible=True)
    assert (t.metadata.retries, t.metadata.timeout, t.metadata.interruptible) == (
        3,
        datetime.timedelta(seconds=60),
        True,
    )
    with pytest.raises(ConfigError, match="unknown keyword argument") as error:
        SQLTask("t", "select 1", SQLConfig(url="sqlite:////x.db"), retrys=3)
    assert error.value.field == "retrys"


def test_images_are_built_from_a_checkout_only(tmp_path):
    from build_tools.checkout import ImageError, source_tree

    assert (source_tree() / "images" / "base.Dockerfile").is_file()
    installed = tmp_path / "site-packages" / "flytekitplugins"  # what an installed wheel has there: no Dockerfiles
    (installed / "prebuilt").mkdir(parents=True)
    with pytest.raises(ImageError, match="built from a source checkout .* clone the repository and run `make images`"):
        source_tree(installed)
