"""Just enough SQL lexing to place placeholders: no grammar, no driver, any dialect.

``tokens`` splits SQL text into code, literals, quoted names, comments, PostgreSQL dollar-quoted bodies and
``;``. ``lexemes`` turns one statement in SQLAlchemy ``text()`` syntax (what ``parse_query`` renders) into
words, bound parameters, names, literals and punctuation, with comments dropped, so a rule can look at
what comes right before and after a bound parameter. A bound parameter that was an unquoted upstream
placeholder (``{{ .inputs.x }}``, which upstream pastes as text) is marked ``pasted``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

DOLLAR_TAG = re.compile(r"\$([A-Za-z_]\w*)?\$")
CODE_LEXEME = re.compile(
    r"(?P<mark>\{\{identifier:\w+\}\})"  # an identifier input, quoted at run time
    r"|\{\{value:(?P<pasted>\w+)\}\}"  # an unquoted upstream placeholder, bound (query.PASTED_MARK)
    r"|(?P<cast>::)"
    r"|(?<![:\w\\]):(?P<bind>\w+)(?!:)"  # SQLAlchemy text() bind syntax
    r"|(?P<word>[A-Za-z_][\w$]*)"
    r"|(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)"
    r"|(?P<punct>[(),])"
    r"|(?P<space>\s+)"
    r"|(?P<op>\\:|[^\w\s(),])"
)


# what each token (``tokens``) and each piece of code (``CODE_LEXEME``'s groups) is as a lexeme
TOKEN_LEXEMES = {"string": "literal", "dollar": "literal", "quoted": "name", "semicolon": "punct"}
CODE_LEXEMES = {"mark": "name", "cast": "op", "number": "literal", "punct": "punct", "op": "op"}


@dataclass(frozen=True)
class Lexeme:
    kind: str  # word (lower-cased), bind (the parameter's name), name, literal, punct or op
    text: str
    pasted: bool = False  # a bind written as an unquoted upstream placeholder


def tokens(sql: str) -> Iterator[tuple[str, int, int]]:
    """Yield (kind, start, end): kind is code, string, quoted, comment, dollar or semicolon."""
    i, n, code_start = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c in "'\"`":
            end = i + 1
            while end < n:
                if sql[end] == c:
                    if end + 1 < n and sql[end + 1] == c:  # doubled quote escapes itself
                        end += 2
                        continue
                    break
                end += 1
            kind, stop = ("string" if c == "'" else "quoted"), min(end + 1, n)
        elif sql.startswith("--", i):
            stop = sql.find("\n", i)
            kind, stop = "comment", (n if stop < 0 else stop)
        elif sql.startswith("/*", i):
            stop = sql.find("*/", i + 2)
            kind, stop = "comment", (n if stop < 0 else stop + 2)
        elif c == "$" and (m := DOLLAR_TAG.match(sql, i)) and not (i and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            tag = m.group(0)
            stop = sql.find(tag, i + len(tag))
            kind, stop = "dollar", (n if stop < 0 else stop + len(tag))
        elif c == ";":
            kind, stop = "semicolon", i + 1
        else:
            i += 1
            continue
        if code_start < i:
            yield "code", code_start, i
        yield kind, i, stop
        i = code_start = stop
    if code_start < n:
        yield "code", code_start, n


def lexemes(statement: str) -> list[Lexeme]:
    """The statement's lexemes, comments and whitespace left out."""
    found: list[Lexeme] = []
    for kind, begin, end in tokens(statement):
        if kind == "code":
            found.extend(_code_lexemes(statement[begin:end]))
        elif kind in TOKEN_LEXEMES:
            found.append(Lexeme(TOKEN_LEXEMES[kind], statement[begin:end]))
    return found


def _code_lexemes(code: str) -> Iterator[Lexeme]:
    for m in CODE_LEXEME.finditer(code):
        group = m.lastgroup
        if group == "word":
            yield Lexeme("word", m.group(0).lower())
        elif group in ("bind", "pasted"):
            yield Lexeme("bind", m.group(group), pasted=group == "pasted")
        elif group != "space":
            yield Lexeme(CODE_LEXEMES[group], m.group(0))
