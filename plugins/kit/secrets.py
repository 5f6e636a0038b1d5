"""Secrets at run time: resolved from Flyte, and their values kept out of every log line and error.

Upstream logs the connection URL, password included. Here every resolved value is registered with a
``SecretScrubber``; while it is active, each log record is scrubbed as it is created (whatever logger
or handler emits it) and so is anything written to stdout/stderr. Errors are scrubbed by the executor
before they reach ``error.pb``.

What is masked (``***``), for each value:

- the value as a whole, and each line of a multi-line value (a PEM key, a JSON credential), so a log
  that shows only some of its lines, or a tail that starts halfway through it, shows none of them;
  lines without a letter or digit (``{``, ``}``) are structure, not secret, and stay;
- every spelling a driver, URL parser or serializer may give the value and its lines: any mix of raw,
  percent-encoded (fully or in part, either hex case), ``+`` for a space, JSON/``repr``/conninfo
  backslash escapes and HTML entities (``kit.secret_spellings`` lists them);
- for a URL secret, its password on its own and the pieces of it a parser that splits at a ``@``, ``:``,
  ``/``, ``?`` or ``#`` inside it would show (``add_url_password``; ``kit.secret_urls`` parses the URL);
- across writes: stdout/stderr are scrubbed a whole line at a time (``ScrubbedStream``), so a value
  written in pieces is masked too.

Very short values: masking ``1`` wherever it occurs would turn every digit of the log into ``***``
(and tell the reader where the secret is). A value (or line) shorter than ``MIN_SUBSTRING_LENGTH``
characters is masked only where it stands alone, between characters that are not letters or digits
(``pin=123`` -> ``pin=***``, but ``1234`` stays), and resolving one logs a warning naming the secret.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
from urllib.parse import quote, quote_plus

from flytekit.core.context_manager import FlyteContextManager
from flytekit.loggers import logger
from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.kit.secret_spellings import spelling_pattern, spelling_start_alternatives

MASK = "***"
MIN_SUBSTRING_LENGTH = 4  # shorter values are masked as whole tokens only (see the module docstring)
_ALNUM = re.compile(r"[^\W_]")
_NOT_AFTER_ALNUM, _NOT_BEFORE_ALNUM = r"(?<![^\W_])", r"(?![^\W_])"


class SecretScrubber:
    def __init__(self) -> None:
        self._parts: set[str] = set()  # each is masked in every spelling (``kit.secret_spellings``)
        self._values: set[str] = set()  # common whole spellings, for holding back a partial line (``ScrubbedStream``)
        self._patterns: list[re.Pattern] | None = None  # see _compiled

    def add(self, value: str) -> str:
        """Remember a secret value: whole and line by line, in every spelling. Returns it unchanged."""
        if not value:
            return value
        parts = {value, value.strip()}
        lines = [line.strip() for line in value.splitlines()]
        if len(lines) > 1:
            parts.update(line for line in lines if _ALNUM.search(line))
        self._remember(filter(None, parts))
        return value

    def add_url_password(self, password: str) -> None:
        """Remember the password of a URL secret, and the pieces of it between the characters a URL parser splits
        at (``@ : / ? #``), as a parser that took one of them for the end of the password would show them.
        Pieces shorter than ``MIN_SUBSTRING_LENGTH`` are left out: masking them as tokens would hide every
        ``a`` or ``db`` of the log, and they tell little."""
        self.add(password)
        cuts = [i for i, char in enumerate(password) if char in "@:/?#"]
        pieces = {*re.split(r"[@:/?#]", password), *(password[:i] for i in cuts), *(password[i + 1 :] for i in cuts)}
        self._remember(p for p in pieces if len(p.strip()) >= MIN_SUBSTRING_LENGTH)

    def _remember(self, parts) -> None:
        for part in parts:
            if part:
                self._parts.add(part)
                self._values.update({part, quote(part, safe=""), quote_plus(part), json.dumps(part)[1:-1]})
                self._values.add(repr(part)[1:-1])
        self._patterns = None  # rebuilt on next use

    @property
    def has_values(self) -> bool:
        return bool(self._parts)

    def scrub(self, text: str) -> str:
        compiled = self._compiled()
        if compiled is None or not compiled[0].search(text):  # most lines hold no secret: decided quickly
            return text
        for pattern in compiled[1:]:
            text = pattern.sub(MASK, text)
        return text

    def pending_prefix_length(self, text: str) -> int:
        """How many trailing characters of ``text`` could be the start of a secret (single-line forms),
        so a stream that flushes a partial line holds them back until the rest arrives."""
        longest = 0
        for value in self._values:
            if "\n" in value:  # its first line is registered on its own
                continue
            for k in range(min(len(value) - 1, len(text)), longest, -1):
                if text.endswith(value[:k]):
                    longest = k
                    break
        return longest

    def _compiled(self) -> list[re.Pattern] | None:
        """A quick test (the first characters of every value, in every spelling), then the masking patterns: the
        values of ``MIN_SUBSTRING_LENGTH`` characters or more, masked wherever they occur, then the shorter ones,
        masked where they stand alone (kept apart: their look-behind would make ``re`` try the whole pattern at
        every position of the text). Within a pattern, the longest value wins at a position."""
        if self._patterns is None and self._parts:
            starts, long, short = [], [], []
            for part in sorted(self._parts, key=len, reverse=True):
                starts.extend(spelling_start_alternatives(part, MIN_SUBSTRING_LENGTH))
                if len(part) >= MIN_SUBSTRING_LENGTH:
                    long.append(spelling_pattern(part))
                else:
                    short.append(f"{_NOT_AFTER_ALNUM}{spelling_pattern(part)}{_NOT_BEFORE_ALNUM}")
            self._patterns = [re.compile("|".join(group)) for group in (sorted(set(starts)), long, short) if group]
        return self._patterns

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
        sys.stdout, sys.stderr = ScrubbedStream(stdout, self), ScrubbedStream(stderr, self)
        try:
            yield self
        finally:
            logging.setLogRecordFactory(previous_factory)
            for stream in (sys.stdout, sys.stderr):
                if isinstance(stream, ScrubbedStream):
                    stream.drain()
            sys.stdout, sys.stderr = stdout, stderr


class ScrubbedStream:
    """A text stream that writes whole lines, scrubbed, to ``stream``.

    A secret written in pieces (``write(value[:5]); write(value[5:])``, or ``print(a, b)``, which writes
    each argument separately) is masked because nothing reaches ``stream`` before its line is complete.
    ``flush()`` writes a pending partial line too, except a tail that could be the start of a secret;
    ``drain()`` writes everything. Safe to share between threads (a relay thread and the main one).
    """

    def __init__(self, stream, scrubber: SecretScrubber):
        self._stream, self._scrubber = stream, scrubber
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text):
        if not isinstance(text, str):
            return self._stream.write(text)
        with self._lock:
            self._pending += text
            complete, newline, rest = self._pending.rpartition("\n")
            if newline:
                self._pending = rest
                self._stream.write(self._scrubber.scrub(complete + newline))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                scrubbed = self._scrubber.scrub(self._pending)
                held = self._scrubber.pending_prefix_length(scrubbed)
                self._pending = scrubbed[len(scrubbed) - held :]
                self._stream.write(scrubbed[: len(scrubbed) - held])
        self._stream.flush()

    def drain(self) -> None:
        """Write whatever is pending (scrubbed), partial line included."""
        with self._lock:
            pending, self._pending = self._pending, ""
            if pending:
                self._stream.write(self._scrubber.scrub(pending))
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def resolve_secret(secret: Secret, field: str, scrubber: SecretScrubber) -> str:
    """The secret's value from Flyte's secrets manager, registered with the scrubber before use."""
    secrets = FlyteContextManager.current_context().user_space_params.secrets
    where = f"group={secret.group!r} key={secret.key!r}"
    try:
        value = secrets.get(group=secret.group, key=secret.key, group_version=secret.group_version)
    except ValueError:
        env_var = secrets.get_secrets_env_var(secret.group, secret.key, secret.group_version)
        raise UserError(
            f"{field}: secret ({where}) is not available to this execution; was it created in Flyte's secret "
            f"store, or locally as the env var {env_var}?"
        ) from None
    scrubber.add(value)
    value = value.rstrip("\r\n")  # a file-mounted secret often ends with a newline nobody meant
    if len(value.strip()) < MIN_SUBSTRING_LENGTH:
        logger.warning(
            f"{field}: secret ({where}) is {len(value.strip())} characters long; values shorter than "
            f"{MIN_SUBSTRING_LENGTH} are masked in logs only where they stand alone, and are easy to guess"
        )
    return value
