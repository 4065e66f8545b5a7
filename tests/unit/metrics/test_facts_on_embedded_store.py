"""Each catalog definition's facts query, run on the embedded store over the generated GA4
export, gives the facts (and per-unit totals) computed in Python from the same rows."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from functions.adapters.metric_store import QueryRejected
from functions.adapters.metric_store.duckdb_store import DuckDBStore
from functions.core.errors import Unavailable, Unprocessable
from functions.core.metrics.catalog import GA4_METRICS, GA4_PASSIVE_EVENTS, CatalogRef, resolve
from functions.core.metrics.facts import MetricDefinition, check_sql, facts_sql
from functions.models.experiments import ExperimentDefinition
from functions.services.experiments import metrics
from localdev import ga4_sample as ga4

Fact = tuple[str, datetime, float]
ROWS = ga4.generate()


@pytest.fixture(scope="module")
def warehouse() -> Iterator[DuckDBStore]:
    store = DuckDBStore()
    store.ensure_schema()
    ga4.load_duckdb(store, ROWS)
    yield store
    store.close()


def _unit(row: dict[str, Any]) -> str | None:
    return row["user_id"] or row["user_pseudo_id"]


def _money(field: str) -> Callable[[dict[str, Any]], float]:
    return lambda row: (row["ecommerce"] or {}).get(field) or 0.0


# the catalog, restated in Python: which rows count, and their value
PYTHON: dict[str, tuple[Callable[[dict[str, Any]], bool], Callable[[dict[str, Any]], float]]] = {
    "ga4.purchase_revenue": (lambda r: r["event_name"] == "purchase", _money("purchase_revenue_in_usd")),
    "ga4.refunds": (lambda r: r["event_name"] == "refund", _money("refund_value_in_usd")),
    "ga4.conversion": (lambda r: r["event_name"] == "purchase", lambda r: 1.0),
    "ga4.retention_d7": (lambda r: r["event_name"] not in GA4_PASSIVE_EVENTS, lambda r: 1.0),
}


def python_facts(name: str) -> list[Fact]:
    keep, value = PYTHON[name]
    return sorted((unit, ga4.at_micros(r["event_timestamp"]), value(r))
                  for r in ROWS if keep(r) and (unit := _unit(r)) is not None)


def sql_facts(store: DuckDBStore, defn: MetricDefinition) -> list[Fact]:
    return sorted((r["unit_id"], r["event_time"].astimezone(UTC), r["value"]) for r in store.query(facts_sql(defn)))


def same(a: list[Fact], b: list[Fact]) -> bool:
    return len(a) == len(b) and all(x[:2] == y[:2] and math.isclose(x[2], y[2], rel_tol=1e-12, abs_tol=1e-12)
                                    for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", GA4_METRICS)
def test_catalog_facts_equal_the_python_reading_of_the_rows(warehouse, name):
    expected = python_facts(name)
    assert expected, "the fixture has rows for every catalog metric"
    assert same(sql_facts(warehouse, resolve(CatalogRef(catalog=name), ga4_dataset=ga4.DATASET)), expected)


def test_rows_without_a_unit_are_dropped_and_pseudo_ids_stand_in(warehouse):
    facts = sql_facts(warehouse, resolve(CatalogRef(catalog="ga4.retention_d7"), ga4_dataset=ga4.DATASET))
    anonymous = sum(1 for r in ROWS if _unit(r) is None)
    units = {f[0] for f in facts}
    assert anonymous > 0 and len(facts) == sum(1 for r in ROWS if r["event_name"] not in GA4_PASSIVE_EVENTS) - anonymous
    assert any(u.startswith("user-") for u in units) and any(u.startswith("app-instance-") for u in units)


def _first_seen() -> dict[str, datetime]:
    first: dict[str, datetime] = {}
    for r in ROWS:
        unit = _unit(r)
        if unit and r["event_name"] == "session_start":
            at = ga4.at_micros(r["event_timestamp"])
            first[unit] = min(first.get(unit, at), at)
    return first


def python_per_unit(defn: MetricDefinition) -> dict[str, float]:
    """Per unit, over [first seen + delay, + window): SUM, COUNT or ANY of the facts."""
    first, totals = _first_seen(), defaultdict(float)
    for unit, at, value in python_facts(defn.name):
        start = first.get(unit)
        if start is None:
            continue
        begin = start + timedelta(hours=defn.delayHours)
        if at < begin or (defn.windowHours is not None and at >= begin + timedelta(hours=defn.windowHours)):
            continue
        totals[unit] = {"SUM": totals[unit] + value, "COUNT": totals[unit] + 1, "ANY": 1.0}[defn.aggregation]
    return {unit: totals.get(unit, 0.0) for unit in first}


def sql_per_unit(store: DuckDBStore, defn: MetricDefinition) -> dict[str, float]:
    """The same in SQL, with the facts query as given (what the analysis will do with it)."""
    window = (f"AND f.event_time < TIMESTAMP_ADD(e.at, INTERVAL {int((defn.delayHours + defn.windowHours) * 3600)} "
              f"SECOND)") if defn.windowHours is not None else ""
    agg = {"SUM": "SUM(f.value)", "COUNT": "COUNT(f.unit_id)", "ANY": "MAX(IF(f.unit_id IS NULL, 0, 1))"}
    sql = f"""
        WITH e AS (SELECT COALESCE(user_id, user_pseudo_id) AS unit_id, MIN(TIMESTAMP_MICROS(event_timestamp)) AS at
                   FROM `{ga4.DATASET}.events_*` WHERE event_name = 'session_start'
                   AND COALESCE(user_id, user_pseudo_id) IS NOT NULL GROUP BY 1),
             f AS ({facts_sql(defn)})
        SELECT e.unit_id, COALESCE({agg[defn.aggregation]}, 0) AS total FROM e LEFT JOIN f ON f.unit_id = e.unit_id
          AND f.event_time >= TIMESTAMP_ADD(e.at, INTERVAL {int(defn.delayHours * 3600)} SECOND) {window}
        GROUP BY e.unit_id"""
    return {r["unit_id"]: float(r["total"]) for r in store.query(sql)}


@pytest.mark.parametrize("name", GA4_METRICS)
def test_per_unit_totals_in_the_attribution_window_equal_python(warehouse, name):
    defn = resolve(CatalogRef(catalog=name), ga4_dataset=ga4.DATASET)
    expected, got = python_per_unit(defn), sql_per_unit(warehouse, defn)
    assert got.keys() == expected.keys()
    assert all(math.isclose(got[u], expected[u], rel_tol=1e-12, abs_tol=1e-9) for u in expected)
    assert 0 < sum(1 for v in expected.values() if v > 0) < len(expected)  # neither nobody nor everybody


def test_an_inline_definition_over_nested_event_params(warehouse):
    defn = MetricDefinition(
        name="refund-local", sql=f"SELECT * FROM `{ga4.DATASET}.events_*` WHERE _TABLE_SUFFIX >= '20261005'",
        unitColumn="user_pseudo_id", timestampColumn="TIMESTAMP_MICROS(event_timestamp)",
        valueExpression="(SELECT p.value.double_value FROM UNNEST(event_params) AS p WHERE p.key = 'value')",
        where="event_name = 'refund'")
    params = {r["event_timestamp"]: next(p["value"]["double_value"] for p in r["event_params"] if p["key"] == "value")
              for r in ROWS if r["event_name"] == "refund" and r["event_date"] >= "20261005"}
    expected = sorted((r["user_pseudo_id"], ga4.at_micros(r["event_timestamp"]), params[r["event_timestamp"]])
                      for r in ROWS if r["event_timestamp"] in params and r["event_name"] == "refund")
    assert expected and same(sql_facts(warehouse, defn), expected)


def test_kpi_catalog_metric_counts_a_redelivered_event_once(warehouse):
    now = datetime(2026, 11, 2, tzinfo=UTC)
    row = {"unit_id": "u1", "metric": "revenue", "value": 5.0, "pre_value": None, "region": None, "event_time": now}
    warehouse.append("kpi_events", [{**row, "event_id": "e1", "received_at": now},
                                    {**row, "event_id": "e1", "received_at": now + timedelta(seconds=3)},
                                    {**row, "event_id": "e2", "received_at": now, "value": 2.5},
                                    {**row, "event_id": "e3", "received_at": now, "metric": "refund"}])
    defn = metrics.resolve(CatalogRef(catalog="kpi.revenue"))
    assert sql_facts(warehouse, defn) == [("u1", now, 2.5), ("u1", now, 5.0)]


def _experiment(kpi_definition: dict[str, Any] | None, guard_definition: dict[str, Any] | None = None):
    kpi = {"metric": "revenue", "role": "PRIMARY", **({"definition": kpi_definition} if kpi_definition else {})}
    guard = {"metric": "refunds", "absoluteMax": 1.0, **({"definition": guard_definition} if guard_definition else {})}
    return ExperimentDefinition.model_validate({
        "name": "x", "hypothesis": {"statement": "s"}, "offerType": "PRICE_CHANGE",
        "variants": [{"key": "a", "weight": 50}, {"key": "b", "weight": 50}], "kpis": [kpi], "guardrails": [guard]})


@pytest.fixture
def checked_against(warehouse, monkeypatch):
    monkeypatch.setattr(metrics, "store", lambda: warehouse)
    monkeypatch.setattr(metrics, "settings", lambda: type("S", (), {"ga4_dataset": ga4.DATASET})())
    return warehouse


@pytest.mark.parametrize("name", GA4_METRICS)
def test_the_strict_check_query_reads_the_same_facts(warehouse, name):
    defn = resolve(CatalogRef(catalog=name), ga4_dataset=ga4.DATASET)
    assert same(sorted((r["unit_id"], r["event_time"].astimezone(UTC), r["value"])
                       for r in warehouse.query(check_sql(defn))), python_facts(name))


def test_the_creation_check_accepts_catalog_and_inline_definitions(checked_against):
    metrics.check(_experiment({"catalog": "ga4.purchase_revenue"}, {"catalog": "ga4.refunds"}))
    metrics.check(_experiment(None))  # kpi.revenue, kpi.refunds over the landing table


def _broken(source: str = f"{ga4.DATASET}.events_*", unit: str = "user_id",
            time: str = "TIMESTAMP_MICROS(event_timestamp)") -> dict[str, Any]:
    return {"name": "m", "source": source, "unitColumn": unit, "timestampColumn": time}


@pytest.mark.parametrize(("definition", "words"), [
    (_broken(unit="user_idd"), "user_idd"),  # no such column
    (_broken(source="nowhere.events_*"), "nowhere"),  # no such dataset
    (_broken(time="TIMESTAMP_MICROS(event_name)"), "make_timestamp"),  # a type error
    (_broken(time="event_timestamp"), "BIGINT, INTERVAL"),  # microseconds, not a TIMESTAMP
    (_broken(time="event_date"), "VARCHAR, INTERVAL"),  # a date string, not a TIMESTAMP
    ({**_broken(), "valueExpression": "event_name"}, "VARCHAR"),  # a string value
    ({**_broken(), "valueExpression": "event_name = 'purchase'"}, "BOOLEAN"),  # IF(cond, 1, 0) is meant
])
def test_the_creation_check_names_the_broken_metric(checked_against, definition, words):
    with pytest.raises(Unprocessable) as info:
        metrics.check(_experiment({"catalog": "ga4.conversion"}, definition))
    err = info.value
    assert err.code == "METRIC_DEFINITION_INVALID" and err.status == 422
    assert err.details["metric"] == "refunds" and err.details["engine"] == "duckdb"
    assert words in err.details["message"]
    with pytest.raises(QueryRejected):  # the strictly typed facts query alone is refused too
        checked_against.dry_run(check_sql(MetricDefinition.model_validate(definition)))


def test_an_unreachable_store_is_a_503(checked_against, monkeypatch):
    def unreachable():
        raise ConnectionError("no route to host")

    monkeypatch.setattr(metrics, "store", unreachable)
    with pytest.raises(Unavailable) as info:
        metrics.check(_experiment({"catalog": "ga4.conversion"}))
    assert info.value.status == 503 and info.value.code == "METRIC_STORE_UNAVAILABLE"


@pytest.mark.parametrize("name", ["ga4.purchase_revenue", "ga4.retention_d7"])
def test_facts_since_a_time_read_only_the_shards_that_can_hold_them(warehouse, name):
    since = ga4.START + timedelta(days=5, minutes=30)
    defn = resolve(CatalogRef(catalog=name), ga4_dataset=ga4.DATASET)
    sql = facts_sql(defn, since="since")
    assert "_TABLE_SUFFIX >=" in sql
    got = sorted((r["unit_id"], r["event_time"].astimezone(UTC), r["value"])
                 for r in warehouse.query(sql, {"since": since}))
    expected = [f for f in python_facts(name) if f[1] >= since]
    assert expected and len(expected) < len(python_facts(name)) and same(got, expected)
    # the shard filter is what prunes: shards dated before the day before `since` are never read
    shards = warehouse.query(f"SELECT DISTINCT _TABLE_SUFFIX AS s FROM `{ga4.DATASET}.events_*` WHERE "
                             "_TABLE_SUFFIX >= FORMAT_DATE('%Y%m%d', DATE_SUB(DATE(@since), INTERVAL 1 DAY))",
                             {"since": since})
    assert min(r["s"] for r in shards) == (since - timedelta(days=1)).strftime("%Y%m%d")


def test_since_must_name_a_parameter():
    with pytest.raises(ValueError):
        facts_sql(resolve(CatalogRef(catalog="ga4.refunds"), ga4_dataset="d"), since="x; DROP")


def test_what_a_stored_kpi_or_guardrail_reads(checked_against):
    ratio = {"name": "refund-rate", "numerator": {"catalog": "ga4.refunds"},
             "denominator": {"catalog": "ga4.purchase_revenue"}}
    stored = _experiment(None).model_dump(mode="json")
    stored["kpis"].append({"metric": "rr", "role": "SECONDARY", "type": "RATIO", "numerator": "refunds",
                           "denominator": "revenue", "definition": ratio})
    stored["kpis"].append({"metric": "plain", "role": "SECONDARY", "type": "RATIO", "numerator": "a",
                           "denominator": "b"})
    assert metrics.kpi_facts(stored["kpis"][0])["value"].name == "kpi.revenue"
    parts = metrics.kpi_facts(stored["kpis"][1])
    assert (parts["numerator"].name, parts["denominator"].name) == ("ga4.refunds", "ga4.purchase_revenue")
    assert parts["numerator"].source == f"{ga4.DATASET}.events_*"
    plain = metrics.kpi_facts(stored["kpis"][2])
    assert (plain["numerator"].name, plain["denominator"].name) == ("kpi.a", "kpi.b")
    assert metrics.guardrail_facts(stored["guardrails"][0]).name == "kpi.refunds"
    assert [m for m, _ in metrics.facts_of(ExperimentDefinition.model_validate(stored))] == [
        "revenue", "rr", "rr", "plain", "plain", "refunds"]


def test_the_fixture_describes_the_same_columns_for_bigquery(warehouse):
    tree = sqlglot.parse_one(ga4.bigquery_ddl("analytics_1", "20261001"), read="bigquery")
    assert isinstance(tree, exp.Create)
    assert [c.name for c in tree.find_all(exp.ColumnDef) if c.parent is tree.this] == ga4.ARROW_SCHEMA.names
    # the DDL, transpiled, gives the column types the loader's Arrow schema gives
    con = warehouse._con
    con.execute("CREATE SCHEMA IF NOT EXISTS ddl_check")
    warehouse.query(ga4.bigquery_ddl("ddl_check", "20261001"))
    columns = ("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
               "AND table_name = 'events_20261001' ORDER BY ordinal_position")
    assert con.execute(columns, ["ddl_check"]).fetchall() == con.execute(columns, [ga4.DATASET]).fetchall()
