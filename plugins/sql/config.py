"""Configuration of the ``sql`` task type: where the database is and how results are read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Union

from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.config import OMIT_EMPTY, ConfigError, PrebuiltConfig, check_integer, check_secret

RESULTS, ROWS_AFFECTED = "results", "rows_affected"  # output names (``results`` is upstream's)

URL = re.compile(r"^(?P<dialect>[A-Za-z][\w]*)(?:\+(?P<driver>\w+))?://(?P<rest>.*)$", re.DOTALL)
READERS = ("auto", "adbc", "sqlalchemy")
ADBC_DIALECTS = ("sqlite", "postgresql")
MAX_READ_CONNECTIONS = 16
SECRET_LIKE = re.compile(r"pass|secret|token|^key$|api_?key", re.IGNORECASE)

Scalar = Union[str, int, float, bool]
# a DBAPI connect argument: a scalar, or lists and str-keyed mappings of them (e.g. pymysql's ssl={"ca": ...})
ConnectArg = Union[str, int, float, bool, list, dict]


def url_dialect(url: str) -> str:
    match = URL.match(url)
    return match.group("dialect").lower() if match else ""


def url_port_problem(url: str) -> str:
    """What is wrong with the URL's port ('' when nothing is): a port that is not a number from 1 to 65535 would
    fail every attempt at run time. URLs naming several hosts (libpq's ``h1:5432,h2:5433``) are left to the driver."""
    match = URL.match(url)
    authority = re.split(r"[/?]", match.group("rest"), maxsplit=1)[0].rsplit("@", 1)[-1] if match else ""
    if "," in authority or authority.startswith("["):
        return ""
    _, colon, port = authority.rpartition(":")
    if colon and not (port.isdigit() and 0 < int(port) < 65536):
        return f"its port {port!r} is not a number from 1 to 65535"
    return ""


def url_has_password(url: str) -> bool:
    match = URL.match(url)
    if not match:
        return False
    authority = re.split(r"[/?]", match.group("rest"), maxsplit=1)[0]
    return "@" in authority and ":" in authority.rsplit("@", 1)[0]


@dataclass(frozen=True)
class SQLConfig(PrebuiltConfig):
    """Where to connect and how to read.

    Give exactly one of:
      url          a SQLAlchemy URL without a password, e.g. ``postgresql://reader@db:5432/sales`` or
                   ``sqlite:////data/app.db`` (a path inside the image or a mounted volume);
      url_secret   a Flyte secret holding the whole URL (password included);
      sqlite_file  a SQLite database file fetched through Flyte's data layer (``s3://``, ``gs://``,
                   ``https://``, a local path), optionally a ``compressed`` archive (zip, tar, gztar,
                   bztar, xztar) holding one database.

    password_secret     a Flyte secret holding the password for ``url``'s user.
    secret_connect_args DBAPI connect arguments whose values are secrets (upstream's name).
    connect_args        other (non-secret) DBAPI connect arguments.
    reader              'auto' (ADBC, Arrow-native, for PostgreSQL without connect_args; SQLAlchemy
                        streaming otherwise), 'adbc' or 'sqlalchemy'. Same output either way. SQLite is
                        always read by Python's sqlite3, whichever reader is named (one SQLite build).
    max_rows            stop after this many rows (0: no limit).
    batch_rows          rows per Arrow batch and parquet row group; memory is proportional to it.
    rows_per_file       start a new parquet file after this many rows.
    read_connections    PostgreSQL (ADBC): connections that read a plain ``SELECT`` of one large table at once, each
                        a range of its blocks, all in one snapshot; 0: one per core (2 to 4); 1: never split.
    """

    url: str = ""
    url_secret: Optional[Secret] = None
    sqlite_file: str = ""
    compressed: bool = False
    password_secret: Optional[Secret] = None
    secret_connect_args: dict[str, Secret] = field(default_factory=dict)
    connect_args: dict[str, ConnectArg] = field(default_factory=dict)
    reader: str = "auto"
    max_rows: int = 0
    batch_rows: int = 100_000
    rows_per_file: int = 5_000_000
    read_connections: int = field(default=0, metadata=OMIT_EMPTY)  # at its default, left out of the template

    def validate(self) -> None:
        given = [name for name in ("url", "url_secret", "sqlite_file") if getattr(self, name)]
        if len(given) != 1:
            raise ConfigError(
                self.field_name("url"),
                "give exactly one of url, url_secret or sqlite_file" + (f" (got {', '.join(given)})" if given else ""),
            )
        if self.url:
            self._check_url()
        if self.compressed and not self.sqlite_file:
            raise ConfigError(self.field_name("compressed"), "applies to sqlite_file only")
        for name in ("url_secret", "password_secret"):
            check_secret(getattr(self, name), self.field_name(name))
        for key, secret in self.secret_connect_args.items():
            check_secret(secret, self.field_name(f"secret_connect_args.{key}"), required=True)
        _check_connect_arg(self.connect_args, self.field_name("connect_args"))
        if self.reader not in READERS:
            raise ConfigError(self.field_name("reader"), f"{self.reader!r} is not one of {', '.join(READERS)}")
        if self.reader == "adbc" and self.url and url_dialect(self.url) not in ADBC_DIALECTS:
            raise ConfigError(self.field_name("reader"), f"ADBC reads {' and '.join(ADBC_DIALECTS)} only")
        for name, minimum in (("max_rows", 0), ("batch_rows", 1), ("rows_per_file", 1), ("read_connections", 0)):
            check_integer(getattr(self, name), self.field_name(name), minimum)
        if self.read_connections > MAX_READ_CONNECTIONS:
            raise ConfigError(self.field_name("read_connections"), f"at most {MAX_READ_CONNECTIONS}")

    def _check_url(self) -> None:
        """A SQLAlchemy URL that says nothing secret and can be connected to."""
        if not isinstance(self.url, str) or not URL.match(self.url):
            raise ConfigError(self.field_name("url"), "not a SQLAlchemy URL like dialect[+driver]://user@host/db")
        if url_has_password(self.url):
            raise ConfigError(
                self.field_name("url"),
                "holds a password, which would be stored in the task template; put it in a Flyte secret "
                "and pass password_secret=Secret(group=..., key=...) (or the whole URL as url_secret)",
            )
        if url_port_problem(self.url):
            raise ConfigError(self.field_name("url"), url_port_problem(self.url))
        if url_dialect(self.url) == "sqlite" and self.password_secret:
            raise ConfigError(self.field_name("password_secret"), "SQLite databases have no password")

    def secrets(self) -> list[Secret]:
        return super().secrets() + list(self.secret_connect_args.values())


def _check_connect_arg(value, field: str) -> None:
    """Scalars, lists and str-keyed mappings of them; at any depth, no name that looks like a credential
    (``key`` naming a file, e.g. ``ssl={"key": "/etc/mysql/client-key.pem"}``, is a path, not a secret)
    and no private key material."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(field, f"mapping keys must be str, got {key!r}")
            if SECRET_LIKE.search(key) and not (
                key.lower() == "key" and isinstance(item, str) and item.startswith("/")
            ):
                raise ConfigError(
                    f"{field}.{key}",
                    "looks like a credential and would be stored in the task template; use secret_connect_args",
                )
            _check_connect_arg(item, f"{field}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_connect_arg(item, f"{field}[{index}]")
    elif not isinstance(value, (str, int, float, bool)):
        raise ConfigError(field, "values must be str, int, float, bool, or lists and mappings of those")
    elif isinstance(value, str) and "PRIVATE KEY" in value:
        raise ConfigError(
            field, "holds a private key, which would be stored in the task template; use secret_connect_args"
        )
