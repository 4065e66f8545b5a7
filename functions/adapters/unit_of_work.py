"""The unit of work: one transaction, the repositories that read and stage writes in it, and
its retries.

    def approve(...):
        def work(uow: UnitOfWork) -> ExperimentDoc:
            experiment = uow.experiments.get(experiment_id, expected_version)   # read phase
            head = uow.ledger.experiment_head(experiment_id)
            ...                                                             # the pure rule decides
            uow.experiments.update(experiment_id, changes)                  # write phase
            uow.ledger.append(head, ...)
            uow.outbox.add(uow.experiments.path(experiment_id), topic, payload, key)
        return atomically(work)

Why a function and not a bare `with` block: a transaction that loses a race is retried by
running its reads again, and Python cannot re-run the body of a `with` statement. `atomically`
re-runs `work` on contention (Firestore's own `transactional` retry), commits the staged writes
all at once, and discards them when `work` raises. `reading()` gives the same repositories
outside any transaction, for plain reads; they refuse writes.

The backend is swappable (`use_backend`): Firestore in production and integration tests, the
in-memory store of `tests/support/fake_storage.py` in the fast service tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from google.cloud import firestore

from functions.adapters.firestore import db
from functions.adapters.repositories.analyses import AnalysisRepository
from functions.adapters.repositories.assignments import AssignmentRepository
from functions.adapters.repositories.cohorts import CohortRepository
from functions.adapters.repositories.experiments import ExperimentRepository
from functions.adapters.repositories.holdouts import ExposureRepository
from functions.adapters.repositories.ledger import LedgerRepository
from functions.adapters.repositories.links import LinkRepository
from functions.adapters.repositories.outbox import IdempotencyKeys, OutboxRepository
from functions.adapters.repositories.rollouts import RolloutRepository
from functions.adapters.repositories.session import FirestoreSession, Session
from functions.adapters.repositories.snapshots import SnapshotRepository

T = TypeVar("T")


class UnitOfWork:
    """The repositories of one session (one transaction, or a read-only view)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.experiments = ExperimentRepository(session)
        self.rollouts = RolloutRepository(session)
        self.cohorts = CohortRepository(session)
        self.snapshots = SnapshotRepository(session)
        self.analyses = AnalysisRepository(session)
        self.assignments = AssignmentRepository(session)
        self.links = LinkRepository(session)
        self.exposures = ExposureRepository(session)
        self.ledger = LedgerRepository(session)
        self.outbox = OutboxRepository(session)
        self.idempotency = IdempotencyKeys(session)


class Backend(Protocol):
    def atomically(self, work: Callable[[UnitOfWork], T]) -> T: ...

    def reading(self) -> UnitOfWork: ...


class FirestoreBackend:
    def atomically(self, work: Callable[[UnitOfWork], T]) -> T:
        @firestore.transactional
        def run(txn: firestore.Transaction) -> T:
            return work(UnitOfWork(FirestoreSession(txn)))

        return run(db().transaction())

    def reading(self) -> UnitOfWork:
        return UnitOfWork(FirestoreSession(None))


_backend: Backend = FirestoreBackend()


def use_backend(backend: Backend) -> Backend:
    """Swap the storage backend; returns the previous one (tests restore it)."""
    global _backend
    previous, _backend = _backend, backend
    return previous


def atomically(work: Callable[[UnitOfWork], T]) -> T:
    """Run `work` in one transaction (re-run on contention); its writes commit together or not at all."""
    return _backend.atomically(work)


def reading() -> UnitOfWork:
    """The repositories outside a transaction, for reads."""
    return _backend.reading()
