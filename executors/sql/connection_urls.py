"""The SQLAlchemy URL of a ``url_secret``, and the libpq URI ADBC gets: passwords encoded once, properly, and masked
in every spelling before a driver sees them (issue 17)."""

from __future__ import annotations

from typing import Any, Callable, Optional
from urllib.parse import quote, urlencode

from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.kit.secret_urls import UnparsableURL, split_url
from flytekitplugins.prebuilt.kit.secrets import SecretScrubber


def sqlalchemy_url(text: str) -> Any:
    """SQLAlchemy's ``make_url``, its ArgumentError as a ValueError (imported here: the ADBC path never needs it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(text)
    except ArgumentError as error:
        raise ValueError(str(error)) from None


def url_from_secret(
    value: str, field: str, secret: Secret, scrubber: SecretScrubber, parse: Optional[Callable[[str], Any]] = None
) -> Any:
    """Parse a URL secret (``kit.secret_urls``: the user information ends at the last ``@`` before the host) and
    register its password, and the pieces of it a naive parser would show, with the scrubber. An unparsable URL
    is refused naming the field and the secret, never quoting it. ``parse``: the URL's class's parser
    (``sqlalchemy_url`` unless given; ``pg_url.PostgresURL.parse`` for the ADBC reader)."""
    where = f"{field}: the URL in secret group={secret.group!r} key={secret.key!r}"
    try:
        parts = split_url(value)
    except UnparsableURL as error:
        raise UserError(f"{where} is not a SQLAlchemy URL: {error}") from None
    if parts.password:
        scrubber.add_url_password(parts.password)
    try:
        url = (parse or sqlalchemy_url)(parts.without_userinfo())
    except ValueError:
        raise UserError(f"{where} is not a SQLAlchemy URL (its host, port or database part)") from None
    return url.set(username=parts.username, password=parts.password) if parts.username is not None else url


def libpq_uri(url) -> str:
    """``url`` as a ``postgresql://`` URI for libpq, user, password and database percent-encoded in full.
    (SQLAlchemy's rendering leaves a space raw, which libpq refuses, quoting the password back: ``unexpected spaces
    found in "s3cret pass%40word"``.)"""
    userinfo = ""
    if url.username is not None:
        userinfo = quote(url.username, safe="")
        if url.password is not None:
            userinfo += ":" + quote(str(url.password), safe="")
        userinfo += "@"
    host = f"[{url.host}]" if url.host and ":" in url.host else (url.host or "")
    port = f":{url.port}" if url.port else ""
    database = "/" + quote(url.database, safe="") if url.database else ""
    query = "?" + urlencode(url.query, doseq=True) if url.query else ""
    return f"postgresql://{userinfo}{host}{port}{database}{query}"
