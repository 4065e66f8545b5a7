"""Connected components of linked units, persisted per cohort for use inside one transaction.

Node documents `holdoutCohorts/{id}/units/{sha(unit)}` hold a parent pointer; roots hold the
component's size and how many of its units are on each side (holdout / not). Union by size
keeps trees O(log n) deep, so `find` reads a handful of documents and a union writes two (the
absorbed root and the new root): O(1) documents per link, in the caller's transaction, with no
rewrite of the smaller component. A missing document is a singleton component.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from functions.adapters.repositories.links import NodeDoc
from functions.adapters.unit_of_work import UnitOfWork

MAX_DEPTH = 64  # union by size bounds depth by log2(units); this only guards corrupt data


@dataclass
class Node:
    key: str
    unit_id: str | None
    parent: str | None = None
    size: int = 1
    holdout: int = 0
    treated: int = 0
    in_holdout: bool = False
    randomisation_id: str | None = None
    contaminated: bool = False
    contaminated_by: str | None = None
    contaminated_at: str | None = None
    exists: bool = False
    dirty: bool = False
    spans_before: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_root(self) -> bool:
        return self.parent is None

    @property
    def spans(self) -> bool:
        return self.is_root and self.holdout > 0 and self.treated > 0

    @classmethod
    def from_doc(cls, key: str, doc: NodeDoc) -> Node:
        node = cls(
            key=key,
            unit_id=doc.get("unitId"),
            parent=doc.get("parent"),
            size=int(doc.get("size", 1)),
            holdout=int(doc.get("holdout", 0)),
            treated=int(doc.get("treated", 0)),
            in_holdout=bool(doc.get("inHoldout", False)),
            randomisation_id=doc.get("randomisationId"),
            contaminated=bool(doc.get("contaminated", False)),
            contaminated_by=doc.get("contaminatedBy"),
            contaminated_at=doc.get("contaminatedAt"),
            exists=True,
        )
        node.spans_before = node.spans
        return node

    def to_doc(self) -> NodeDoc:
        return {
            "unitId": self.unit_id,
            "parent": self.parent,
            "size": self.size,
            "holdout": self.holdout,
            "treated": self.treated,
            "spans": self.spans,
            "inHoldout": self.in_holdout,
            "randomisationId": self.randomisation_id,
            "contaminated": self.contaminated,
            "contaminatedBy": self.contaminated_by,
            "contaminatedAt": self.contaminated_at,
        }


class Forest:
    """The nodes one transaction touched, read lazily, written back at the end."""

    def __init__(self, uow: UnitOfWork, cohort_id: str) -> None:
        self.uow = uow
        self.cohort_id = cohort_id
        self.nodes: dict[str, Node] = {}

    def node(self, key: str, make: Callable[[], Node] | None = None) -> Node:
        if key not in self.nodes:
            doc = self.uow.links.node(self.cohort_id, key)
            if doc is not None:
                self.nodes[key] = Node.from_doc(key, doc)
            else:
                if make is None:
                    raise KeyError(key)
                self.nodes[key] = make()
        return self.nodes[key]

    def find(self, key: str) -> Node:
        node = self.nodes[key]
        for _ in range(MAX_DEPTH):
            if node.parent is None:
                return node
            node = self.node(node.parent)
        raise RuntimeError(f"union-find chain deeper than {MAX_DEPTH} in cohort {self.cohort_id}")

    def set_side(self, node: Node, in_holdout: bool) -> bool:
        """Move one unit to the other side (clustering); its root's counts follow."""
        if node.in_holdout == in_holdout:
            return False
        root = self.find(node.key)
        delta = 1 if in_holdout else -1
        root.holdout += delta
        root.treated -= delta
        node.in_holdout = in_holdout
        node.dirty = root.dirty = True
        return True

    def union(self, a: str, b: str) -> Node:
        ra, rb = self.find(a), self.find(b)
        if ra.key == rb.key:
            return ra
        big, small = (ra, rb) if (ra.size, rb.key) > (rb.size, ra.key) else (rb, ra)
        small.parent = big.key
        big.size += small.size
        big.holdout += small.holdout
        big.treated += small.treated
        big.dirty = small.dirty = True
        return big

    def spanning_delta(self) -> int:
        return sum(int(n.spans) - int(n.spans_before) for n in self.nodes.values())

    def write(self) -> None:
        for node in self.nodes.values():
            if node.dirty or not node.exists:
                self.uow.links.save_node(self.cohort_id, node.key, node.to_doc())
