"""The embedded store's resource settings: a memory limit bounds the engine's buffers and makes
large joins and aggregates spill instead of failing; CTEs read once stream into their reader."""

from __future__ import annotations

import re

import pytest

from functions.adapters.metric_store.duckdb_store import DuckDBStore, transpile
from functions.config import reset_settings

# a hash aggregate of 2M distinct string keys holds well over 64 MB of state
WIDE = ("SELECT COUNT(*) AS groups, SUM(n) AS rows FROM ("
        "SELECT CONCAT('unit-', CAST(i AS STRING)) AS k, COUNT(*) AS n FROM UNNEST(GENERATE_ARRAY(1, 2000000)) AS i "
        "GROUP BY k)")


def test_a_bounded_store_spills_a_working_set_larger_than_its_limit(tmp_path):
    store = DuckDBStore(str(tmp_path / "m.duckdb"), threads=1, memory_limit="64MB")
    try:
        limit = store.query("SELECT CURRENT_SETTING('memory_limit') AS v")[0]["v"]
        assert limit.endswith("MiB") and float(limit.split()[0]) <= 64
        assert store.query(WIDE) == [{"groups": 2_000_000, "rows": 2_000_000}]
    finally:
        store.close()


def test_an_unbounded_store_keeps_the_engine_default(tmp_path):
    store = DuckDBStore(str(tmp_path / "m.duckdb"))
    try:
        limit = store.query("SELECT CURRENT_SETTING('memory_limit') AS v")[0]["v"]
        assert not limit.endswith("MiB") or float(limit.split()[0]) > 64
    finally:
        store.close()


@pytest.mark.parametrize("bad", ["lots", "5 elephants"])
def test_a_memory_limit_the_engine_cannot_read_fails_at_start(bad):
    with pytest.raises(Exception, match=r"(?i)memory|limit|parse|convert"):
        DuckDBStore(":memory:", memory_limit=bad)


def test_only_ctes_read_more_than_once_are_materialised():
    sql = transpile("WITH once AS (SELECT 1 AS x), twice AS (SELECT x FROM once) "
                    "SELECT * FROM twice a JOIN twice b USING (x)")
    modes = dict(re.findall(r"(\w+) AS (NOT MATERIALIZED|MATERIALIZED)", sql))
    assert modes == {"once": "NOT MATERIALIZED", "twice": "MATERIALIZED"}


def _configured_limit(monkeypatch, tmp_path, value: str | None) -> str:
    """The memory limit of the store `METRIC_STORE*` configure (None: the variable unset)."""
    from functions.adapters.metric_store import _build

    monkeypatch.setenv("METRIC_STORE", "embedded")
    monkeypatch.setenv("METRIC_STORE_PATH", str(tmp_path / "configured.duckdb"))
    if value is None:
        monkeypatch.delenv("METRIC_STORE_MEMORY", raising=False)
    else:
        monkeypatch.setenv("METRIC_STORE_MEMORY", value)
    reset_settings()
    store = _build()
    try:
        return str(store.query("SELECT CURRENT_SETTING('memory_limit') AS v")[0]["v"])
    finally:
        store.close()
        monkeypatch.undo()
        reset_settings()


def test_the_configured_embedded_store_is_bounded_unless_told_otherwise(monkeypatch, tmp_path):
    bounded = _configured_limit(monkeypatch, tmp_path, None)
    assert bounded.endswith("MiB") and float(bounded.split()[0]) <= 256  # 256 MB = 244.1 MiB
    assert _configured_limit(monkeypatch, tmp_path, "1GB") != bounded
    engine_default = _configured_limit(monkeypatch, tmp_path, "80%")
    assert engine_default.endswith("GiB") or float(engine_default.split()[0]) > 256
