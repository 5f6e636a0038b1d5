"""Masking rules of ``kit.secrets``: every line of a multi-line value, values written in pieces, short values."""

import base64
import io
import json
import logging
import os
import sys

import pytest
from flytekit.loggers import logger as flytekit_logger
from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.secrets import MASK, ScrubbedStream, SecretScrubber, resolve_secret


def fake_pem(lines: int = 30) -> str:
    """A PEM-shaped value: random base64 lines of 64 characters and a short last one."""
    body = base64.b64encode(os.urandom(48 * lines + 3)).decode()
    return (
        "-----BEGIN PRIVATE KEY-----\n"
        + "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        + "\n-----END PRIVATE KEY-----\n"
    )


def secret_lines(value: str) -> list[str]:
    return [line for line in value.splitlines() if line.strip() and "-----" not in line]


def test_every_line_of_a_multi_line_value_is_masked_on_its_own():
    pem = fake_pem()
    scrubber = SecretScrubber()
    scrubber.add(pem)
    assert scrubber.scrub(f"key:\n{pem}done") == f"key:\n{MASK}done"  # whole
    tail = "\n".join(pem.splitlines()[12:])  # a log tail that starts halfway through the key
    scrubbed = scrubber.scrub(tail)
    assert not any(line in scrubbed for line in secret_lines(pem)) and scrubbed.count(MASK) == len(tail.splitlines())
    assert scrubber.scrub(json.dumps({"key": pem})) == '{"key": "***"}'  # JSON-escaped, as a whole
    assert all(line not in scrubber.scrub(repr(pem)) for line in secret_lines(pem))


def test_structure_lines_of_a_json_credential_stay():
    credential = json.dumps({"type": "service_account", "private_key": fake_pem(3), "client_id": "1"}, indent=2)
    scrubber = SecretScrubber()
    scrubber.add(credential)
    assert scrubber.scrub("{\n}\n") == "{\n}\n"
    assert scrubber.scrub('  "client_id": "1"\n') == f"  {MASK}\n"
    assert "service_account" not in scrubber.scrub('log: "type": "service_account",')


def test_a_value_written_in_pieces_is_masked_and_nothing_is_lost():
    scrubber = SecretScrubber()
    scrubber.add("tok-s3cr3t-value")
    target = io.StringIO()
    stream = ScrubbedStream(target, scrubber)
    stream.write("progress 50%")
    stream.flush()  # a partial line with no secret in it is written at once
    assert target.getvalue() == "progress 50%"
    stream.write(" token=")
    for char in "tok-s3cr3t-value":
        stream.write(char)
        stream.flush()
    assert "tok-" not in target.getvalue()  # a possible start of the secret is held back
    stream.write(" ok\nnext tok-s3")
    stream.drain()
    assert target.getvalue() == f"progress 50% token={MASK} ok\nnext tok-s3"


def test_stdout_writes_of_pieces_are_masked_while_active(capsys):
    scrubber = SecretScrubber()
    scrubber.add("line-one-of-key\nline-two-of-key")
    with scrubber.active():
        print("a", "line-one-", end="", flush=True)
        print("of-key", flush=True)
        sys.stdout.writelines(["line-two", "-of-key", " and the end without newline"])
    assert capsys.readouterr().out == f"a {MASK}\n{MASK} and the end without newline"


def test_short_values_are_masked_only_where_they_stand_alone():
    scrubber = SecretScrubber()
    scrubber.add("1")
    assert scrubber.scrub("epoch 1/10, id 2021, pin=1") == f"epoch {MASK}/10, id 2021, pin={MASK}"
    scrubber.add("abcd")  # MIN_SUBSTRING_LENGTH characters: masked everywhere
    assert scrubber.scrub("xabcdx") == f"x{MASK}x"


@pytest.mark.parametrize("value, warned", [("12", True), ("long-enough", False)])
def test_resolving_a_short_secret_warns_without_the_value(monkeypatch, value, warned):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    flytekit_logger.addHandler(handler)
    monkeypatch.setenv("_FSEC_SVC_PIN", value)
    try:
        scrubber = SecretScrubber()
        assert resolve_secret(Secret(group="svc", key="pin"), "secret_env.PIN", scrubber) == value
    finally:
        flytekit_logger.removeHandler(handler)
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert bool(warnings) == warned
    if warned:
        assert "secret_env.PIN" in warnings[0] and "'svc'" in warnings[0] and value not in warnings[0]
