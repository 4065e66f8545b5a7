"""Fast service tests: the real services and repositories on the in-memory storage backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.services.experiments import repository
from tests.support.fake_storage import FakeStore, fake_storage


@pytest.fixture
def store() -> Iterator[FakeStore]:
    repository.invalidate()
    with fake_storage() as fake:
        yield fake
    repository.invalidate()
