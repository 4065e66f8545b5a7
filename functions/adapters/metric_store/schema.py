"""The landing tables, in BigQuery DDL: append-only facts, partitioned by day and clustered by
what every query filters on. De-duplication is by `event_id` at read time (`deduped()`), so an
at-least-once delivery that lands a row twice still counts it once."""

from __future__ import annotations

KPI_EVENTS = "kpi_events"
EXPOSURES = "exposures"
FRAUD_FLAGS = "fraud_flags"

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    # one KPI observation, value in the base currency; events without analytics consent never land
    KPI_EVENTS: (("event_id", "STRING NOT NULL"), ("unit_id", "STRING NOT NULL"), ("metric", "STRING NOT NULL"),
                 ("value", "FLOAT64 NOT NULL"), ("pre_value", "FLOAT64"), ("region", "STRING"),
                 ("event_time", "TIMESTAMP NOT NULL"), ("received_at", "TIMESTAMP NOT NULL")),
    # a unit's exposure to an experiment as assign decided it (status ASSIGNED with a variant, or
    # HOLDOUT); one row per (experiment, unit, decision): a unit seen with two decisions was
    # decided into another arm after its first exposure and leaves the analysis
    EXPOSURES: (("event_id", "STRING NOT NULL"), ("experiment_id", "STRING NOT NULL"), ("unit_id", "STRING NOT NULL"),
                ("status", "STRING NOT NULL"), ("variant", "STRING"), ("analytics_consent", "BOOL NOT NULL"),
                ("exposed_at", "TIMESTAMP NOT NULL"), ("received_at", "TIMESTAMP NOT NULL")),
    FRAUD_FLAGS: (("event_id", "STRING NOT NULL"), ("unit_id", "STRING NOT NULL"), ("reason", "STRING"),
                  ("source", "STRING"), ("flagged_at", "TIMESTAMP NOT NULL"), ("received_at", "TIMESTAMP NOT NULL")),
}

LAYOUT: dict[str, tuple[str, str]] = {  # table -> (partition column, clustering)
    KPI_EVENTS: ("event_time", "metric, unit_id"),
    EXPOSURES: ("exposed_at", "experiment_id, unit_id"),
    FRAUD_FLAGS: ("flagged_at", "unit_id"),
}


def ddl(table: str, layout: bool = True) -> str:
    """`layout=False` leaves out partitioning and clustering (engines without them)."""
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS[table])
    partition, cluster = LAYOUT[table]
    tail = f" PARTITION BY DATE({partition}) CLUSTER BY {cluster}" if layout else ""
    return f"CREATE TABLE IF NOT EXISTS {table} ({columns}){tail}"


def deduped(table: str, where: str = "TRUE") -> str:
    """The table's rows, each `event_id` once (the first landed), filtered before de-duplication
    so partitions and clusters prune."""
    return (f"(SELECT * FROM {table} WHERE {where} "
            f"QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY received_at) = 1)")
