"""The whole database as one comparable value, for tests that prove a state is unchanged or
equal to another run's."""

from __future__ import annotations

from typing import Any

from functions.adapters import firestore as fs_adapter


def dump() -> dict[str, dict[str, Any]]:
    """Every document of the database (all collections and sub-collections) by path."""
    out: dict[str, dict[str, Any]] = {}

    def walk(collection) -> None:
        for snap in collection.stream():
            out[snap.reference.path] = snap.to_dict() or {}
        for ref in collection.list_documents():  # also parents that only hold sub-collections
            for sub in ref.collections():
                walk(sub)

    for collection in fs_adapter.db().collections():
        walk(collection)
    return out
