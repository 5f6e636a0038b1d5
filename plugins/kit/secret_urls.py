"""The user and password of a URL secret, found where a person who wrote the password unencoded meant them.

A password often holds ``@``, ``:``, ``/``, ``?`` or ``#`` that nobody percent-encoded. SQLAlchemy's ``make_url``
ends the password at the first ``@`` and takes the rest for the host, so the connection error then shows the
password's tail as the host name (issue 17). Here the user information ends at the LAST ``@`` that is followed by a
host (a name, an IPv4 address or a bracketed IPv6 one, an optional port, several of them separated by commas as
libpq allows, or none for a Unix socket) and then ``/``, ``?``, ``#`` or the end; the user ends at the first ``:``.
libpq and browsers (the WHATWG URL standard's authority state) also split at the last ``@``. An ``@`` in the
database name or the query string must then be percent-encoded (``%40``), as URLs require anyway.

User and password are percent-decoded (``%40`` is ``@``, as SQLAlchemy and libpq decode them; a ``%`` not followed by
two hex digits stays a ``%``). The caller builds the driver's URL from the decoded parts, so they are encoded once
and properly. Nothing here puts the URL or any part of it in an error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_HOST = r"(?:\[[0-9A-Fa-f:.%a-z]*\]|[^@/?#:\[\]\s,]+)(?::\d*)?"
_HOSTS_THEN_PATH = re.compile(rf"(?:{_HOST}(?:,{_HOST})*)?(?:[/?#]|$)")


@dataclass(frozen=True)
class SplitURL:
    scheme: str  # ``postgresql+psycopg2``
    username: str | None  # decoded; None when the URL has no user information
    password: str | None  # decoded; None when the user information has no ``:``
    location: str  # hosts, port, path and query, as written: ``127.0.0.1:5432/db?sslmode=require``

    def without_userinfo(self) -> str:
        return f"{self.scheme}://{self.location}"


class UnparsableURL(ValueError):
    """The value is not ``scheme://[user[:password]@]location``; the message never quotes the value."""


def split_url(value: str) -> SplitURL:
    value = value.strip()
    scheme = _SCHEME.match(value)
    if scheme is None:
        raise UnparsableURL("it does not start with a scheme such as postgresql://")
    rest = value[scheme.end() :]
    if rest.startswith("/"):  # no host (``sqlite:////path``): no user information either
        return SplitURL(scheme["scheme"], None, None, rest)
    at = _last_userinfo_end(rest)
    if at is None:
        if "@" in rest:
            raise UnparsableURL("no host follows its last '@' (an '@' in the database name or query is written %40)")
        return SplitURL(scheme["scheme"], None, None, rest)
    user, colon, password = rest[:at].partition(":")
    return SplitURL(scheme["scheme"], unquote(user), unquote(password) if colon else None, rest[at + 1 :])


def _last_userinfo_end(rest: str) -> int | None:
    """Index of the last ``@`` followed by hosts and then ``/``, ``?``, ``#`` or the end, or None."""
    for at in reversed([i for i, char in enumerate(rest) if char == "@"]):
        if _HOSTS_THEN_PATH.match(rest, at + 1):
            return at
    return None
