"""The metric store: unit-level facts (KPI events, exposures, fraud flags, links) in a warehouse.

One port, two adapters: BigQuery in the cloud, DuckDB embedded in the process for `make run` and
the tests. Every query is written once, in BigQuery SQL; the embedded adapter transpiles it with
sqlglot. Which adapter runs is configuration (`METRIC_STORE`), never a branch in a service.
"""

from __future__ import annotations

import threading

from functions.adapters.metric_store.port import (
    AppendRejected,
    DryRun,
    MetricStore,
    QueryRejected,
    StoreUnavailable,
)
from functions.config import settings

__all__ = ["AppendRejected", "DryRun", "MetricStore", "QueryRejected", "StoreUnavailable", "reset_store", "store"]

_lock = threading.Lock()
_store: MetricStore | None = None


def store() -> MetricStore:
    """One store per process, built from settings on first use; its tables exist once returned.
    Rows this process published for a local consumer to land are waited for first (`settle`)."""
    global _store
    from functions.adapters.metric_store.landing import settle

    settle()
    with _lock:
        if _store is None:
            _store = _build()
            _store.ensure_schema()
        return _store


def _build() -> MetricStore:
    cfg = settings()
    if cfg.metric_store == "bigquery":
        from functions.adapters.metric_store.bigquery_store import BigQueryStore

        return BigQueryStore(cfg.project_id, cfg.metric_dataset, location=cfg.metric_location or None)
    from functions.adapters.metric_store.duckdb_store import DuckDBStore

    return DuckDBStore(cfg.metric_store_path, cfg.metric_store_threads, cfg.metric_store_memory)


def reset_store() -> None:
    """Drop the process's store (tests; a changed configuration)."""
    global _store
    with _lock:
        if _store is not None:
            _store.close()
        _store = None
