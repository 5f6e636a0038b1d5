"""Secrets at run time: resolved from Flyte, and their values kept out of every log line and error.

Upstream logs the connection URL, password included. Here every resolved value is registered with a
``SecretScrubber``; while it is active, each log record is scrubbed as it is created (whatever logger
or handler emits it) and so is anything written to stdout/stderr. Errors are scrubbed by the executor
before they reach ``error.pb``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from urllib.parse import quote, quote_plus

from flytekit.core.context_manager import FlyteContextManager
from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.errors import UserError

MASK = "***"


class SecretScrubber:
    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> str:
        """Remember a secret value (and the ways a URL would spell it); returns it unchanged."""
        if value:
            self._values.update({value, quote(value, safe=""), quote_plus(value)})
        return value

    def scrub(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    @contextlib.contextmanager
    def active(self):
        """Scrub log records and stdout/stderr writes for the duration of the block."""
        previous_factory = logging.getLogRecordFactory()

        def factory(*args, **kwargs):
            record = previous_factory(*args, **kwargs)
            if self._values:
                try:
                    message = record.getMessage()
                except Exception:  # a malformed record: leave it to logging to report
                    return record
                record.msg, record.args = self.scrub(message), None
                if record.exc_info and record.exc_info[1] is not None:
                    record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
                    record.exc_info = None
            return record

        logging.setLogRecordFactory(factory)
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _ScrubbedStream(stdout, self), _ScrubbedStream(stderr, self)
        try:
            yield self
        finally:
            logging.setLogRecordFactory(previous_factory)
            sys.stdout, sys.stderr = stdout, stderr


class _ScrubbedStream:
    def __init__(self, stream, scrubber: SecretScrubber):
        self._stream, self._scrubber = stream, scrubber

    def write(self, text):
        return self._stream.write(self._scrubber.scrub(text) if isinstance(text, str) else text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def resolve_secret(secret: Secret, field: str, scrubber: SecretScrubber) -> str:
    """The secret's value from Flyte's secrets manager, registered with the scrubber before use."""
    secrets = FlyteContextManager.current_context().user_space_params.secrets
    try:
        value = secrets.get(group=secret.group, key=secret.key, group_version=secret.group_version)
    except ValueError:
        where = f"group={secret.group!r} key={secret.key!r}"
        raise UserError(
            f"{field}: secret ({where}) is not available to this execution; was it created in Flyte's secret "
            f"store, or locally as the env var {secrets.get_secrets_env_var(secret.group, secret.key, secret.group_version)}?"
        ) from None
    scrubber.add(value)
    return scrubber.add(value.rstrip("\r\n"))
