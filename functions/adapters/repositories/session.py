"""The storage seam under every repository: document paths, reads, staged writes.

A `Session` is one transaction (or, with no transaction, a read-only view). Firestore
transactions read everything before they write; a session refuses a read once it has staged a
write (`ReadAfterWrite`), so a service that breaks the order fails in the fast tests too, not only
under contention on the emulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters.firestore import db

DocPath = tuple[str, ...]  # (collection, id[, sub-collection, id ...])
Document = dict[str, Any]
Where = tuple[str, str, Any]  # (field, operator, value): "==" and "in" are what repositories use


class ReadAfterWrite(RuntimeError):
    """A transaction tried to read after staging a write (Firestore: reads come first)."""


class ReadOnly(RuntimeError):
    """A write outside a unit of work."""


class Session(Protocol):
    def get(self, path: DocPath) -> Document | None: ...

    def query(self, collection: str, where: Sequence[Where] = (), limit: int | None = None) -> list[Document]: ...

    def create(self, path: DocPath, data: Document) -> None: ...

    def set(self, path: DocPath, data: Document) -> None: ...

    def update(self, path: DocPath, changes: Document) -> None: ...


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
        self._reading()
        query: firestore.CollectionReference | firestore.Query = db().collection(collection)
        for field, op, value in where:
            query = query.where(filter=FieldFilter(field, op, value))
        if limit is not None:
            query = query.limit(limit)
        snaps = self.txn.get(cast(firestore.Query, query)) if self.txn is not None else query.stream()
        return [s.to_dict() or {} for s in snaps]

    def create(self, path: DocPath, data: Document) -> None:
        self._writing().create(self.ref(path), data)

    def set(self, path: DocPath, data: Document) -> None:
        self._writing().set(self.ref(path), data)

    def update(self, path: DocPath, changes: Document) -> None:
        self._writing().update(self.ref(path), changes)
