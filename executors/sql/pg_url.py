"""A PostgreSQL URL for the ADBC reader, parsed and shown as SQLAlchemy's ``make_url`` and ``URL.render_as_string``
do (same pattern, same decoding, same rendering: ``sqlalchemy/engine/url.py``), without importing SQLAlchemy.

A task that ADBC reads never uses a SQLAlchemy engine, and ``import sqlalchemy`` alone costs 0.3 to 0.6 s (its
package imports the whole of its core): a one-row query paid more for that than for its query. Only what the
executor asks of a URL is here; every other path still gets SQLAlchemy's ``URL``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional, Union
from urllib.parse import parse_qsl, quote, quote_plus, unquote

# sqlalchemy.engine.url._parse_url's pattern
PATTERN = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
        """,
    re.X,
)


@dataclasses.dataclass(frozen=True)
class PostgresURL:
    drivername: str
    username: Optional[str] = None
    password: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None
    database: Optional[str] = None
    query: dict[str, Union[str, tuple[str, ...]]] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> PostgresURL:
        """As ``make_url(text)``; ValueError (never quoting ``text``) where it raises ArgumentError or ValueError."""
        match = PATTERN.match(text)
        if match is None:
            raise ValueError("Could not parse SQLAlchemy URL from given URL string")
        parts = match.groupdict()
        query: dict[str, Union[str, tuple[str, ...]]] = {}
        for key, value in parse_qsl(parts["query"] or ""):
            query[key] = (*_as_tuple(query[key]), value) if key in query else value
        port = parts["port"]
        if port and not port.isdigit():
            raise ValueError("the port is not a number")
        return cls(
            drivername=parts["name"],
            username=unquote(parts["username"]) if parts["username"] is not None else None,
            password=unquote(parts["password"]) if parts["password"] is not None else None,
            host=parts["ipv4host"] or parts["ipv6host"],
            port=int(port) if port else None,
            database=parts["database"],
            query=query,
        )

    def get_backend_name(self) -> str:
        return self.drivername.split("+")[0]

    def set(self, **changes) -> PostgresURL:
        return dataclasses.replace(self, **changes)

    def render_as_string(self, hide_password: bool = True) -> str:
        text = self.drivername + "://"
        if self.username is not None:
            text += quote(self.username, safe=" +")
            if self.password is not None:
                text += ":" + ("***" if hide_password else quote(str(self.password), safe=" +"))
            text += "@"
        if self.host is not None:
            text += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            text += ":" + str(self.port)
        if self.database is not None:
            text += "/" + self.database
        if self.query:
            text += "?" + "&".join(
                f"{quote_plus(k)}={quote_plus(v)}" for k in sorted(self.query) for v in _as_tuple(self.query[k])
            )
        return text

    def quote_identifier(self, name: str) -> str:
        """As PostgreSQL's SQLAlchemy identifier preparer quotes a name (always, ``"`` doubled)."""
        return '"' + name.replace('"', '""') + '"'

    def __repr__(self) -> str:  # as SQLAlchemy's URL: never the password
        return self.render_as_string()


def _as_tuple(value: Union[str, tuple[str, ...]]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)
