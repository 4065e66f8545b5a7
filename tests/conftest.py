"""Shared fixtures. Unit tests use none of the emulator fixtures; integration and e2e tests
get the real Firestore and Pub/Sub emulators, started once per session and stopped after it.
If the emulators cannot run, those tests FAIL with the reason (they never skip silently)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "demo-offers-test")
os.environ.setdefault("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Analyses read no automatic history unless a test asks (the session's store holds other tests'
# rows, which would otherwise be one test's history): tests/integration/analytics/test_shape_history.py
os.environ.setdefault("ANALYSIS_HISTORY_DAYS", "0")
os.environ.setdefault("LEDGER_KEY_FILE", str(ROOT / ".run" / "ledger-test-key.pem"))
os.environ.setdefault("EMULATOR_PIDS_FILE", str(ROOT / ".run" / "test-emulator-pids"))


_QUERIES = None


def pytest_sessionstart(session):
    global _QUERIES
    from tests.support.query_recorder import QueryRecorder

    (ROOT / ".run").mkdir(exist_ok=True)
    Path(os.environ["EMULATOR_PIDS_FILE"]).write_text("")
    _QUERIES = QueryRecorder()
    _QUERIES.install()


def pytest_sessionfinish(session, exitstatus):
    """Every query the suite issued must be served by firestore.indexes.json."""
    if _QUERIES is None or not _QUERIES.shapes:
        return
    missing = _QUERIES.write_report(ROOT / "artifacts" / "firestore-queries.json", ROOT / "firestore.indexes.json")
    if missing:
        print("\nFAIL: queries without a composite index in firestore.indexes.json:")
        for shape in missing:
            print(f"  {shape.to_dict()}")
        session.exitstatus = 1


def pytest_collection_modifyitems(config, items):
    """Mark every test that needs the emulators (directly or through a fixture) as `emulator`,
    so `make test-fast` can leave them out without a hand-kept list."""
    emulator = pytest.mark.emulator
    for item in items:
        if {"emulators", "bigquery_emulator"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(emulator)


@pytest.fixture(scope="session")
def emulators():
    from functions.adapters.firestore import reset_client
    from functions.config import reset_settings
    from localdev.emulators import Emulators, EmulatorUnavailable

    try:
        emu = Emulators(project_id=os.environ["GOOGLE_CLOUD_PROJECT"]).start()
    except EmulatorUnavailable as exc:
        pytest.fail(f"EMULATORS UNAVAILABLE - integration tests cannot run:\n{exc}", pytrace=False)
    reset_settings()
    reset_client()
    from functions.adapters.pubsub import ensure_topics

    ensure_topics()  # the unprefixed topics, e.g. where handlers quarantine refused events
    yield emu
    emu.stop()
    reset_client()


@pytest.fixture(scope="session")
def bigquery_emulator():
    """The BigQuery API emulator (bqemulator from .venv-bqemulator), started once per session;
    BIGQUERY_EMULATOR_HOST is exported while it runs."""
    from localdev.bigquery_emulator import BigQueryEmulator, BigQueryEmulatorUnavailable

    try:
        emu = BigQueryEmulator(project_id=os.environ["GOOGLE_CLOUD_PROJECT"]).start()
    except BigQueryEmulatorUnavailable as exc:
        pytest.fail(f"BIGQUERY EMULATOR UNAVAILABLE - the BigQuery store tests cannot run:\n{exc}", pytrace=False)
    yield emu
    emu.stop()


@pytest.fixture
def clean_firestore(emulators):
    """An empty Firestore and an empty metric store (the embedded one is per process)."""
    from functions.adapters.metric_store import reset_store

    emulators.clear_firestore()
    reset_store()
    yield
    emulators.clear_firestore()
    reset_store()


@pytest.fixture
def topics(emulators, monkeypatch) -> Iterator[PubsubProbe]:  # noqa: F821 - defined in tests.support
    """Unique topic names for this test (TOPIC_PREFIX), created, with a probe to pull from them."""
    from functions.adapters.pubsub import ensure_topics
    from functions.config import reset_settings
    from tests.support.pubsub import PubsubProbe

    monkeypatch.setenv("TOPIC_PREFIX", f"t{uuid.uuid4().hex[:10]}-")
    reset_settings()
    ensure_topics()
    probe = PubsubProbe()
    yield probe
    probe.close()
    monkeypatch.delenv("TOPIC_PREFIX")
    reset_settings()


@pytest.fixture
def function_client(emulators):
    """`function_client("holdouts")` -> a Flask test client of that entry point, built by
    functions_framework.create_app exactly as the framework serves it."""
    from functions_framework import create_app

    clients = {}

    def make(target: str):
        if target not in clients:
            clients[target] = create_app(target=target, source=str(ROOT / "main.py")).test_client()
        return clients[target]

    return make


@pytest.fixture
def function_server(emulators):
    """`function_server("assign")` -> base URL of a real `functions-framework` process."""
    from tests.support.servers import ServerProcess

    started: list[ServerProcess] = []

    def start(target: str) -> str:
        server = ServerProcess.functions_framework(target, emulators.env())
        started.append(server)
        return server.base_url

    yield start
    for server in started:
        server.stop()
