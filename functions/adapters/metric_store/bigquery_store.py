"""The cloud metric store: BigQuery. (Adapter under construction: see the embedded store.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from functions.adapters.metric_store.port import DryRun, Param


class BigQueryStore:
    engine = "bigquery"

    def __init__(self, project: str, dataset: str) -> None:
        self.project, self.dataset = project, dataset
        raise NotImplementedError("the BigQuery metric store is not built yet")

    def ensure_schema(self) -> None: ...

    def append(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        raise NotImplementedError

    def query(self, sql: str, params: Mapping[str, Param] | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def dry_run(self, sql: str, params: Mapping[str, Param] | None = None) -> DryRun:
        raise NotImplementedError

    def close(self) -> None: ...
