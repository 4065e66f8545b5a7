"""The storage seam under every repository: document paths, reads, staged writes.

A `Session` is one transaction (or, with no transaction, a read-only view). Firestore
transactions read everything before they write; a session refuses a read once it has staged a
write (`ReadAfterWrite`), so a service that breaks the order fails in the fast tests too, not only
under contention on the emulator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from google.cloud import firestore
from google.cloud.firestore_v1.aggregation import AggregationQuery, AggregationResult
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters.firestore import db

DocPath = tuple[str, ...]  # (collection, id[, sub-collection, id ...])
Document = dict[str, Any]  # what a read returns; repositories cast it to their TypedDict
Data = Mapping[str, Any]  # what a write takes: a document's TypedDict or a plain dict
Where = tuple[str, str, Any]  # (field, operator, value), Firestore's operators


@dataclass(frozen=True)
class Query:
    """A query over one collection (or sub-collection: `parent` is the document it lives under)."""

    collection: str
    where: Sequence[Where] = ()
    order_by: str | None = None
    descending: bool = False
    limit: int | None = None
    select: Sequence[str] | None = None  # a projection: only these fields come back
    parent: DocPath = ()


class ReadAfterWrite(RuntimeError):
    """A transaction tried to read after staging a write (Firestore: reads come first)."""


class ReadOnly(RuntimeError):
    """A write outside a unit of work."""


class Session(Protocol):
    def get(self, path: DocPath) -> Document | None: ...

    def query(self, collection: str, where: Sequence[Where] = (), limit: int | None = None) -> list[Document]: ...

    def run(self, query: Query) -> list[tuple[str, Document]]: ...

    def count(self, query: Query) -> int: ...

    def create(self, path: DocPath, data: Data) -> None: ...

    def set(self, path: DocPath, data: Data) -> None: ...

    def update(self, path: DocPath, changes: Data) -> None: ...

    def increment(self, path: DocPath, deltas: dict[str, int]) -> None: ...


class FirestoreSession:
    """A session over one Firestore transaction; `txn=None` reads outside any transaction."""

    def __init__(self, txn: firestore.Transaction | None) -> None:
        self.txn = txn
        self._wrote = False

    @staticmethod
    def ref(path: DocPath) -> firestore.DocumentReference:
        return db().document(*path)

    def _reading(self) -> None:
        if self._wrote:
            raise ReadAfterWrite("a transaction reads everything before it writes")

    def _writing(self) -> firestore.Transaction:
        if self.txn is None:
            raise ReadOnly("writes go through a unit of work")
        self._wrote = True
        return self.txn

    def get(self, path: DocPath) -> Document | None:
        self._reading()
        snap = self.ref(path).get(transaction=self.txn)
        return (snap.to_dict() or {}) if snap.exists else None

    def query(self, collection: str, where: Sequence[Where] = (), limit: int | None = None) -> list[Document]:
        return [doc for _, doc in self.run(Query(collection, where, limit=limit))]

    @staticmethod
    def _build(query: Query) -> firestore.Query:
        parent = db().document(*query.parent) if query.parent else None
        built: firestore.CollectionReference | firestore.Query = (
            parent.collection(query.collection) if parent is not None else db().collection(query.collection))
        for field, op, value in query.where:
            built = built.where(filter=FieldFilter(field, op, value))
        if query.order_by is not None:
            built = built.order_by(query.order_by, direction=firestore.Query.DESCENDING if query.descending
                                   else firestore.Query.ASCENDING)
        if query.limit is not None:
            built = built.limit(query.limit)
        if query.select is not None:
            built = built.select(list(query.select))
        return cast(firestore.Query, built)

    def run(self, query: Query) -> list[tuple[str, Document]]:
        """(document id, document) of every match, in the query's order."""
        self._reading()
        built = self._build(query)
        snaps = self.txn.get(built) if self.txn is not None else built.stream()
        return [(s.id, s.to_dict() or {}) for s in snaps]

    def count(self, query: Query) -> int:
        """Counted by the server (an aggregation: no document is read)."""
        self._reading()
        # the library annotates count() as returning the class and get() as a flat list; neither is so
        aggregation: AggregationQuery = self._build(query).count()  # type: ignore[assignment]
        result: list[list[AggregationResult]] = aggregation.get(transaction=self.txn)  # type: ignore[assignment]
        return int(result[0][0].value)

    def create(self, path: DocPath, data: Data) -> None:
        self._writing().create(self.ref(path), dict(data))

    def set(self, path: DocPath, data: Data) -> None:
        self._writing().set(self.ref(path), dict(data))

    def update(self, path: DocPath, changes: Data) -> None:
        self._writing().update(self.ref(path), dict(changes))

    def increment(self, path: DocPath, deltas: dict[str, int]) -> None:
        """Add to numeric fields, creating the document if needed (no read: no contention on it)."""
        self._writing().set(self.ref(path), {k: firestore.Increment(v) for k, v in deltas.items()}, merge=True)
