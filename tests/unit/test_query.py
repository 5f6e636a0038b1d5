import datetime
import re
from typing import List

import pytest
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.sql.query import check_identifier, parse_query, reads_only, split_statements


def test_upstream_placeholders_become_bound_parameters_quoted_or_not():
    q = parse_query("select * from t where name = '{{ .inputs.name }}' and n < {{.inputs.n}}", {"name": str, "n": int})
    assert q.statements == ("select * from t where name = :name and n < :n",)
    assert q.parameters == {"name": "str", "n": "int"}


def test_a_quoted_placeholder_binds_the_text_of_a_non_str_input():
    """Upstream pastes `'{{ .inputs.year }}'` as the text '2024': quoted, an input of another type binds its text."""
    q = parse_query(
        "select * from t where strftime('%Y', d) = '{{ .inputs.year }}' and d = '{{.inputs.day}}' "
        "and s = '{{.inputs.s}}'",
        {"year": int, "day": datetime.date, "s": str},
    )
    assert q.statements == ("select * from t where strftime('%Y', d) = :year and d = :day and s = :s",)
    assert q.parameters == {"year": "text:int", "day": "text:date", "s": "str"}
    with pytest.raises(ConfigError, match="input 'y' is used both in quotes"):
        parse_query("select * from t where a = '{{.inputs.y}}' or b = {{.inputs.y}}", {"y": int})


def test_native_binds_lists_and_dates_are_typed():
    q = parse_query("select * from t where id in :ids and d > :day", {"ids": List[int], "day": datetime.date})
    assert q.parameters == {"ids": "list[int]", "day": "date"}


def test_split_respects_quotes_comments_and_dollar_quoting():
    sql = "insert into t values (';'); -- a; comment\nselect $$x;y$$; /* ; */ select 2;"
    assert split_statements(sql) == ["insert into t values (';')", "-- a; comment\nselect $$x;y$$", "/* ; */ select 2"]


def test_colons_in_literals_and_postgres_casts_are_not_binds():
    q = parse_query("select 'a:b', x::int from t -- c:d", {})
    assert q.parameters == {}
    assert q.statements == ("select 'a\\:b', x::int from t -- c\\:d",)


def test_identifier_placeholders_are_explicit():
    q = parse_query("select * from {{ .inputs.table | identifier }}", {"table": str})
    assert q.identifiers == ("table",) and q.parameters == {}
    assert check_identifier("table", "public.events") == "public.events"
    with pytest.raises(ValueError, match="not a plain identifier"):
        check_identifier("table", "events; drop table x")


@pytest.mark.parametrize(
    "template, inputs, field, message",
    [
        ("select {{.inputs.nope}}", {"a": int}, "query_template", "names no input"),
        ("select :nope", {}, "query_template", "names no input"),
        ("select * from {{.inputs.t}}", {"t": str}, "query_template", "identifier"),
        ("select '%{{.inputs.s}}%'", {"s": str}, "query_template", "inside the string literal"),
        ("select {{.inputs.s | upper}}", {"s": str}, "query_template", "unknown placeholder filter"),
        ("select {{.inputs.d}}", {"d": dict}, "inputs.d", "cannot be bound"),
        ("select * from {{.inputs.t | identifier}}", {"t": int}, "inputs.t", "must be of type str"),
        ("-- only a comment", {}, "query_template", "no SQL statement"),
    ],
)
def test_bad_templates_fail_naming_the_field(template, inputs, field, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse_query(template, inputs)
    assert error.value.field == field


NOT_A_VALUE = [  # (template, inputs, what the error says)
    ("select * from t order by {{.inputs.col}}", {"col": str}, "whole ORDER BY item"),
    ("select * from t order by a, {{ .inputs.col }} desc", {"col": str}, "whole ORDER BY item"),
    ("select * from t order by '{{.inputs.col}}'", {"col": str}, "whole ORDER BY item"),
    ("select * from t order by :n", {"n": int}, "sorts by a constant"),
    ("select g, count(*) from t group by {{.inputs.col}}", {"col": str}, "whole GROUP BY item"),
    ("select rank() over (partition by :col order by a) from t", {"col": str}, "whole PARTITION BY item"),
    ("select {{.inputs.col}} from t", {"col": str}, "whole SELECT list item"),
    ("select {{.inputs.col}}", {"col": str}, "whole SELECT list item"),
    ("select a, :col from t", {"col": str}, "whole SELECT list item"),
    ("select distinct {{.inputs.col}} from t", {"col": str}, "whole SELECT list item"),
    ("select {{.inputs.col}} as c from t", {"col": str}, "whole SELECT list item written as {{ .inputs.col }}"),
    ("select a, {{ .inputs.col }} c, b from t", {"col": str}, "named or not"),
    ("select a, case when b then 1 else 2 end, :col from t", {"col": str}, "whole SELECT list item"),
    ("select * from t where id in (select :x from u)", {"x": int}, "whole SELECT list item"),
    ("select a as {{.inputs.alias}} from t", {"alias": str}, "follows AS"),
    ("select cast(a as {{.inputs.type}}) from t", {"type": str}, "follows AS"),
    ("select * from t limit {{.inputs.n}}", {"n": str}, "row count (LIMIT): declare the input as int"),
    ("select * from t limit :skip, :n", {"skip": int, "n": float}, "row count (LIMIT)"),
    ("select * from t offset :skip", {"skip": str}, "row count (OFFSET)"),
]


@pytest.mark.parametrize("template, inputs, problem", NOT_A_VALUE)
def test_placeholders_outside_value_positions_are_refused_naming_them(template, inputs, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)) as error:
        parse_query(template, inputs)
    name = list(inputs)[-1]  # the offending one is the last declared
    assert error.value.field == "query_template"
    assert f"placeholder for input {name!r}" in str(error.value)
    if "row count" not in problem:
        assert f"{{{{ .inputs.{name} | identifier }}}}" in str(error.value)


VALUES = [  # placeholders in value positions, and the positions the rule allows
    "select * from t where a = :x",
    "select * from t where a in (:ids)",
    "select * from t where a in :ids",
    "select * from t where a in ({{.inputs.ids}})",
    "select :x as x, a from t",
    "select :x x from t",
    "select :x + 1 as y, coalesce(a, :x), f(:x, :x) from t",
    "select :x::int",
    "select * from t order by abs(a - :x)",
    "select * from t order by case when a = :x then 0 else 1 end",
    "select * from t limit {{.inputs.n}} offset :n",
    "select * from t limit :n, :n",
    "select * from t offset :n rows fetch first :n rows only",
    "insert into t select :x, :x",
    "insert into t (a, b) select :x, :n where not exists (select 1 from t where a = :x)",
    "insert into t values (:x, :n), (:n, :x)",
    "update t set a = :x where b = :n",
    "select * from {{ .inputs.col | identifier }} order by {{ .inputs.col | identifier }}",
    "select ':x' as c from t order by 1 -- :x",
    "select '{{.inputs.x}}' as x from t",
    "select {{.inputs.x}} + 1 as y, a from t",
    "insert into t select {{.inputs.x}}, :n",
]


@pytest.mark.parametrize("template", VALUES)
def test_value_positions_and_allowed_counts_still_bind(template):
    inputs = {"x": int, "n": int, "ids": List[int], "col": str}
    parse_query(template, {k: v for k, v in inputs.items() if k in template})


def test_reads_only_decides_read_only_opening():
    assert reads_only(["select 1", "with x as (select 1) select * from x", "values (1)"])
    assert reads_only(["select replace(name, 'a', 'b') from t"])
    for writes in (
        "insert into t values (1)",
        "with x as (select 1) delete from t",
        "select * into n from t",
        "pragma journal_mode = wal",
        "create temp table x (a)",
    ):
        assert not reads_only(["select 1", writes]), writes
