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


def versions() -> dict[str, Any]:
    """Every document's path and update time, from one all-descendants query: any create, update
    or delete changes it, so it proves "unchanged" as dump() does, cheaply enough to take around
    every fuzz case. (The client has no public kindless query, hence its API object.)"""
    from google.cloud.firestore_v1.types import StructuredQuery

    client = fs_adapter.db()
    query = StructuredQuery(from_=[StructuredQuery.CollectionSelector(all_descendants=True)],
                            select=StructuredQuery.Projection(fields=[]))
    stream = client._firestore_api.run_query(
        request={"parent": client._database_string + "/documents", "structured_query": query},
        metadata=client._rpc_metadata)
    return {r.document.name: r.document.update_time for r in stream if r.document.name}
