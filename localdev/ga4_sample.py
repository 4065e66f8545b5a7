"""A small, deterministic Firebase / GA4 BigQuery export, and a loader for the embedded store
(the local demo's analytics export; the tests' GA4-shaped fixture).

`generate()` gives rows shaped like the export's `events_YYYYMMDD` tables (the columns our
catalog reads, with the export's nesting: `event_params` as an array of key/value structs,
`ecommerce` as a struct): a few hundred users over ten days with session_start, purchase, refund
and passive (app_remove, notification_receive) events; some users signed in (`user_id`), all with
a `user_pseudo_id`, and a few consent-mode pings with neither. The rows are plain JSON values, so
the same list can be streamed into BigQuery (`insert_rows_json`) against `BIGQUERY_SCHEMA`.

`load_duckdb()` writes one table per day into the embedded store under the dataset's schema and
the view `<dataset>."events_*"`: a BigQuery wildcard reference `` `<dataset>.events_*` ``
transpiles to exactly that name, so the catalog's SQL runs unchanged. The view carries
`_TABLE_SUFFIX` like BigQuery's wildcard tables.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from functions.adapters.metric_store.duckdb_store import DuckDBStore

DATASET = "analytics_demo"
START = datetime(2026, 10, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RATES = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}

_VALUE = pa.struct([("string_value", pa.string()), ("int_value", pa.int64()), ("float_value", pa.float64()),
                    ("double_value", pa.float64())])
ARROW_SCHEMA = pa.schema([
    ("event_date", pa.string()), ("event_timestamp", pa.int64()), ("event_name", pa.string()),
    ("event_params", pa.list_(pa.struct([("key", pa.string()), ("value", _VALUE)]))),
    ("event_value_in_usd", pa.float64()), ("user_id", pa.string()), ("user_pseudo_id", pa.string()),
    ("platform", pa.string()),
    ("ecommerce", pa.struct([("total_item_quantity", pa.int64()), ("purchase_revenue_in_usd", pa.float64()),
                             ("purchase_revenue", pa.float64()), ("refund_value_in_usd", pa.float64()),
                             ("refund_value", pa.float64()), ("transaction_id", pa.string())])),
])
# The same columns as BigQuery types (RECORD fields nested), for a load into the emulator.
BIGQUERY_SCHEMA = (
    ("event_date", "STRING"), ("event_timestamp", "INT64"), ("event_name", "STRING"),
    ("event_params", "ARRAY<STRUCT<key STRING, value STRUCT<string_value STRING, int_value INT64, "
                     "float_value FLOAT64, double_value FLOAT64>>>"),
    ("event_value_in_usd", "FLOAT64"), ("user_id", "STRING"), ("user_pseudo_id", "STRING"), ("platform", "STRING"),
    ("ecommerce", "STRUCT<total_item_quantity INT64, purchase_revenue_in_usd FLOAT64, purchase_revenue FLOAT64, "
                  "refund_value_in_usd FLOAT64, refund_value FLOAT64, transaction_id STRING>"),
)


def bigquery_ddl(dataset: str, day: str) -> str:
    """`CREATE TABLE <dataset>.events_<day>` with the fixture's columns (for the BigQuery emulator)."""
    columns = ", ".join(f"{name} {kind}" for name, kind in BIGQUERY_SCHEMA)
    return f"CREATE TABLE IF NOT EXISTS `{dataset}.events_{day}` ({columns})"


def micros(at: datetime) -> int:
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def at_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def _param(key: str, value: str | int | float) -> dict[str, Any]:
    slot = {str: "string_value", int: "int_value", float: "double_value"}[type(value)]
    return {"key": key, "value": {"string_value": None, "int_value": None, "float_value": None,
                                  "double_value": None, slot: value}}


def _event(name: str, at: datetime, user_id: str | None, pseudo: str | None, session: int,
           params: list[dict[str, Any]] | None = None, ecommerce: dict[str, Any] | None = None,
           value_usd: float | None = None) -> dict[str, Any]:
    return {"event_date": at.strftime("%Y%m%d"), "event_timestamp": micros(at), "event_name": name,
            "event_params": [_param("ga_session_id", session), _param("engagement_time_msec", 1000 + session % 997),
                             *(params or [])],
            "event_value_in_usd": value_usd, "user_id": user_id, "user_pseudo_id": pseudo, "platform": "ANDROID",
            "ecommerce": ecommerce}


def _commerce(purchase: float | None = None, refund: float | None = None, rate: float = 1.0,
              transaction: str = "") -> dict[str, Any]:
    return {"total_item_quantity": 1 if purchase is not None else None,
            "purchase_revenue_in_usd": None if purchase is None else round(purchase * rate, 6),
            "purchase_revenue": purchase,
            "refund_value_in_usd": None if refund is None else round(refund * rate, 6),
            "refund_value": refund, "transaction_id": transaction}


def generate(users: int = 300, days: int = 10, seed: int = 14, start: datetime = START) -> list[dict[str, Any]]:
    """The export's rows, in time order per user; the same arguments give the same rows."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(users):
        pseudo = f"app-instance-{i:04d}"
        user_id = f"user-{i:04d}" if rng.random() < 0.6 else None
        currency = rng.choice(sorted(RATES))
        first_day = rng.randrange(0, 3)
        for day in range(first_day, days):
            if day != first_day and rng.random() > 0.35:
                continue
            at = start + timedelta(days=day, seconds=rng.randrange(0, 86_000), microseconds=rng.randrange(10**6))
            session = micros(at) // 1_000_000
            rows.append(_event("session_start", at, user_id, pseudo, session))
            if rng.random() < 0.3:
                rows.append(_event("notification_receive", at + timedelta(seconds=5), user_id, pseudo, session))
            if rng.random() < 0.2:
                price = round(rng.lognormvariate(2.5, 0.8), 2)
                transaction = f"T-{i:04d}-{day}"
                bought = at + timedelta(seconds=rng.randrange(30, 300))
                money = [_param("value", price), _param("currency", currency), _param("transaction_id", transaction)]
                rows.append(_event("purchase", bought, user_id, pseudo, session, money,
                                   _commerce(purchase=price, rate=RATES[currency], transaction=transaction),
                                   value_usd=round(price * RATES[currency], 6)))
                if rng.random() < 0.25:
                    back = round(price * rng.choice((0.5, 1.0)), 2)
                    refunded = bought + timedelta(hours=rng.randrange(1, 30))
                    rows.append(_event("refund", refunded, user_id, pseudo, session,
                                       [_param("value", back), _param("currency", currency)],
                                       _commerce(refund=back, rate=RATES[currency], transaction=transaction),
                                       value_usd=round(back * RATES[currency], 6)))
        if rng.random() < 0.05:  # uninstalls: passive, they never count as a return
            gone = start + timedelta(days=days - 1, hours=rng.randrange(0, 23))
            rows.append(_event("app_remove", gone, user_id, pseudo, 0))
        if rng.random() < 0.03:  # a consent-mode ping: no user identifiers at all
            rows.append(_event("session_start", start + timedelta(days=first_day, hours=1), None, None, 0))
    return rows


def purchases(arms: dict[str, str], at: datetime, rng: random.Random, lift: dict[str, float]) -> list[dict[str, Any]]:
    """What the app's analytics would export for units already in an experiment: a session each
    and, for about a third, a purchase in USD (`lift`: arm -> factor on the amount). Signed-in
    units: `user_id` is the unit id the experiment assigns."""
    rows: list[dict[str, Any]] = []
    for i, (unit, arm) in enumerate(sorted(arms.items())):
        when = at + timedelta(seconds=1 + i % 50, microseconds=i)
        session = micros(when) // 1_000_000
        rows.append(_event("session_start", when, unit, f"app-instance-{unit}", session))
        if rng.random() < 0.35:
            price = round(rng.lognormvariate(2.5, 0.6) * lift.get(arm, 1.0), 2)
            money = [_param("value", price), _param("currency", "USD")]
            rows.append(_event("purchase", when + timedelta(seconds=30), unit, f"app-instance-{unit}", session, money,
                               _commerce(purchase=price, transaction=f"T-{unit}"), value_usd=price))
    return rows


def by_day(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        days[row["event_date"]].append(row)
    return dict(sorted(days.items()))


def load_duckdb(metric_store: DuckDBStore, rows: list[dict[str, Any]], dataset: str = DATASET) -> list[str]:
    """Daily tables `<dataset>.events_YYYYMMDD` and the wildcard view `<dataset>."events_*"`,
    replacing earlier ones; returns the daily tables' names."""
    tables = []
    for day, day_rows in by_day(rows).items():
        table = f"events_{day}"
        metric_store.load_user_table(dataset, table, pa.Table.from_pylist(day_rows, schema=ARROW_SCHEMA))
        tables.append(table)
    metric_store.create_wildcard_view(dataset, "events_", tables)
    return tables
