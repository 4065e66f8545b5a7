"""Metric definitions are checked when written: hostile or malformed SQL fragments are refused
with a coded 422 through the model validation, and what is accepted compiles to one SELECT."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from pydantic import ValidationError
from sqlglot import exp

from functions.api.router import validate
from functions.core.errors import Unprocessable
from functions.core.metrics.catalog import GA4_METRICS, CatalogRef, kpi_metric, resolve
from functions.core.metrics.facts import FACT_COLUMNS, MetricDefinition, check_sql, facts_sql, sql_string
from functions.models.experiments import CreateExperiment, Guardrail, Kpi

GOOD = {"name": "purchases", "source": "analytics_1.events_*", "unitColumn": "COALESCE(user_id, user_pseudo_id)",
        "timestampColumn": "TIMESTAMP_MICROS(event_timestamp)", "where": "event_name = 'purchase'",
        "valueExpression": "ecommerce.purchase_revenue_in_usd", "aggregation": "SUM"}


def refused(**change: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as info:
        MetricDefinition.model_validate({**GOOD, **change})
    return info.value.errors()[0]


HOSTILE = [
    ("where", "TRUE; DROP TABLE kpi_events"),
    ("where", "TRUE -- AND event_name = 'purchase'"),
    ("where", "TRUE /* hidden */"),
    ("where", "TRUE # hidden"),
    ("where", "event_name IN (SELECT name FROM x) OR TRUE) UNION ALL (SELECT 1"),
    ("valueExpression", "(DELETE FROM kpi_events WHERE TRUE)"),
    ("valueExpression", "(SELECT 1 FROM t) */"),
    ("unitColumn", "user_id) AS unit_id FROM secret.t UNION ALL SELECT (x"),
    ("unitColumn", "SELECT user_id FROM t"),
    ("valueExpression", "(SELECT 1) UNION ALL (SELECT 2)"),
    ("unitColumn", "user_id AS u"),
    ("timestampColumn", "TIMESTAMP_MICROS(event_timestamp"),
    ("timestampColumn", "   "),
    ("where", "event_name ="),
    ("where", "a, b"),
    ("where", "x" * 2001),
    ("where", "(" * 41 + "1" + ")" * 41),
    ("where", "NOT " * 990 + "TRUE"),
    ("valueExpression", "CASE " * 700),
    ("where", "END FROM 0"),
    ("where", "{:}``"),  # sqlglot 30.30 raises AttributeError here (a parser bug): still a refusal, not a 500
    ("sql", "SELECT * FROM t; DELETE FROM t WHERE TRUE"),
    ("sql", "INSERT INTO t SELECT * FROM u"),
    ("sql", "CREATE TABLE t AS SELECT 1"),
    ("sql", "EXPORT DATA OPTIONS(uri='gs://x/*') AS SELECT 1"),
    ("sql", "MERGE t USING u ON TRUE WHEN MATCHED THEN DELETE"),
    ("sql", "user_id"),
]


@pytest.mark.parametrize(("field", "fragment"), HOSTILE)
def test_a_hostile_or_malformed_fragment_is_refused_with_its_own_code(field, fragment):
    change = {field: fragment}
    if field == "sql":
        change["source"] = None
    error = refused(**change)
    assert error["type"] == "sql_fragment_refused"
    assert error["loc"] == (field,)


def test_the_parsers_own_message_says_where_a_fragment_is_malformed():
    error = refused(where="event_name = = 'purchase'")
    assert "line 1" in error["msg"] and "column" in error["msg"]


@pytest.mark.parametrize("fragment", ["event_name = 'delete_account'", "event_name = 'drop; --'",
                                      "`update` > 0", "update_time > 0", "set_id IS NOT NULL"])
def test_keywords_inside_literals_and_names_are_only_text(fragment):
    # a literal with a separator or a comment marker is refused outright (the rule is textual);
    # a keyword inside a literal or a back-quoted name is not a keyword
    if ";" in fragment:
        assert refused(where=fragment)["type"] == "sql_fragment_refused"
    else:
        assert MetricDefinition.model_validate({**GOOD, "where": fragment}).where == fragment


def test_a_parenthesised_scalar_subquery_is_an_expression():
    value = "(SELECT p.value.double_value FROM UNNEST(event_params) AS p WHERE p.key = 'value')"
    assert MetricDefinition.model_validate({**GOOD, "valueExpression": value}).valueExpression == value


@pytest.mark.parametrize("table", ["kpi_events", "analytics_123.events_*", "my-project.analytics_1.events_20261101",
                                   "ds.t"])
def test_table_references_that_are_accepted(table):
    assert MetricDefinition.model_validate({**GOOD, "source": table}).source == table


@pytest.mark.parametrize("table", ["ds.events_*.x", "ds.*", "ds.t WHERE TRUE", "`ds.t`", "ds.t)", "a.b.c.d", "ds..t",
                                   "ds.ev*nts", ""])
def test_table_references_that_are_refused(table):
    assert refused(source=table)["type"] == "sql_fragment_refused"


def test_exactly_one_of_source_and_sql():
    assert refused(sql="SELECT * FROM t")["type"] == "metric_source"
    assert refused(source=None)["type"] == "metric_source"
    assert MetricDefinition.model_validate({**GOOD, "source": None, "sql": "SELECT * FROM t"}).sql


def test_numbers_and_unknown_fields():
    assert refused(cap=0)["loc"] == ("cap",)
    assert refused(windowHours=-1)["loc"] == ("windowHours",)
    assert refused(delayHours=float("inf"))["loc"] == ("delayHours",)
    assert refused(aggregation="MEDIAN")["loc"] == ("aggregation",)
    assert refused(extra=1)["type"] == "extra_forbidden"


def _projections(sql: str) -> list[str]:
    tree = sqlglot.parse_one(sql, read="bigquery")
    assert isinstance(tree, exp.Select)
    return [p.alias_or_name for p in tree.expressions]


@pytest.mark.parametrize("defn", [MetricDefinition.model_validate(GOOD),
                                  MetricDefinition.model_validate({**GOOD, "source": None, "where": None,
                                                                   "sql": "SELECT * FROM a UNION ALL SELECT * FROM b"}),
                                  *(resolve(CatalogRef(catalog=n), ga4_dataset="analytics_9") for n in GA4_METRICS),
                                  kpi_metric("revenue")])
def test_facts_sql_is_one_select_of_the_three_fact_columns(defn):
    for sql in (facts_sql(defn), facts_sql(defn, since="since"), check_sql(defn)):
        assert len(sqlglot.parse(sql, read="bigquery")) == 1
        assert tuple(_projections(sql)) == FACT_COLUMNS


def test_catalog_ga4_metrics_read_the_configured_dataset():
    for name in GA4_METRICS:
        assert "`analytics_9.events_*`" in facts_sql(resolve(CatalogRef(catalog=name), ga4_dataset="analytics_9"))
    retention = resolve(CatalogRef(catalog="ga4.retention_d7"), ga4_dataset="x")
    assert (retention.delayHours, retention.windowHours, retention.aggregation) == (168, 24, "ANY")


@pytest.mark.parametrize("text", ["it's", "back\\slash", "quote\\'mix", "line\nbreak", "plain"])
def test_sql_string_is_the_literal_of_its_text(text):
    tree = sqlglot.parse_one(f"SELECT {sql_string(text)}", read="bigquery")
    assert tree.expressions[0].this == text


def _experiment(**kpi: Any) -> dict[str, Any]:
    return {"name": "x", "hypothesis": {"statement": "s"}, "offerType": "PRICE_CHANGE",
            "variants": [{"key": "a", "weight": 50}, {"key": "b", "weight": 50}],
            "kpis": [{"metric": "revenue", "role": "PRIMARY", **kpi}]}


def test_an_experiment_with_a_hostile_inline_definition_is_a_coded_422():
    body = _experiment(definition={**GOOD, "where": "TRUE; DROP TABLE kpi_events"})
    with pytest.raises(Unprocessable) as info:
        validate(CreateExperiment, body)
    assert info.value.status == 422
    [error] = info.value.details["errors"]
    assert error["type"] == "sql_fragment_refused"
    assert error["field"] == "kpis.0.definition.inline.where"


def test_kpi_and_guardrail_definitions():
    assert Kpi.model_validate({"metric": "r", "role": "PRIMARY", "definition": {"catalog": "ga4.refunds"}})
    with pytest.raises(ValidationError) as info:
        Kpi.model_validate({"metric": "r", "role": "PRIMARY", "definition": {"catalog": "ga4.revenue"}})
    assert info.value.errors()[0]["type"] == "unknown_catalog_metric"
    ratio = {"name": "refund-rate", "numerator": {"catalog": "ga4.refunds"},
             "denominator": {"catalog": "ga4.purchase_revenue"}}
    with pytest.raises(ValidationError, match="needs a KPI of type RATIO"):
        Kpi.model_validate({"metric": "r", "role": "PRIMARY", "definition": ratio})
    assert Kpi.model_validate({"metric": "r", "role": "PRIMARY", "type": "RATIO", "numerator": "a",
                               "denominator": "b", "definition": ratio})
    with pytest.raises(ValidationError, match="definition is a ratio"):
        Kpi.model_validate({"metric": "r", "role": "PRIMARY", "type": "RATIO", "numerator": "a", "denominator": "b",
                            "definition": {"catalog": "ga4.refunds"}})
    with pytest.raises(ValidationError):  # a guardrail has no ratio definitions
        Guardrail.model_validate({"metric": "g", "absoluteMax": 1, "definition": ratio})
    guard = Guardrail.model_validate({"metric": "g", "absoluteMax": 1, "definition": {"catalog": "kpi.refund"}})
    assert isinstance(guard.definition, CatalogRef)


@pytest.mark.parametrize(("kpi", "accepted"), [
    ({"historicalSkewness": 6.18}, True), ({"historicalSkewness": 0}, True),
    ({"historicalSkewness": -1}, False), ({"historicalSkewness": "NaN"}, False), ({"historicalSkewness": 1e300}, False),
    ({"historicalSkewness": 3, "type": "PROPORTION"}, False),
    ({"historicalSkewness": 3, "type": "RATIO", "numerator": "a", "denominator": "b"}, False),
])
def test_a_historical_skewness_is_a_finite_non_negative_number_of_a_mean_kpi(kpi, accepted):
    if accepted:
        assert validate(CreateExperiment, _experiment(**kpi)).kpis[0].historicalSkewness == kpi["historicalSkewness"]
        return
    with pytest.raises(Unprocessable) as info:
        validate(CreateExperiment, _experiment(**kpi))
    assert info.value.status == 422 and info.value.details["errors"][0]["field"].startswith("kpis.0")


def test_an_experiments_sql_is_bounded_before_any_of_it_is_parsed(monkeypatch):
    from functions.core.metrics import facts

    parsed: list[str] = []
    real = facts._parse
    monkeypatch.setattr(facts, "_parse", lambda text, tokens: parsed.append(text) or real(text, tokens))
    where = " OR ".join(f"event_name = 'e{i}'" for i in range(90))  # about 1,800 characters, each fine alone
    body = _experiment(definition={**GOOD, "where": where})
    body["guardrails"] = [{"metric": f"g{i}", "absoluteMax": 1, "definition": {**GOOD, "where": where}}
                          for i in range(13)]
    with pytest.raises(Unprocessable) as info:
        validate(CreateExperiment, body)
    assert "characters of text" in info.value.message and parsed == []
    body["guardrails"] = body["guardrails"][:3]  # within the budget: parsed and accepted
    assert validate(CreateExperiment, body) and len(parsed) > 0
