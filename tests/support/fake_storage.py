"""An in-memory storage backend for the unit of work: fast service tests, no emulator.

The real repositories run on top of it (only the `Session` underneath is fake), so a service
tested here reads and writes exactly what it does on Firestore. It keeps Firestore's rules that
services rely on: reads before writes in a transaction, `create` fails if the document exists
(AlreadyExists at commit), `update` needs the document (NotFound), all staged writes commit
together or not at all, and a transaction that loses a race is re-run (`contend(n)` makes the
next n commits lose). Fakes are for speed, not for proof: the emulator tests stay.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from google.api_core import exceptions as gexc

from functions.adapters import unit_of_work
from functions.adapters.repositories.session import Data, DocPath, Document, Query, ReadAfterWrite, ReadOnly, Where
from functions.adapters.unit_of_work import UnitOfWork

T = TypeVar("T")
MAX_ATTEMPTS = 5  # google.cloud.firestore.transactional's default

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "in": lambda a, b: a in b,
    "array_contains": lambda a, b: isinstance(a, list) and b in a,
    "<": lambda a, b: a is not None and a < b,
    "<=": lambda a, b: a is not None and a <= b,
    ">": lambda a, b: a is not None and a > b,
    ">=": lambda a, b: a is not None and a >= b,
}


class FakeStore:
    """Documents by path, and the record of what each transaction did."""

    def __init__(self) -> None:
        self.docs: dict[DocPath, Document] = {}
        self.attempts = 0  # transaction bodies run (retries included)
        self.commits = 0
        self._contend = 0

    # -- the unit-of-work backend --
    def atomically(self, work: Callable[[UnitOfWork], T]) -> T:
        for _ in range(MAX_ATTEMPTS):
            session = FakeSession(self, writable=True)
            self.attempts += 1
            result = work(UnitOfWork(session))
            if self._contend > 0:  # another writer committed first: Firestore re-runs the body
                self._contend -= 1
                continue
            session.commit()
            self.commits += 1
            return result
        raise gexc.Aborted("too much contention")

    def reading(self) -> UnitOfWork:
        return UnitOfWork(FakeSession(self, writable=False))

    # -- test helpers --
    def contend(self, times: int = 1) -> None:
        """The next `times` commits lose a race and their transactions run again."""
        self._contend = times

    def put(self, path: DocPath, doc: Document) -> None:
        self.docs[path] = copy.deepcopy(doc)

    def get(self, path: DocPath) -> Document | None:
        return copy.deepcopy(self.docs.get(path))

    def collection(self, *parent_and_name: str) -> dict[str, Document]:
        """The documents directly in a (sub-)collection, by id."""
        depth = len(parent_and_name) + 1
        return {p[-1]: copy.deepcopy(d) for p, d in self.docs.items()
                if len(p) == depth and p[:-1] == tuple(parent_and_name)}


class FakeSession:
    def __init__(self, store: FakeStore, writable: bool) -> None:
        self._store = store
        self._writable = writable
        self._writes: list[tuple[str, DocPath, Document]] = []

    def _reading(self) -> None:
        if self._writes:
            raise ReadAfterWrite("a transaction reads everything before it writes")

    def _stage(self, kind: str, path: DocPath, data: Data) -> None:
        if not self._writable:
            raise ReadOnly("writes go through a unit of work")
        self._writes.append((kind, path, copy.deepcopy(dict(data))))

    def get(self, path: DocPath) -> Document | None:
        self._reading()
        return self._store.get(path)

    def query(self, collection: str, where: Sequence[Where] = (), limit: int | None = None) -> list[Document]:
        return [doc for _, doc in self.run(Query(collection, where, limit=limit))]

    def _matches(self, query: Query) -> list[tuple[str, Document]]:
        self._reading()
        depth = len(query.parent) + 2
        found = [(p[-1], copy.deepcopy(d)) for p, d in sorted(self._store.docs.items())
                 if len(p) == depth and p[:-2] == query.parent and p[-2] == query.collection
                 and all(_OPS[op](d.get(field), value) for field, op, value in query.where)]
        if query.order_by is not None:  # Firestore leaves out documents without the ordering field
            field = query.order_by
            found = sorted((f for f in found if field in f[1]), key=lambda f: f[1][field], reverse=query.descending)
        return found[:query.limit] if query.limit is not None else found

    def run(self, query: Query) -> list[tuple[str, Document]]:
        found = self._matches(query)
        if query.select is not None:
            found = [(i, {k: v for k, v in d.items() if k in query.select}) for i, d in found]
        return found

    def count(self, query: Query) -> int:
        return len(self._matches(query))

    def create(self, path: DocPath, data: Data) -> None:
        self._stage("create", path, data)

    def set(self, path: DocPath, data: Data) -> None:
        self._stage("set", path, data)

    def update(self, path: DocPath, changes: Data) -> None:
        self._stage("update", path, changes)

    def increment(self, path: DocPath, deltas: dict[str, int]) -> None:
        self._stage("increment", path, deltas)

    def commit(self) -> None:
        """All staged writes, or none (a failed precondition leaves the store as it was)."""
        docs = copy.deepcopy(self._store.docs)
        for kind, path, data in self._writes:
            if kind == "create":
                if path in docs:
                    raise gexc.AlreadyExists(f"{'/'.join(path)} already exists")
                docs[path] = data
            elif kind == "set":
                docs[path] = data
            elif kind == "increment":
                target = docs.setdefault(path, {})
                for field, delta in data.items():
                    target[field] = target.get(field, 0) + delta
            else:
                if path not in docs:
                    raise gexc.NotFound(f"{'/'.join(path)} does not exist")
                for field, value in data.items():  # Firestore field paths: "a.b" updates a nested field
                    target = docs[path]
                    *parents, leaf = field.split(".")
                    for part in parents:
                        target = target.setdefault(part, {})
                    target[leaf] = value
        self._store.docs = docs


@contextmanager
def fake_storage() -> Iterator[FakeStore]:
    """Every unit of work inside the block runs on a fresh in-memory store."""
    store = FakeStore()
    previous = unit_of_work.use_backend(store)
    try:
        yield store
    finally:
        unit_of_work.use_backend(previous)
