"""The embedded metric store: DuckDB in the function's own process (`make run`, tests, a single
machine). Queries arrive in BigQuery SQL and are transpiled once each with sqlglot; rows are
appended through Arrow (a batch of 10k rows in milliseconds; row-at-a-time inserts are 100x
slower). One connection per process, a cursor per call: DuckDB serialises writers itself."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
import sqlglot.errors

from functions.adapters.metric_store import schema
from functions.adapters.metric_store.port import DryRun, Param, QueryRejected, param_type

_ARROW = {"STRING": pa.string(), "FLOAT64": pa.float64(), "INT64": pa.int64(), "BOOL": pa.bool_(),
          "TIMESTAMP": pa.timestamp("us", tz="UTC")}


@lru_cache(maxsize=512)
def transpile(sql: str) -> str:
    """BigQuery SQL -> DuckDB SQL (`@p` becomes `$p`)."""
    try:
        return ";\n".join(sqlglot.transpile(sql, read="bigquery", write="duckdb"))
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

    def __init__(self, path: str = ":memory:") -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(path)
        self._con.execute("SET TimeZone = 'UTC'")
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
            cur.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _landing")
            cur.unregister("_landing")
        return arrow.num_rows

    def _run(self, sql: str, params: Mapping[str, Param] | None) -> duckdb.DuckDBPyConnection:
        cur = self._con.cursor()
        try:
            return cur.execute(transpile(sql), {k: _param(k, v) for k, v in (params or {}).items()})
        except duckdb.Error as exc:
            raise QueryRejected(str(exc).splitlines()[0]) from None

    def query(self, sql: str, params: Mapping[str, Param] | None = None) -> list[dict[str, Any]]:
        cur = self._run(sql, params)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def dry_run(self, sql: str, params: Mapping[str, Param] | None = None) -> DryRun:
        cur = self._run(f"SELECT * FROM ({sql}) LIMIT 0", params)
        return DryRun(0, tuple(d[0] for d in cur.description or ()))

    def close(self) -> None:
        self._con.close()
