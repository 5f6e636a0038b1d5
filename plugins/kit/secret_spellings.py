"""Every way a driver, a URL parser or a serializer may spell a secret value, as one regular expression.

A value is not always echoed as given: SQLAlchemy percent-encodes ``@``, ``:`` and ``/`` of a password but leaves a
space alone, and libpq then quotes that half-encoded text back (``unexpected spaces found in "s3cret pass%40word"``,
issue 17); ``urlencode`` writes a space as ``+``; JSON, ``repr`` and libpq's conninfo quoting escape quotes and
backslashes. Listing whole spellings cannot keep up with every mix, so the pattern spells the value character by
character, each one in any of the ways below, and so matches any mix of them:

- letters and digits (ASCII): as they are;
- any other character: as it is, percent-encoded (its UTF-8 bytes, ``%xx`` or ``%XX``, also with the ``%`` itself
  encoded again: ``%2540``), HTML-escaped (``&amp;``, ``&quot;``, ``&#39;``, ``&#x27;``), or backslash-escaped
  once or twice (``\\'``, ``\\\\``, ``\\n``, ``\\u00e9``, ``\\xe9``, the UTF-8 bytes ``\\xc3\\xa9``);
- a space also as ``+`` (form encoding), and ``+`` also as a space (what a form decoder shows of a raw ``+``);
- a quote also doubled (SQL's ``''``, CSV's ``""``).
"""

from __future__ import annotations

import html
import re

_BACKSLASHES = r"\\\\{0,2}"  # escaped once (JSON, repr, conninfo) or twice (``\\\"``: a JSON string inside a JSON one)
_NAMED_ESCAPES = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f", "\0": "0"}


def spelling_pattern(value: str) -> str:
    """A regular expression (source) matching ``value`` spelled in any mix of the ways the module docstring lists."""
    return "".join(_character_pattern(char) for char in value)


def spelling_start_alternatives(value: str, length: int) -> list[str]:
    """Regular expressions (sources) that together match the first ``length`` characters of ``value`` in any
    spelling: one per spelling of its first character, each starting with a plain character, so that ``re`` skips
    the positions where none can start (a pattern that starts with a group is tried at every position)."""
    if not value:
        return []
    rest = "".join(_character_pattern(char) for char in value[1:length])
    return [first + rest for first in _character_forms(value[0])]


def _character_pattern(char: str) -> str:
    forms = _character_forms(char)
    return forms[0] if len(forms) == 1 else "(?:" + "|".join(forms) + ")"


def _character_forms(char: str) -> list[str]:
    if char.isascii() and char.isalnum():
        return [char]
    forms = {re.escape(char), _percent_encoded(char), *_backslash_escaped(char), *_html_escaped(char)}
    if char == " ":
        forms.add(r"\+")
    elif char == "+":
        forms.add(" ")
    elif char in "'\"":
        forms.add(re.escape(char * 2))
    return sorted(forms, key=len, reverse=True)


def _hex(number: int, digits: int = 2) -> str:
    """``number`` in hex, either case (``%c3`` and ``%C3`` are the same byte)."""
    return "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{number:0{digits}X}")


def _percent_encoded(char: str) -> str:
    return "".join(f"%(?:25)?{_hex(byte)}" for byte in char.encode("utf-8"))


def _backslash_escaped(char: str) -> set[str]:
    code = ord(char)
    forms = {_BACKSLASHES + re.escape(char)}  # \' \" \\ (and a backslash before any symbol, as shells write)
    if char in _NAMED_ESCAPES:
        forms.add(_BACKSLASHES + _NAMED_ESCAPES[char])
    if code < 0x100:
        forms.add(f"{_BACKSLASHES}x{_hex(code)}")  # repr of a str (latin-1 range)
    if code < 0x10000:
        forms.add(f"{_BACKSLASHES}u{_hex(code, 4)}")  # JSON, repr
    else:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.add(f"{_BACKSLASHES}u{_hex(high, 4)}{_BACKSLASHES}u{_hex(low, 4)}")  # JSON's surrogate pair
        forms.add(f"{_BACKSLASHES}U{_hex(code, 8)}")  # repr
    if code >= 0x80:
        forms.add("".join(f"{_BACKSLASHES}x{_hex(byte)}" for byte in char.encode("utf-8")))  # repr of bytes
    return forms


def _html_escaped(char: str) -> set[str]:
    forms = {f"&#0*{ord(char)};", f"&#[xX]0*{_hex(ord(char)).lstrip('0') or '0'};"}
    named = html.escape(char, quote=True)
    if named != char:
        forms.add(re.escape(named))
    return forms
