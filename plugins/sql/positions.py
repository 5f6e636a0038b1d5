"""Where a bound value may go: refuse, at definition time, placeholders the database would bind as a constant
where the author almost surely meant a name.

Upstream pastes ``{{ .inputs.col }}`` into the SQL text, so ``order by {{ .inputs.col }}`` sorts by that
column. Bound, the same placeholder is a constant: ``ORDER BY 'score'`` sorts nothing and
``select 'score' from t`` returns the text ``score`` on every row, silently. The rule, per statement, for a
placeholder (``{{ .inputs.x }}``, quoted or not, or ``:x``) that is a *whole item*, with nothing but a list
separator or the clause's keyword before it and nothing but a separator or the next clause after it:

- in ``ORDER BY``, ``GROUP BY``, ``PARTITION BY`` (any ``... BY`` list): refused;
- in a ``SELECT`` list: refused unless it is given a name (``select :x as x``), which says a value is meant;
  an unquoted upstream placeholder (``select {{ .inputs.col }} as c``) is refused even when named, since
  upstream pastes its text there and so names a column with it; an ``INSERT ... SELECT`` list is exempt
  (the target columns name the values);
- after ``AS`` (an alias or a ``CAST`` type) or after ``FROM``/``JOIN``/``INTO``/``UPDATE``/``TABLE``/``EXISTS``:
  refused (the latter checked while rendering, see ``query.IDENTIFIER_POSITIONS``);
- in ``LIMIT``, ``OFFSET`` and ``FETCH FIRST/NEXT``: allowed for ``int`` inputs only. SQLite, PostgreSQL
  (psycopg2 and ADBC) and MySQL (pymysql) all bind a count there.

Inside parentheses (function arguments, ``IN (...)``, ``VALUES (...)``) and as an operand (``a = :x``,
``:x + 1``, ``:x::date``) a placeholder is a value, whatever clause it is in. ``{{ .inputs.x | identifier }}``
is never a value, so none of this applies to it.
"""

from __future__ import annotations

from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.sql.lexing import Lexeme, lexemes

# words that end a list item (the next clause, or an ORDER BY modifier)
ITEM_ENDERS = {
    "from", "where", "group", "order", "having", "limit", "offset", "fetch", "union", "intersect", "except",
    "window", "into", "for", "returning", "asc", "desc", "nulls", "collate", "on", "using",
}  # fmt: skip
# words that start a clause: scanning back from a list separator, the first one met names the list
CLAUSE_WORDS = {
    "select", "by", "from", "where", "having", "limit", "offset", "fetch", "values", "set", "on", "returning",
    "using", "window", "into", "join", "union", "intersect", "except", "when", "then", "else", "and", "or",
}  # fmt: skip
COUNT_WORDS = {"limit", "offset", "first", "next"}  # LIMIT :n, OFFSET :n, FETCH FIRST/NEXT :n ROWS
OPENING, CLOSING = {"(", "case"}, {")", "end"}


def check_value_positions(statement: str, parameters: dict[str, str], field: str) -> None:
    """Raise ``ConfigError`` for the first bound parameter of ``statement`` that is not in a value position."""
    items = lexemes(statement)
    for i, lexeme in enumerate(items):
        if lexeme.kind == "bind":
            problem = _problem(items, i, parameters.get(lexeme.text, ""))
            if problem:
                raise ConfigError(field, f"the placeholder for input {lexeme.text!r} {problem}")


def _problem(items: list[Lexeme], i: int, kind: str) -> str | None:
    name = items[i].text
    before = items[i - 1] if i else None
    after = items[i + 1] if i + 1 < len(items) else None
    identifier = f"{{{{ .inputs.{name} | identifier }}}}"
    if _is_word(before, "as"):
        return f"follows AS, where a name goes; a bound value cannot be a name: write {identifier}"
    clause, at = _clause(items, i)
    if clause in COUNT_WORDS:
        return None if kind == "int" else f"is a row count ({clause.upper()}): declare the input as int"
    if clause == "select" and items[i].pasted and _is_named_item(items, i) and not _feeds_insert(items, at):
        return (
            f"is a whole SELECT list item written as {{{{ .inputs.{name} }}}}, named or not: upstream pastes the "
            f"input's text there, so it names a column; bound, it would return the input itself on every row. To "
            f"name a column write "
            f"{identifier}; to return the value write `:{name} as {name}`"
        )
    if not _ends_item(after):
        return None  # an operand (`:x + 1`, `:x::date`) or a named value (`:x as label`, `:x label`)
    if clause == "by":
        keyword = _word_before(items, at)
        effect = {
            "order": "sorts by a constant",
            "group": "puts every row in one group",
            "partition": "makes one partition",
        }.get(keyword, "is a constant")
        return (
            f"is a whole {keyword.upper() + ' ' if keyword else ''}BY item: bound as a value it {effect}; "
            f"to name a column write {identifier}"
        )
    if clause == "select" and not _feeds_insert(items, at):
        return (
            f"is a whole SELECT list item: bound as a value it returns the input itself on every row, not a "
            f"column; to name a column write {identifier}; to return the value, name it: `... as {name}`"
        )
    return None


def _clause(items: list[Lexeme], i: int) -> tuple[str, int]:
    """The list a placeholder sits in: ``(clause word, its index)``; ``("(", j)`` inside parentheses, ``("", -1)``
    when not at the start of an item."""
    before = items[i - 1] if i else None
    if before is None:
        return "", -1
    if before.kind == "word" and before.text in ("select", "distinct", "all", "by", *COUNT_WORDS):
        if before.text in ("distinct", "all"):
            return ("select", i - 2) if _is_word(items[i - 2] if i >= 2 else None, "select") else ("", -1)
        return before.text, i - 1
    if before.kind == "punct" and before.text == "(":
        return "(", i - 1
    if not (before.kind == "punct" and before.text == ","):
        return "", -1
    depth = 0
    for j in range(i - 2, -1, -1):
        lexeme = items[j]
        text = lexeme.text
        if lexeme.kind in ("punct", "word") and text in CLOSING:
            depth += 1
        elif lexeme.kind in ("punct", "word") and text in OPENING:
            if depth == 0:
                return "(", j  # a parenthesized list: function arguments, IN (...), VALUES (...)
            depth -= 1
        elif depth == 0 and lexeme.kind == "word" and text in CLAUSE_WORDS:
            return text, j
        elif depth == 0 and lexeme.kind == "punct" and text == ";":
            break
    return "", -1


def _is_named_item(items: list[Lexeme], i: int) -> bool:
    """Whether the item starting at ``i`` is the placeholder alone, maybe with an alias (``x``, ``x as c``, ``x c``)."""
    after = items[i + 1] if i + 1 < len(items) else None
    if _ends_item(after):
        return True
    if _is_word(after, "as"):
        i += 1
        after = items[i + 1] if i + 1 < len(items) else None
    if after is None or after.kind not in ("word", "name"):
        return False
    return _ends_item(items[i + 2] if i + 2 < len(items) else None)


def _ends_item(after: Lexeme | None) -> bool:
    if after is None:
        return True
    if after.kind == "punct":
        return after.text in (",", ")", ";")
    return after.kind == "word" and after.text in ITEM_ENDERS


def _feeds_insert(items: list[Lexeme], select_at: int) -> bool:
    """Whether the SELECT at ``select_at`` is at the top level of an ``INSERT ... SELECT``."""
    level, inserts = 0, False
    for lexeme in items[:select_at]:
        if lexeme.kind in ("punct", "word") and lexeme.text in OPENING:
            level += 1
        elif lexeme.kind in ("punct", "word") and lexeme.text in CLOSING:
            level -= 1
        elif level == 0 and lexeme.kind == "word" and lexeme.text in ("insert", "replace"):
            inserts = True
    return inserts and level == 0


def _word_before(items: list[Lexeme], at: int) -> str:
    return items[at - 1].text if at > 0 and items[at - 1].kind == "word" else ""


def _is_word(lexeme: Lexeme | None, word: str) -> bool:
    return lexeme is not None and lexeme.kind == "word" and lexeme.text == word
