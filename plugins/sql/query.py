"""Turn a query template into statements with bound parameters, at definition time (no SQL driver needed).

Upstream string-interpolates ``{{ .inputs.x }}`` into the SQL text, so ``x' or '1'='1`` rewrites the
query. Here every placeholder becomes a bound parameter ``:x``; quotes around a placeholder
(``'{{.inputs.x}}'``, upstream style) are part of the placeholder, and make it a text value: an input of
another type binds its text form (``str(value)``, what upstream's interpolation put between the quotes), so
``strftime('%Y', d) = '{{ .inputs.year }}'`` with ``year: int`` compares text with text. What binding cannot express, a
table or column name, must be asked for explicitly with ``{{ .inputs.x | identifier }}``: the value
is then checked against a strict pattern and quoted by the database's dialect at run time. A
placeholder where a name is almost surely meant (``order by {{ .inputs.col }}``) is refused: see
``positions``.

The template may hold several statements separated by ``;``; quotes, comments and PostgreSQL
dollar-quoting are respected when splitting.
"""

from __future__ import annotations

import datetime
import re
import typing
from dataclasses import dataclass, field

from flytekitplugins.prebuilt.kit.config import ConfigError, PrebuiltConfig
from flytekitplugins.prebuilt.kit.placeholders import INPUT_PLACEHOLDER as PLACEHOLDER
from flytekitplugins.prebuilt.sql.lexing import lexemes, tokens
from flytekitplugins.prebuilt.sql.positions import check_value_positions

NATIVE_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")  # SQLAlchemy text() bind syntax
IDENTIFIER_MARK = "{{identifier:%s}}"
IDENTIFIER_MARK_RE = re.compile(r"\{\{identifier:(\w+)\}\}")
PASTED_MARK = "{{value:%s}}"  # an unquoted upstream placeholder until its position is checked, then ':name'
PASTED_MARK_RE = re.compile(r"\{\{value:(\w+)\}\}")
IDENTIFIER_VALUE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")
# keywords after which a bare value placeholder is almost surely meant as a table name
IDENTIFIER_POSITIONS = {"from", "join", "into", "update", "table", "exists"}

SCALAR_KINDS = {
    int: "int",
    float: "float",
    str: "str",
    bool: "bool",
    datetime.datetime: "datetime",
    datetime.date: "date",
}
# 'text:<kind>': a quoted placeholder of a non-str input, bound as the value's text form
TEXT_KINDS = {f"text:{k}" for k in SCALAR_KINDS.values() if k != "str"}
PARAMETER_KINDS = {
    *SCALAR_KINDS.values(),
    *(f"list[{k}]" for t, k in SCALAR_KINDS.items() if t is not bool),
    *TEXT_KINDS,
}


@dataclass(frozen=True)
class ParsedQuery(PrebuiltConfig):
    """What the query template became at definition time: the sql type's extras in ``custom``."""

    FIELD_PREFIX = "custom"

    statements: tuple[str, ...] = ()  # SQLAlchemy text() syntax: ':x' binds, identifier marks
    parameters: dict[str, str] = field(default_factory=dict)  # bound input -> kind ('int', 'list[str]', ...)
    identifiers: tuple[str, ...] = ()  # inputs substituted as quoted identifiers

    def validate(self) -> None:
        if not self.statements or not all(isinstance(s, str) and s.strip() for s in self.statements):
            raise ConfigError(self.field_name("statements"), "expected a non-empty list of SQL statements")
        for name, kind in self.parameters.items():
            if kind not in PARAMETER_KINDS:
                raise ConfigError(self.field_name(f"parameters.{name}"), f"{kind!r} is not a parameter kind")


def parameter_kind(python_type: typing.Any) -> str | None:
    """The kind name of an input type that can be bound, or None."""
    if python_type in SCALAR_KINDS:
        return SCALAR_KINDS[python_type]
    if typing.get_origin(python_type) in (list, typing.List):
        (item,) = typing.get_args(python_type) or (None,)
        if item in SCALAR_KINDS and item is not bool:
            return f"list[{SCALAR_KINDS[item]}]"
    return None


def parse_query(template: str, inputs: dict[str, typing.Any], field: str = "query_template") -> ParsedQuery:
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(field, "expected a non-empty SQL text")
    placeholders = _Placeholders(inputs, field)
    statements = [_render(s, placeholders, field) for s in split_statements(template)]
    statements = [s for s in statements if s.strip()]
    if not statements:
        raise ConfigError(field, "holds no SQL statement")
    for statement in statements:
        check_value_positions(statement, placeholders.parameters, field)
    statements = [PASTED_MARK_RE.sub(r":\1", s) for s in statements]
    return ParsedQuery(tuple(statements), placeholders.parameters, tuple(placeholders.identifiers))


class _Placeholders:
    """What each placeholder of a template becomes, and the parameters and identifiers they add up to."""

    def __init__(self, inputs: dict[str, typing.Any], field: str):
        self.inputs, self.field = inputs, field
        self.parameters: dict[str, str] = {}
        self.identifiers: list[str] = []

    def use(self, name: str, modifier: str | None, previous_word: str, quoted: bool) -> str:
        """The text an upstream-style placeholder becomes."""
        if name not in self.inputs:
            raise ConfigError(
                self.field, f"placeholder for {name!r} names no input; inputs are {sorted(self.inputs) or 'none'}"
            )
        if modifier:
            return self._identifier(name, modifier)
        if previous_word in IDENTIFIER_POSITIONS:
            raise ConfigError(
                self.field,
                f"{{{{.inputs.{name}}}}} follows {previous_word.upper()}, where a table name goes; bound parameters "
                f"cannot name tables or columns: write {{{{ .inputs.{name} | identifier }}}}",
            )
        self.bind(name, as_text=quoted)
        return f":{name}" if quoted else PASTED_MARK % name

    def bind(self, name: str, as_text: bool = False) -> None:
        if name not in self.inputs:
            raise ConfigError(
                self.field, f"bind parameter :{name} names no input; inputs are {sorted(self.inputs) or 'none'}"
            )
        kind = parameter_kind(self.inputs[name])
        if kind is None:
            raise ConfigError(
                f"inputs.{name}",
                f"type {getattr(self.inputs[name], '__name__', self.inputs[name])} cannot be bound as a SQL "
                f"parameter; use int, float, str, bool, datetime, date or a list of those",
            )
        if as_text and f"text:{kind}" in TEXT_KINDS:
            kind = f"text:{kind}"
        if self.parameters.setdefault(name, kind) != kind:
            raise ConfigError(
                self.field,
                f"input {name!r} is used both in quotes ('{{{{.inputs.{name}}}}}', its text) and without (its "
                f"{kind.removeprefix('text:')} value); use one form, or CAST in the query",
            )

    def _identifier(self, name: str, modifier: str) -> str:
        if modifier.lower() != "identifier":
            raise ConfigError(
                self.field, f"unknown placeholder filter {modifier!r} on {name!r}; the only one is 'identifier'"
            )
        if self.inputs[name] is not str:
            raise ConfigError(f"inputs.{name}", "an identifier input must be of type str")
        if name not in self.identifiers:
            self.identifiers.append(name)
        return IDENTIFIER_MARK % name


def split_statements(sql: str) -> list[str]:
    """Split on ';' outside quotes, comments and dollar-quoted bodies; drop statements that are only comments."""
    statements, start = [], 0
    for kind, begin, end in tokens(sql):
        if kind == "semicolon":
            statements.append(sql[start:begin])
            start = end
    statements.append(sql[start:])
    return [s.strip() for s in statements if _has_code(s)]


# statements that start with these only read, unless they hold one of WRITING_WORDS (e.g. WITH ... DELETE)
READING_STARTS = {"select", "with", "values"}
WRITING_WORDS = {
    "insert", "update", "delete", "replace", "merge", "upsert", "create", "drop", "alter", "attach", "detach",
    "vacuum", "reindex", "analyze", "pragma", "into",
}  # fmt: skip


def reads_only(statements: typing.Sequence[str]) -> bool:
    """Whether every statement only reads, so a SQLite file can be opened read-only (when in doubt: False)."""
    for statement in statements:
        items = lexemes(statement)
        words = [(i, lexeme.text) for i, lexeme in enumerate(items) if lexeme.kind == "word"]
        if not words or words[0][1] not in READING_STARTS:
            return False
        for i, word in words:
            following = items[i + 1].text if i + 1 < len(items) else ""
            if word in WRITING_WORDS and not (word == "replace" and following == "("):  # replace(): a function
                return False
    return True


def _has_code(statement: str) -> bool:
    return any(kind == "code" and statement[b:e].strip() for kind, b, e in tokens(statement))


def _render(statement: str, placeholders: _Placeholders, field: str) -> str:
    out: list[str] = []
    for kind, b, e in tokens(statement):
        text = statement[b:e]
        if kind == "string" and PLACEHOLDER.search(text):
            whole = PLACEHOLDER.fullmatch(text[1:-1])
            if not whole:
                raise ConfigError(
                    field,
                    f"placeholder inside the string literal {text}: a bound value is a whole literal; build the "
                    f"text in SQL instead, e.g. '%' || {{{{.inputs.x}}}} || '%'",
                )
            out.append(placeholders.use(whole.group(1), whole.group(2), _previous_word(out), quoted=True))
        elif kind == "code":
            out.append(_render_code(text, out, placeholders))
        else:
            # ':' inside literals and comments is text, not a bind (text() unescapes '\:')
            out.append(text.replace(":", "\\:") if kind in ("string", "comment", "dollar") else text)
    return "".join(out)


def _render_code(text: str, before: list[str], placeholders: _Placeholders) -> str:
    pieces, last = [], 0
    for m in PLACEHOLDER.finditer(text):
        pieces.append(text[last : m.start()])
        # quotes glued to a placeholder ('{{.inputs.x}}' split across tokens cannot happen; "..." is an identifier)
        pieces.append(placeholders.use(m.group(1), m.group(2), _previous_word(before + pieces), quoted=False))
        last = m.end()
    pieces.append(text[last:])
    rendered = "".join(pieces)
    for m in NATIVE_BIND.finditer(rendered):
        placeholders.bind(m.group(1))
    return rendered


def _previous_word(parts: list[str]) -> str:
    words = re.findall(r"[A-Za-z_]+", "".join(parts)[-40:])
    return words[-1].lower() if words else ""


def check_identifier(name: str, value: typing.Any) -> str:
    """Run-time check of an identifier input: plain (optionally schema-qualified) names only."""
    if not isinstance(value, str) or not IDENTIFIER_VALUE.match(value):
        raise ValueError(
            f"inputs.{name}: {value!r} is not a plain identifier (letters, digits, '_', '$', optionally "
            f"schema.table); refusing to put it into SQL"
        )
    return value
