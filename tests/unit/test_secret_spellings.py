"""Every spelling of a secret a driver, URL parser or serializer may produce is masked (issue 17), and a URL secret
whose password holds unencoded ``@ : / ? #`` is split where its author meant."""

import json
import re
from urllib.parse import quote, quote_plus

import pytest
from flytekitplugins.prebuilt.kit.secret_urls import UnparsableURL, split_url
from flytekitplugins.prebuilt.kit.secrets import MASK, SecretScrubber

# spaces, @ % : / ? #, both quotes, a backslash and non-ASCII (two and four UTF-8 bytes)
NASTY = "s3cret p4ss@w0rd:50%/?#'\"\\ü😀 end"


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def spellings(value: str) -> dict[str, str]:
    """The spellings of ``value`` the tests look for: whole, fully and partly percent-encoded, escaped."""
    encoded = quote(value, safe="")
    forms = {
        "raw": value,
        "percent-encoded": encoded,
        "percent-encoded, lower-case hex": _lower_hex(encoded),
        "form-encoded (+ for space)": quote_plus(value),
        "@ encoded, space raw (SQLAlchemy -> libpq)": value.replace("%", "%25").replace("@", "%40"),
        "only @ encoded, lower-case": value.replace("@", "%40"),
        "@ : / encoded, lower-case hex": _lower_hex(value.replace("@", "%40").replace(":", "%3A").replace("/", "%2f")),
        "space as %20, rest raw": value.replace(" ", "%20"),
        "non-ASCII encoded only": "".join(quote(c) if not c.isascii() else c for c in value),
        "JSON": json.dumps(value)[1:-1],
        "JSON, non-ASCII raw": json.dumps(value, ensure_ascii=False)[1:-1],
        "repr": repr(value)[1:-1],
        "repr of bytes": repr(value.encode())[2:-1],
        "libpq conninfo": value.replace("\\", "\\\\").replace("'", "\\'"),
        "SQL string": value.replace("'", "''"),
        "JSON inside JSON": json.dumps(json.dumps(value)[1:-1])[1:-1],
    }
    return forms


def leaked_spellings(value: str, text: str) -> list[str]:
    """Names of the spellings of ``value`` that occur in ``text``, and URL-split pieces of it (4+ characters)."""
    found = [name for name, form in spellings(value).items() if form in text]
    pieces = {p for p in re.split(r"[@:/?#]", value) if len(p) >= 4}
    pieces |= {value[value.index(c) + 1 :] for c in "@:/?#" if c in value and len(value[value.index(c) + 1 :]) >= 4}
    return found + [f"piece {p!r}" for p in pieces if p in text]


@pytest.mark.parametrize("name", list(spellings(NASTY)))
def test_every_spelling_of_a_value_is_masked(name):
    scrubber = SecretScrubber()
    scrubber.add(NASTY)
    form = spellings(NASTY)[name]
    scrubbed = scrubber.scrub(f'error: unexpected spaces found in "{form}" (at 127.0.0.1)')
    assert scrubbed == f'error: unexpected spaces found in "{MASK}" (at 127.0.0.1)', name


def test_any_mix_of_encodings_is_masked():
    """Each character raw or encoded, independently: a regular expression per character, not a list of forms."""
    value = "a b@c:d/e"
    scrubber = SecretScrubber()
    scrubber.add(value)
    for mixed in ["a+b%40c:d%2Fe", "a%20b@c%3ad/e", "a b%2540c:d/e", "a\\ b\\@c:d/e", "a&#32;b&#x40;c:d/e"]:
        assert scrubber.scrub(f"<{mixed}>") == f"<{MASK}>", mixed
    assert scrubber.scrub("a b c:d/e") == "a b c:d/e"  # a different value stays


def test_a_url_password_and_what_a_naive_parser_shows_of_it_are_masked():
    password = "first@second-part:third/fourth?fifth"
    scrubber = SecretScrubber()
    scrubber.add_url_password(password)
    text = (
        "cannot connect to postgresql://u:***@second-part:third/fourth?fifth@127.0.0.1:5/db; "
        "host second-part:third/fourth?fifth@127.0.0.1 not found; password was first@second-part"
    )
    scrubbed = scrubber.scrub(text)
    assert not any(piece in scrubbed for piece in ("second-part", "third", "fourth", "fifth", "first"))
    assert "127.0.0.1:5/db" in scrubbed
    scrubber = SecretScrubber()
    scrubber.add_url_password("a@bc:de")  # pieces under 4 characters are not masked on their own
    assert scrubber.scrub("a bc de") == "a bc de"


@pytest.mark.parametrize(
    "url, user, password, location",
    [
        ("postgresql://u:p@ss w%rd@127.0.0.1:5432/db", "u", "p@ss w%rd", "127.0.0.1:5432/db"),
        ("postgresql+psycopg2://u:a@b:c/d?e#f@db.example.com/x?sslmode=require", "u", "a@b:c/d?e#f", None),
        ("postgresql://u:a%40b%3Ac@h/db", "u", "a@b:c", "h/db"),  # encoded properly: decoded once
        ("postgresql://u:p@h@[::1]:5/db", "u", "p@h", "[::1]:5/db"),
        ("postgresql://us%20er:pw@/db?host=/run/pg", "us er", "pw", "/db?host=/run/pg"),
        ("postgresql://u@h/db", "u", None, "h/db"),
        ("sqlite:////tmp/a@b.db", None, None, "//tmp/a@b.db"),  # no host after the '@': not user information
        ("postgresql://h1:5432,h2:5433/db", None, None, "h1:5432,h2:5433/db"),
    ],
)
def test_a_url_is_split_at_the_last_at_sign_before_its_host(url, user, password, location):
    parts = split_url(url)
    assert (parts.username, parts.password) == (user, password)
    if location is not None:
        assert parts.location == location


@pytest.mark.parametrize("url", ["not a url p@ss", "postgresql://u:p@ss w@r d/db"])
def test_an_unparsable_url_is_refused_without_quoting_it(url):
    with pytest.raises(UnparsableURL) as failure:
        split_url(url)
    assert "p@ss" not in str(failure.value) and "rd" not in str(failure.value)


@pytest.mark.parametrize("url", ["postgresql://u:p@ss w@r d/db", "postgresql://u:p@ss@h:5x/db", "p@ss w0rd"])
def test_an_unparsable_url_secret_is_a_user_error_naming_the_secret_only(url):
    from flytekit.models.security import Secret
    from flytekitplugins.prebuilt.executors.sql.connection_urls import url_from_secret
    from flytekitplugins.prebuilt.kit.errors import UserError

    with pytest.raises(UserError) as failure:
        url_from_secret(url, "config.url_secret", Secret(group="warehouse", key="url"), SecretScrubber())
    message = str(failure.value)
    assert "config.url_secret" in message and "group='warehouse' key='url'" in message
    assert not any(piece in message for piece in ("p@ss", "ss w", "r d", "5x", "w0rd"))
