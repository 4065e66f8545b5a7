"""What every metric-store adapter offers: append rows, run a query, dry-run a query.

SQL handed to an adapter is BigQuery Standard SQL with named parameters (`@name`); table names
are unqualified and resolve in the store's own dataset, or qualified for the user's tables
(`analytics_123.events_*`). Parameters are str, int, float, bool, datetime or lists of one of
those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from functions.core.errors import Unavailable

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

    default_code = "METRIC_STORE_UNAVAILABLE"


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
        """Append rows to a landing table; duplicates by `event_id` are removed at read time."""

    def query(self, sql: str, params: Mapping[str, Param] | None = None) -> list[dict[str, Any]]:
        """Run a query; rows as dicts. Raises QueryRejected for a query the engine refuses."""

    def dry_run(self, sql: str, params: Mapping[str, Param] | None = None) -> DryRun:
        """Check a query without running it. Raises QueryRejected."""

    def close(self) -> None:
        """Release connections."""
