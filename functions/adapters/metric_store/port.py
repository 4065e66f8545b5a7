"""What every metric-store adapter offers: append rows, run a query, dry-run a query.

SQL handed to an adapter is BigQuery Standard SQL with named parameters (`@name`); table names
are unqualified and resolve in the store's own dataset, or qualified for the user's tables
(`analytics_123.events_*`). Parameters are str, int, float, bool, datetime or lists of one of
those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from functions.core.errors import ErrorCode, Unavailable

Param = str | int | float | bool | Any


class QueryRejected(Exception):
    """The engine refused a query (syntax, unknown table or column, type error): a caller's
    definition is wrong, not the store. `message` is the engine's own words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StoreUnavailable(Unavailable):
    """The store cannot be reached or written now (network, I/O, quota): a 503 the caller may
    retry; nothing was decided."""

    default_code = ErrorCode.METRIC_STORE_UNAVAILABLE


class AppendRejected(ValueError):
    """Rows that do not fit their landing table (unknown table or column, a missing required
    value, a value of the wrong type). Nothing of the refused batch lands."""


_SCALAR_TYPES: tuple[tuple[type, str], ...] = (  # bool before int: a bool is an int in Python
    (bool, "BOOL"), (int, "INT64"), (float, "FLOAT64"), (str, "STRING"), (datetime, "TIMESTAMP"))


def _scalar_type(name: str, value: Any) -> str:
    for kind, bq_type in _SCALAR_TYPES:
        if isinstance(value, kind):
            return bq_type
    what = "None (write NULL in the SQL instead)" if value is None else type(value).__name__
    raise QueryRejected(f"query parameter @{name}: unsupported value {what}")


def param_type(name: str, value: Param) -> str:
    """The BigQuery type of a parameter value: `INT64`, or `ARRAY<STRING>` for a list or tuple.
    Every adapter checks its parameters with it, so a value one engine refuses the other refuses
    too. A list mixing ints and floats is FLOAT64; an empty list is ARRAY<STRING>; None has no
    type (inside a list it is an error, as in BigQuery)."""
    if not isinstance(value, list | tuple):
        return _scalar_type(name, value)
    kinds = {_scalar_type(name, item) for item in value}
    if kinds == {"INT64", "FLOAT64"}:
        kinds = {"FLOAT64"}
    if len(kinds) > 1:
        raise QueryRejected(f"query parameter @{name}: a list mixes {', '.join(sorted(kinds))}")
    return f"ARRAY<{kinds.pop() if kinds else 'STRING'}>"


@dataclass(frozen=True)
class DryRun:
    """A query the engine accepted without running it, with what it would scan and return."""

    bytes_processed: int
    columns: tuple[str, ...]


class MetricStore(Protocol):
    engine: str  # "duckdb" | "bigquery"

    def ensure_schema(self) -> None:
        """Create the landing tables if they are missing (idempotent)."""

    def append(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Append rows to a landing table; duplicates by `event_id` are removed at read time.
        Raises AppendRejected (checked by `schema.check_rows` before anything is sent)."""

    def query(self, sql: str, params: Mapping[str, Param] | None = None) -> list[dict[str, Any]]:
        """Run a query; rows as dicts. Raises QueryRejected for a query the engine refuses."""

    def dry_run(self, sql: str, params: Mapping[str, Param] | None = None) -> DryRun:
        """Check a query without running it. Raises QueryRejected."""

    def close(self) -> None:
        """Release connections."""
