"""The metric-store contract, held by both engines: the embedded DuckDB store and the BigQuery
store on the BigQuery API emulator. Same rows, same SQL (BigQuery dialect), same answers; a
query either engine refuses is a QueryRejected that changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from functions.adapters.metric_store import AppendRejected, QueryRejected, schema
from functions.adapters.metric_store.port import MetricStore

T0 = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


def kpi(event_id: str, unit: str, value: float, *, metric: str = "revenue", minutes: int = 0,
        pre: float | None = None, region: str | None = "EU", received: int = 0) -> dict:
    at = T0 + timedelta(minutes=minutes)
    return {"event_id": event_id, "unit_id": unit, "metric": metric, "value": value, "pre_value": pre,
            "region": region, "event_time": at, "received_at": at + timedelta(seconds=1 + received)}


def exposure(event_id: str, unit: str, arm: str, *, consent: bool = True, minutes: int = 0) -> dict:
    at = T0 + timedelta(minutes=minutes)
    held = arm == "holdout"
    return {"event_id": event_id, "experiment_id": "exp-1", "unit_id": unit,
            "status": "HOLDOUT" if held else "ASSIGNED", "variant": None if held else arm,
            "analytics_consent": consent, "exposed_at": at, "received_at": at}


def count(store: MetricStore, table: str) -> int:
    return int(store.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])


def test_ensure_schema_is_idempotent_and_creates_every_landing_table(store):
    store.ensure_schema()
    store.ensure_schema()
    for table, columns in schema.COLUMNS.items():
        assert store.dry_run(f"SELECT * FROM {table}").columns == tuple(name for name, _ in columns)
        assert count(store, table) == 0


def test_append_reads_back_every_column_type(store):
    rows = {
        schema.KPI_EVENTS: [kpi("k1", "u1", 12.5, pre=3.25), kpi("k2", "u2", -0.1, pre=None, region=None)],
        schema.EXPOSURES: [exposure("x1", "u1", "control"), exposure("x2", "u2", "holdout", consent=False)],
        schema.FRAUD_FLAGS: [
            {"event_id": "f1", "unit_id": "u1", "reason": "velocity", "source": "rules",
             "flagged_at": T0.astimezone(CET), "received_at": T0},  # a +01:00 instant lands as UTC
            {"event_id": "f2", "unit_id": "u2", "reason": None, "source": None,
             "flagged_at": T0, "received_at": T0 + timedelta(microseconds=1)},
        ],
    }
    for table, batch in rows.items():
        assert store.append(table, batch) == len(batch)
        back = store.query(f"SELECT * FROM {table} ORDER BY event_id")
        assert back == batch
        for row in back:
            for value in row.values():
                if isinstance(value, datetime):
                    assert value.utcoffset() == timedelta(0)
    assert store.append(schema.KPI_EVENTS, []) == 0


def _without(row: dict, key: str) -> dict:
    return {k: v for k, v in row.items() if k != key}


BAD_ROWS = {
    "missing required": _without(kpi("b", "u", 1.0), "unit_id"),
    "None in a required column": {**kpi("b", "u", 1.0), "metric": None},
    "string for FLOAT64": {**kpi("b", "u", 1.0), "value": "abc"},
    "bool for FLOAT64": {**kpi("b", "u", 1.0), "value": True},
    "int for STRING": {**kpi("b", "u", 1.0), "unit_id": 7},
    "text for TIMESTAMP": {**kpi("b", "u", 1.0), "event_time": "2026-11-02T09:30:00Z"},
    "unknown column": {**kpi("b", "u", 1.0), "is_admin": True},
}


@pytest.mark.parametrize("bad", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_row_that_does_not_fit_is_refused_with_its_batch(store, bad):
    with pytest.raises(AppendRejected, match="row 1"):
        store.append(schema.KPI_EVENTS, [kpi("good", "u", 1.0), bad])
    with pytest.raises(AppendRejected, match="unknown landing table"):
        store.append("kpi_events; DROP TABLE exposures", [kpi("good", "u", 1.0)])
    assert count(store, schema.KPI_EVENTS) == 0
    assert count(store, schema.EXPOSURES) == 0


def test_large_appends_go_in_bounded_batches(bigquery_store, monkeypatch):
    from functions.adapters.metric_store import bigquery_store as module

    monkeypatch.setattr(module, "BATCH_ROWS", 4)
    sizes: list[int] = []
    real = bigquery_store._client.insert_rows_json

    def spy(table, rows, **kwargs):
        sizes.append(len(rows))
        assert kwargs["row_ids"] == [r["event_id"] for r in rows]
        return real(table, rows, **kwargs)

    monkeypatch.setattr(bigquery_store._client, "insert_rows_json", spy)
    assert bigquery_store.append(schema.KPI_EVENTS, [kpi(f"k{i}", "u", float(i)) for i in range(10)]) == 10
    assert sizes == [4, 4, 2]
    assert bigquery_store.query("SELECT SUM(value) AS s FROM kpi_events") == [{"s": 45.0}]


def test_a_row_landed_twice_counts_once_through_deduped(store):
    first = kpi("dup", "u1", 5.0)
    store.append(schema.KPI_EVENTS, [first, kpi("other", "u2", 7.0)])
    store.append(schema.KPI_EVENTS, [kpi("dup", "u1", 5.0, received=60)])  # a redelivery, later
    store.append(schema.KPI_EVENTS, [kpi("dup", "u1", 5.0, received=90)] * 2)  # twice in one batch
    assert count(store, schema.KPI_EVENTS) >= 2
    deduped = store.query(f"SELECT event_id, SUM(value) AS total, MIN(received_at) AS received, COUNT(*) AS n "
                          f"FROM {schema.deduped(schema.KPI_EVENTS)} GROUP BY event_id ORDER BY event_id")
    assert deduped == [
        {"event_id": "dup", "total": 5.0, "received": first["received_at"], "n": 1},
        {"event_id": "other", "total": 7.0, "received": T0 + timedelta(seconds=1), "n": 1},
    ]


def test_every_parameter_type_binds(store):
    params = {"s": "naïve 'quoted'", "b": True, "i": 2**53 + 1, "f": 0.1, "t": T0.astimezone(CET),
              "strs": ["a", "b"], "ints": (1, 2, 3), "floats": [1, 2.5], "bools": [False], "times": [T0]}
    row = store.query("SELECT @s AS s, @b AS b, @i AS i, @f AS f, @t AS t, "
                      "ARRAY_LENGTH(@strs) AS n_strs, (SELECT SUM(x) FROM UNNEST(@ints) AS x) AS sum_ints, "
                      "(SELECT SUM(x) FROM UNNEST(@floats) AS x) AS sum_floats, @bools[OFFSET(0)] AS first_bool, "
                      "@times[OFFSET(0)] AS first_time", params)[0]
    assert row == {"s": params["s"], "b": True, "i": 2**53 + 1, "f": 0.1, "t": T0, "n_strs": 2, "sum_ints": 6,
                   "sum_floats": 3.5, "first_bool": False, "first_time": T0}


def test_array_and_timestamp_parameters_filter_rows(store):
    store.append(schema.KPI_EVENTS, [kpi(f"e{i}", f"u{i % 4}", float(i), minutes=i) for i in range(12)])
    sql = (f"SELECT unit_id, COUNT(*) AS n FROM {schema.deduped(schema.KPI_EVENTS)} "
           "WHERE unit_id IN UNNEST(@units) AND event_time >= @since AND event_time < @until "
           "GROUP BY unit_id ORDER BY unit_id")
    got = store.query(sql, {"units": ["u1", "u3", "nobody"], "since": T0 + timedelta(minutes=3),
                            "until": T0 + timedelta(minutes=11)})
    assert got == [{"unit_id": "u1", "n": 2}, {"unit_id": "u3", "n": 2}]  # minutes 5, 9 and 3, 7
    assert store.query(sql, {"units": [], "since": T0, "until": T0 + timedelta(days=1)}) == []


@pytest.mark.parametrize("bad", [{"p": ["a", None]}, {"p": None}, {"p": [1, "a"]}, {"p": {"a": 1}}, {"p": b"x"}])
def test_a_parameter_without_a_bigquery_type_is_rejected(store, bad):
    with pytest.raises(QueryRejected, match="@p"):
        store.query("SELECT 1 AS one FROM UNNEST([1]) WHERE @p IS NOT NULL", bad)


BROKEN = {
    "unknown column": "SELECT no_such_column FROM kpi_events",
    "unknown table": "SELECT * FROM no_such_table",
    "syntax error": "SELEC unit_id FROM kpi_events",
    "bad insert": "INSERT INTO kpi_events (event_id, no_such_column) VALUES ('x', 1)",
    "type error": "SELECT value + 'abc' AS nonsense FROM kpi_events WHERE unit_id = 1",
}


@pytest.mark.parametrize("sql", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_query_is_rejected_and_changes_nothing(store, sql):
    store.append(schema.KPI_EVENTS, [kpi("k1", "u1", 1.0)])
    before = store.query("SELECT * FROM kpi_events")
    with pytest.raises(QueryRejected) as caught:
        store.query(sql)
    assert caught.value.message.strip()
    assert store.query("SELECT * FROM kpi_events") == before


@pytest.mark.parametrize("name", ["unknown column", "unknown table", "syntax error"])
def test_dry_run_rejects_a_query_that_cannot_bind(store, name):
    with pytest.raises(QueryRejected) as caught:
        store.dry_run(BROKEN[name])
    assert caught.value.message.strip()


def test_dry_run_of_a_runtime_cast_error_differs_between_engines(store):
    """Recorded difference: BigQuery refuses `FLOAT64 + 'abc'` and `STRING = 1` while analysing
    (so does the emulator); DuckDB casts implicitly and fails only on a row, so its dry run (bind,
    no execution) accepts the query and only running it raises."""
    store.append(schema.KPI_EVENTS, [kpi("k1", "u1", 1.0)])
    if store.engine == "duckdb":
        assert store.dry_run(BROKEN["type error"]).columns == ("nonsense",)
    else:
        with pytest.raises(QueryRejected):
            store.dry_run(BROKEN["type error"])
    with pytest.raises(QueryRejected):
        store.query(BROKEN["type error"])


def test_dry_run_names_the_columns_and_runs_nothing(store):
    store.append(schema.KPI_EVENTS, [kpi("k1", "u1", 1.0)])
    plan = store.dry_run("SELECT unit_id, SUM(value) AS total, COUNTIF(value > @x) AS above "
                         "FROM kpi_events GROUP BY unit_id", {"x": 0.5})
    assert plan.columns == ("unit_id", "total", "above")
    assert plan.bytes_processed >= 0  # the emulator and the embedded engine report 0


# -- both engines, same rows, same answer ------------------------------------------------------

AGREE_SQL = """
WITH kpi AS (
  SELECT * FROM kpi_events
  WHERE metric = @metric
  QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY received_at) = 1
),
per_unit AS (
  SELECT IF(e.status = 'HOLDOUT', 'holdout', e.variant) AS arm, k.unit_id, SUM(k.value) AS total,
         COUNTIF(k.value > @big) AS big_events,
         ARRAY_AGG(k.region IGNORE NULLS ORDER BY k.event_time DESC)[SAFE_OFFSET(0)] AS last_region
  FROM kpi AS k JOIN exposures AS e USING (unit_id)
  WHERE e.experiment_id = @experiment AND e.analytics_consent
  GROUP BY arm, k.unit_id
),
capped AS (
  SELECT *, PERCENTILE_CONT(total, 0.99) OVER () AS p99 FROM per_unit
)
SELECT arm, COUNT(*) AS units, SUM(total) AS raw_sum, SUM(LEAST(total, p99)) AS capped_sum,
       SUM(total * total) AS sum_sq,
       SUM(big_events) AS big_events, COUNTIF(last_region IS NULL) AS no_region,
       COUNTIF(last_region = 'EU') AS last_eu, MAX(p99) AS p99
FROM capped GROUP BY arm ORDER BY arm
"""


def _agree_rows() -> tuple[list[dict], list[dict]]:
    events, exposures = [], []
    for u in range(60):
        arm = ("control", "treatment", "holdout")[u % 3]
        exposures.append(exposure(f"x{u}", f"u{u}", arm, consent=u % 11 != 0))
        for j in range(u % 5 + 1):
            value = float((u * 37 + j * 11) % 23) + (500.0 if u == 7 and j == 0 else 0.0)  # one outlier
            region = None if u % 6 == 1 or (u + j) % 4 == 0 else ("EU", "US", "JP")[(u + j) % 3]
            events.append(kpi(f"k{u}-{j}", f"u{u}", value, minutes=j * 7 + u, region=region))
        events.append(kpi(f"k{u}-0", f"u{u}", 999.0, minutes=u, received=30))  # a later redelivery: ignored
        events.append(kpi(f"c{u}", f"u{u}", 1.0, metric="clicks"))
    return events, exposures


def test_both_engines_return_the_same_answer(duckdb_store, bigquery_store):
    events, exposures = _agree_rows()
    params = {"metric": "revenue", "experiment": "exp-1", "big": 10.0}
    answers = []
    for store in (duckdb_store, bigquery_store):
        store.append(schema.KPI_EVENTS, events)
        store.append(schema.EXPOSURES, exposures)
        answers.append(store.query(AGREE_SQL, params))
    embedded, bigquery = answers
    assert [r["arm"] for r in embedded] == ["control", "holdout", "treatment"]
    assert sum(r["units"] for r in embedded) == 60 - 6  # units 0, 11, ..., 55 gave no consent
    assert sum(r["raw_sum"] - r["capped_sum"] > 1.0 for r in embedded) == 1  # only the outlier's arm is capped
    assert max(r["raw_sum"] for r in embedded) < 999.0 * 10  # the redelivered 999s were de-duplicated away
    assert sum(r["no_region"] for r in embedded) > 0 and sum(r["last_eu"] for r in embedded) > 0
    assert len(bigquery) == len(embedded)
    for mine, theirs in zip(embedded, bigquery, strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in mine.items():
            assert theirs[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key


def test_exact_percentile_is_independent_of_the_engine(duckdb_store, bigquery_store):
    """PERCENTILE_CONT(x, 0.99) OVER () is the exact (interpolated) quantile on both engines."""
    values = [float(v) for v in range(1, 101)]
    rows = [kpi(f"k{i}", f"u{i}", v) for i, v in enumerate(values)]
    expected = values[98] + 0.01 * (values[99] - values[98])  # linear interpolation at 0.99 * 99
    for store in (duckdb_store, bigquery_store):
        store.append(schema.KPI_EVENTS, rows)
        got = store.query("SELECT DISTINCT PERCENTILE_CONT(value, 0.99) OVER () AS p FROM kpi_events")
        assert got == [{"p": pytest.approx(expected, rel=1e-12)}], store.engine


def test_approx_quantiles_differ_on_the_emulator(duckdb_store, bigquery_store):
    """Recorded difference: bqemulator 1.4.0 returns the (k+1)% quantile for
    APPROX_QUANTILES(v, 100)[OFFSET(k)] (OFFSET(99) is the max). Use PERCENTILE_CONT instead."""
    rows = [kpi(f"k{i}", f"u{i}", float(i)) for i in range(1, 1001)]
    sql = "SELECT APPROX_QUANTILES(value, 100)[OFFSET(99)] AS p99, MAX(value) AS top FROM kpi_events"
    results = {}
    for store in (duckdb_store, bigquery_store):
        store.append(schema.KPI_EVENTS, rows)
        results[store.engine] = store.query(sql)[0]
    assert results["duckdb"]["p99"] == pytest.approx(990.0, abs=2.0)
    assert results["bigquery"]["p99"] == results["bigquery"]["top"] == 1000.0


# -- the Firebase / GA4 BigQuery export shape: what both engines take, and where they differ --

GA4_TABLE = """CREATE TABLE IF NOT EXISTS {ds}.events_{day} (event_date STRING, event_timestamp INT64,
  event_name STRING, event_params ARRAY<STRUCT<key STRING, value STRUCT<string_value STRING, int_value INT64,
  double_value FLOAT64>>>, user_id STRING, user_pseudo_id STRING)"""
GA4_ROW = """INSERT INTO {ds}.events_{day} VALUES ('{day}', {micros}, 'purchase',
  [STRUCT('value' AS key, STRUCT(CAST(NULL AS STRING) AS string_value, CAST(NULL AS INT64) AS int_value,
   {value} AS double_value) AS value),
   STRUCT('currency' AS key, STRUCT('EUR' AS string_value, CAST(NULL AS INT64) AS int_value,
   CAST(NULL AS FLOAT64) AS double_value) AS value)], NULL, '{user}')"""


def _ga4(store: MetricStore) -> str:
    ds = f"ga4_{uuid.uuid4().hex[:10]}"
    store.query(f"CREATE SCHEMA IF NOT EXISTS {ds}")
    for day, user, value in (("20261101", "p1", 9.5), ("20261101", "p2", 1.25), ("20261102", "p1", 3.0)):
        store.query(GA4_TABLE.format(ds=ds, day=day))
        micros = int(datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC).timestamp() * 1e6) + 1
        store.query(GA4_ROW.format(ds=ds, day=day, micros=micros, user=user, value=value))
    return ds


def test_ga4_event_params_read_the_same_on_both_engines(duckdb_store, bigquery_store):
    """Recorded: the export's usual `(SELECT value.double_value FROM UNNEST(event_params) WHERE
    key = 'value')` is valid BigQuery but refused by both local engines (each is DuckDB behind
    sqlglot); with the UNNEST aliased (`AS p ... p.key`, `p.value.double_value`) both agree."""
    answers = []
    for store in (duckdb_store, bigquery_store):
        ds = _ga4(store)
        with pytest.raises(QueryRejected):
            store.query(f"SELECT (SELECT value.double_value FROM UNNEST(event_params) WHERE key = 'value') AS v "
                        f"FROM {ds}.events_20261101")
        answers.append(store.query(
            f"SELECT user_pseudo_id, SUM((SELECT p.value.double_value FROM UNNEST(event_params) AS p "
            f"WHERE p.key = 'value')) AS revenue, COUNT(*) AS purchases FROM {ds}.events_20261101 "
            f"WHERE event_name = 'purchase' GROUP BY user_pseudo_id ORDER BY user_pseudo_id"))
    assert answers[0] == answers[1] == [{"user_pseudo_id": "p1", "revenue": 9.5, "purchases": 1},
                                        {"user_pseudo_id": "p2", "revenue": 1.25, "purchases": 1}]


def test_ga4_wildcard_tables_and_timestamp_micros_differ(duckdb_store, bigquery_store):
    """Recorded differences: wildcard tables (`events_*` with `_TABLE_SUFFIX`) work on BigQuery and
    the emulator, not on DuckDB; TIMESTAMP_MICROS gives an aware UTC datetime on BigQuery and a
    naive one (the same UTC wall time) on DuckDB."""
    results = {}
    for store in (duckdb_store, bigquery_store):
        ds = _ga4(store)
        wildcard = (f"SELECT COUNT(*) AS n, MIN(_TABLE_SUFFIX) AS first FROM `{ds}.events_*` "
                    "WHERE _TABLE_SUFFIX BETWEEN @start AND @end")
        try:
            results[store.engine] = store.query(wildcard, {"start": "20261101", "end": "20261130"})
        except QueryRejected as exc:
            results[store.engine] = exc.message
        stamp = store.query(f"SELECT TIMESTAMP_MICROS(MIN(event_timestamp)) AS t FROM {ds}.events_20261102")[0]["t"]
        assert stamp.replace(tzinfo=None) == datetime(2026, 11, 2, 0, 0, 0, 1)
        assert (stamp.tzinfo is None) is (store.engine == "duckdb"), store.engine
    assert results["bigquery"] == [{"n": 3, "first": "20261101"}]
    assert isinstance(results["duckdb"], str) and "events_*" in results["duckdb"]


def test_the_links_backfill_finds_what_a_cohort_has_landed_on_both_engines(store):
    """The backfill's lookup (functions.services.metrics.backfill.landed_ids): each landed row id
    of the cohort once, however often it landed, and nothing of another cohort."""
    from functions.services.metrics.backfill import landed_ids
    from functions.services.metrics.landing import link_row

    rows = [link_row(f"l{i}", cohort, "u1", f"u{i + 2}", "REFERRAL", T0, T0)
            for i, cohort in enumerate(["c1", "c1", "c2"])]
    store.append(schema.LINKS, rows + rows[:1])  # l0 landed twice
    assert landed_ids("c1", store) == {rows[0]["event_id"], rows[1]["event_id"]}
    assert landed_ids("c2", store) == {rows[2]["event_id"]}
    assert landed_ids("c3", store) == set()
