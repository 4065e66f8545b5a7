"""Fast service tests: the real services and repositories on the in-memory storage backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.adapters.metric_store.duckdb_store import DuckDBStore
from functions.services.experiments import metrics
from tests.support.fake_storage import FakeStore, fake_storage


@pytest.fixture
def store() -> Iterator[FakeStore]:
    with fake_storage() as fake:
        yield fake


@pytest.fixture
def warehouse(monkeypatch: pytest.MonkeyPatch) -> Iterator[DuckDBStore]:
    """The embedded metric store in memory: definitions are dry-run against real tables."""
    store = DuckDBStore()
    store.ensure_schema()
    monkeypatch.setattr(metrics, "store", lambda: store)
    yield store
    store.close()
