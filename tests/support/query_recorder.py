"""Records every Firestore query the code issues during the test session and checks each one
against firestore.indexes.json, so a query that would fail in production for lack of a
composite index fails the suite instead (the emulator itself never asks for indexes)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EQUALITY_OPS = {"EQUAL", "IN", "ARRAY_CONTAINS", "ARRAY_CONTAINS_ANY"}


@dataclass(frozen=True)
class QueryShape:
    collection: str
    collection_group: bool
    equality: tuple[str, ...]
    ranged: tuple[tuple[str, str], ...]  # (field, direction) in query order: inequalities and order_by

    def fields(self) -> set[str]:
        return set(self.equality) | {f for f, _ in self.ranged}

    def needs_composite(self) -> bool:
        """Single-field indexes serve equality-only queries on any number of fields (merged)
        and queries on one field; anything mixing fields with a range or order needs a composite."""
        if len(self.fields()) <= 1:
            return False
        return bool(self.ranged) and bool(set(self.equality) - {f for f, _ in self.ranged} or len(self.ranged) > 1)

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "collectionGroup": self.collection_group,
                "equality": list(self.equality), "ranged": [list(r) for r in self.ranged]}


def _flatten(where: Any, out: list[tuple[str, str]]) -> None:
    if where is None:
        return
    kind = where._pb.WhichOneof("filter_type") if hasattr(where, "_pb") else None
    if kind == "composite_filter":
        for sub in where.composite_filter.filters:
            _flatten(sub, out)
    elif kind == "field_filter":
        out.append((where.field_filter.field.field_path, where.field_filter.op.name))
    elif kind == "unary_filter":
        out.append((where.unary_filter.field.field_path, "EQUAL"))


def shape_of(structured: Any) -> QueryShape:
    filters: list[tuple[str, str]] = []
    if structured._pb.HasField("where"):
        _flatten(structured.where, filters)
    equality = tuple(sorted({f for f, op in filters if op in EQUALITY_OPS}))
    ranged: list[tuple[str, str]] = []
    for f, op in filters:
        if op not in EQUALITY_OPS and (f, "ASCENDING") not in ranged:
            ranged.append((f, "ASCENDING"))
    for order in structured.order_by:
        field = order.field.field_path
        if field == "__name__":
            continue
        direction = order.direction.name
        existing = [r for r in ranged if r[0] == field]
        if existing:
            ranged[ranged.index(existing[0])] = (field, direction)
        else:
            ranged.append((field, direction))
    source = structured.from_[0]
    return QueryShape(source.collection_id, bool(source.all_descendants), equality, tuple(ranged))


def covered(shape: QueryShape, config: dict[str, Any]) -> bool:
    scope = "COLLECTION_GROUP" if shape.collection_group else "COLLECTION"
    if not shape.needs_composite():
        if not shape.collection_group:
            return True
        # collection-group queries need the single-field index enabled for that scope
        for override in config.get("fieldOverrides", []):
            if (
                override.get("collectionGroup") == shape.collection
                and override.get("fieldPath") in shape.fields()
                and any(i.get("queryScope") == scope for i in override.get("indexes", []))
            ):
                return True
        return not shape.fields()
    for index in config.get("indexes", []):
        if index.get("collectionGroup") != shape.collection or index.get("queryScope", "COLLECTION") != scope:
            continue
        fields = [(f["fieldPath"], f.get("order", "ASCENDING")) for f in index.get("fields", [])]
        names = [f for f, _ in fields]
        if set(names) != shape.fields():
            continue
        tail = fields[len(fields) - len(shape.ranged):] if shape.ranged else []
        if set(names[: len(fields) - len(shape.ranged)]) == set(shape.equality) - {f for f, _ in shape.ranged} and (
            tail == list(shape.ranged)
        ):
            return True
    return False


def unrecorded_protobuf(query: Any) -> Any:
    """The query's protobuf without recording it (for tests of this checker)."""
    from google.cloud.firestore_v1 import base_query

    original = getattr(base_query.BaseQuery._to_protobuf, "__wrapped_original__", base_query.BaseQuery._to_protobuf)
    return original(query)


class QueryRecorder:
    def __init__(self) -> None:
        self.shapes: set[QueryShape] = set()
        self._lock = threading.Lock()
        self._original = None

    def install(self) -> None:
        from google.cloud.firestore_v1 import base_query

        original = base_query.BaseQuery._to_protobuf
        recorder = self

        def recording(query_self):
            structured = original(query_self)
            try:
                shape = shape_of(structured)
                with recorder._lock:
                    recorder.shapes.add(shape)
            except Exception:
                pass
            return structured

        self._original = original
        recording.__wrapped_original__ = original
        base_query.BaseQuery._to_protobuf = recording

    def uncovered(self, indexes_file: Path) -> list[QueryShape]:
        config = json.loads(indexes_file.read_text())
        return sorted((s for s in self.shapes if not covered(s, config)), key=lambda s: s.collection)

    def write_report(self, path: Path, indexes_file: Path) -> list[QueryShape]:
        missing = self.uncovered(indexes_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "queries": [s.to_dict() for s in sorted(self.shapes, key=lambda s: (s.collection, s.equality))],
            "missingIndexes": [s.to_dict() for s in missing],
        }, indent=2))
        return missing
