import datetime
from typing import List

import pytest
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.sql.query import check_identifier, parse_query, split_statements


def test_upstream_placeholders_become_bound_parameters_quoted_or_not():
    q = parse_query("select * from t where name = '{{ .inputs.name }}' and n < {{.inputs.n}}", {"name": str, "n": int})
    assert q.statements == ("select * from t where name = :name and n < :n",)
    assert q.parameters == {"name": "str", "n": "int"}


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
