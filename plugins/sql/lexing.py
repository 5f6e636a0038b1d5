"""Just enough SQL lexing to place placeholders: no grammar, no driver, any dialect.

``tokens`` splits SQL text into code, literals, quoted names, comments, PostgreSQL dollar-quoted bodies and
``;``. ``lexemes`` turns one statement in SQLAlchemy ``text()`` syntax (what ``parse_query`` renders) into
words, bound parameters, names, literals and punctuation, with comments dropped, so a rule can look at
what comes right before and after a bound parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

DOLLAR_TAG = re.compile(r"\$([A-Za-z_]\w*)?\$")
CODE_LEXEME = re.compile(
    r"(?P<mark>\{\{identifier:\w+\}\})"  # an identifier input, quoted at run time
    r"|(?P<cast>::)"
    r"|(?<![:\w\\]):(?P<bind>\w+)(?!:)"  # SQLAlchemy text() bind syntax
    r"|(?P<word>[A-Za-z_][\w$]*)"
    r"|(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)"
    r"|(?P<punct>[(),])"
    r"|(?P<space>\s+)"
    r"|(?P<op>\\:|[^\w\s(),])"
)


@dataclass(frozen=True)
class Lexeme:
    kind: str  # word (lower-cased), bind (the parameter's name), name, literal, punct or op
    text: str


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
        text = statement[begin:end]
        if kind in ("string", "dollar"):
            found.append(Lexeme("literal", text))
        elif kind == "quoted":
            found.append(Lexeme("name", text))
        elif kind == "semicolon":
            found.append(Lexeme("punct", ";"))
        elif kind == "code":
            for m in CODE_LEXEME.finditer(text):
                group = m.lastgroup
                if group == "space":
                    continue
                if group == "word":
                    found.append(Lexeme("word", m.group(0).lower()))
                elif group == "bind":
                    found.append(Lexeme("bind", m.group("bind")))
                elif group == "mark":
                    found.append(Lexeme("name", m.group(0)))
                elif group == "number":
                    found.append(Lexeme("literal", m.group(0)))
                elif group == "punct":
                    found.append(Lexeme("punct", m.group(0)))
                else:
                    found.append(Lexeme("op", m.group(0)))
    return found
