"""The embedded metric store: DuckDB in the function's own process (`make run`, tests, a single
machine). Queries arrive in BigQuery SQL and are transpiled once each with sqlglot; rows are
appended through Arrow (a batch of 10k rows in milliseconds; row-at-a-time inserts are 100x
slower). One connection per process, a cursor per call: DuckDB serialises writers itself.

One thread by default: floating-point sums then add in the same order on every run, so the same
rows give the same statistics bit for bit (a re-run sweep writes the same snapshot, a replayed
analysis the same fingerprint). `METRIC_STORE_THREADS` trades that for speed on large machines."""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
import sqlglot.errors
from sqlglot import exp

from functions.adapters.metric_store import schema
from functions.adapters.metric_store.port import DryRun, Param, QueryRejected, StoreUnavailable, param_type

_ARROW = {"STRING": pa.string(), "FLOAT64": pa.float64(), "INT64": pa.int64(), "BOOL": pa.bool_(),
          "TIMESTAMP": pa.timestamp("us", tz="UTC")}


@lru_cache(maxsize=512)
def transpile(sql: str) -> str:
    """BigQuery SQL -> DuckDB SQL (`@p` becomes `$p`). A CTE read from more than one place is
    materialised: the analysis refers to its per-unit rows from several places, and DuckDB would
    otherwise compute them again for each (BigQuery's planner decides for itself). One read once
    streams into its reader, so its rows are never held."""
    try:
        statements = sqlglot.parse(sql, read="bigquery")
        for tree in statements:
            if tree is None:
                continue
            reads = Counter(table.name for table in tree.find_all(exp.Table) if not table.db)
            for cte in tree.find_all(exp.CTE):
                cte.set("materialized", reads[cte.alias] > 1)
        return ";\n".join(tree.sql(dialect="duckdb") for tree in statements if tree is not None)
    except sqlglot.errors.SqlglotError as exc:
        raise QueryRejected(str(exc).splitlines()[0]) from None


def _arrow_schema(table: str) -> pa.Schema:
    return pa.schema([pa.field(name, _ARROW[kind.split()[0]], nullable="NOT NULL" not in kind)
                      for name, kind in schema.COLUMNS[table]])


def _param(name: str, value: Param) -> Any:
    param_type(name, value)  # refuses what BigQuery refuses (None in a list, unsupported types)
    if isinstance(value, tuple):
        return list(value)
    return value


class DuckDBStore:
    engine = "duckdb"

    def __init__(self, path: str = ":memory:", threads: int = 1, memory_limit: str = "") -> None:
        """`memory_limit` (e.g. "450MB"; "" keeps DuckDB's default of most of the machine's memory)
        bounds the engine's buffers: past it, joins, aggregates and sorts spill to a temporary
        directory beside the store's file (the system's temporary directory for `:memory:`)."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(path)
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute(f"SET threads = {max(1, int(threads))}")
        if memory_limit:
            spill = f"{path}.tmp" if path != ":memory:" else str(Path(tempfile.gettempdir()) / f"duckdb-{os.getpid()}")
            self._con.execute("SET memory_limit = $limit", {"limit": memory_limit})
            self._con.execute("SET temp_directory = $dir", {"dir": spill})
        self._write = threading.Lock()

    def ensure_schema(self) -> None:
        for table in schema.COLUMNS:
            self._con.cursor().execute(transpile(schema.ddl(table, layout=False)))

    def append(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        schema.check_rows(table, rows)
        if not rows:
            return 0
        arrow = pa.Table.from_pylist([dict(r) for r in rows], schema=_arrow_schema(table))
        names = ", ".join(arrow.schema.names)
        with self._write:
            cur = self._con.cursor()
            cur.register("_landing", arrow)
            try:
                cur.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _landing")
            except (duckdb.IOException, duckdb.OutOfMemoryException) as exc:
                raise StoreUnavailable(f"metric store: {str(exc).splitlines()[0]}") from exc
            finally:
                cur.unregister("_landing")
        return arrow.num_rows

    def _run(self, sql: str, params: Mapping[str, Param] | None) -> duckdb.DuckDBPyConnection:
        cur = self._con.cursor()
        text = transpile(sql)
        used = set(re.findall(r"\$(\w+)", text))  # DuckDB refuses parameters a query does not use
        try:
            return cur.execute(text, {k: _param(k, v) for k, v in (params or {}).items() if k in used})
        except (duckdb.IOException, duckdb.OutOfMemoryException) as exc:
            raise StoreUnavailable(f"metric store: {str(exc).splitlines()[0]}") from exc
        except duckdb.Error as exc:
            raise QueryRejected(str(exc).splitlines()[0]) from None

    def query(self, sql: str, params: Mapping[str, Param] | None = None) -> list[dict[str, Any]]:
        cur = self._run(sql, params)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def dry_run(self, sql: str, params: Mapping[str, Param] | None = None) -> DryRun:
        cur = self._run(f"SELECT * FROM ({sql}) LIMIT 0", params)
        return DryRun(0, tuple(d[0] for d in cur.description or ()))

    def load_user_table(self, dataset: str, table: str, rows: pa.Table) -> None:
        """Create or replace a user's own table (`dataset.table`), e.g. a sample analytics export for
        the local demo; in the cloud these tables already exist in BigQuery."""
        with self._write:
            cur = self._con.cursor()
            cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{dataset}"')
            cur.register("_user_rows", rows)
            try:
                cur.execute(f'CREATE OR REPLACE TABLE "{dataset}"."{table}" AS SELECT * FROM _user_rows')
            finally:
                cur.unregister("_user_rows")

    def create_wildcard_view(self, dataset: str, prefix: str, tables: list[str]) -> None:
        """The view a BigQuery wildcard reference `dataset.<prefix>*` transpiles to, with
        `_TABLE_SUFFIX` as BigQuery's wildcard tables carry it."""
        union = " UNION ALL ".join(
            f"""SELECT *, '{t.removeprefix(prefix)}' AS _TABLE_SUFFIX FROM "{dataset}"."{t}" """ for t in tables)
        with self._write:
            self._con.cursor().execute(f'CREATE OR REPLACE VIEW "{dataset}"."{prefix}*" AS {union}')

    def close(self) -> None:
        self._con.close()
