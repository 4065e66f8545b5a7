"""Union-find bookkeeping on pre-loaded nodes (no Firestore: every node is already in memory)."""

from __future__ import annotations

from functions.services.holdouts.unionfind import Forest, Node


def forest(*nodes: Node) -> Forest:
    f = Forest(uow=None, cohort_id="c")  # type: ignore[arg-type]
    f.nodes = {n.key: n for n in nodes}
    return f


def single(key: str, holdout: bool) -> Node:
    return Node(key=key, unit_id=key, holdout=int(holdout), treated=int(not holdout), in_holdout=holdout)


def test_union_by_size_sums_counts_and_tracks_spanning():
    f = forest(single("a", True), single("b", False), single("c", False), single("d", False))
    root = f.union("b", "c")
    assert (root.size, root.holdout, root.treated, root.spans) == (2, 0, 2, False)
    assert f.spanning_delta() == 0
    root = f.union("a", "b")
    assert root.key in {"b", "c"} and f.nodes["a"].parent == root.key  # the singleton joins the larger tree
    assert (root.size, root.holdout, root.treated, root.spans) == (3, 1, 2, True)
    assert f.spanning_delta() == 1
    assert f.union("a", "c").key == root.key  # already joined: no-op
    assert f.find("d").key == "d"


def test_spanning_delta_counts_absorbed_spanning_roots():
    a = Node.from_doc("a", {"unitId": "a", "size": 2, "holdout": 1, "treated": 1})
    b = Node.from_doc("b", {"unitId": "b", "size": 2, "holdout": 1, "treated": 1})
    f = forest(a, b)
    assert a.spans_before and b.spans_before
    f.union("a", "b")
    assert f.spanning_delta() == -1  # two spanning components became one


def test_set_side_moves_counts_of_the_root():
    f = forest(single("a", True), single("b", False))
    root = f.union("a", "b")
    assert f.set_side(f.nodes["a"], False) is True
    assert (root.holdout, root.treated, root.spans) == (0, 2, False)
    assert f.set_side(f.nodes["a"], False) is False


def test_depth_stays_logarithmic():
    nodes = [single(f"n{i:04d}", i % 2 == 0) for i in range(1024)]
    f = forest(*nodes)
    step = 1
    while step < 1024:  # worst case for naive union: merge equal-size trees repeatedly
        for i in range(0, 1024, 2 * step):
            f.union(nodes[i].key, nodes[i + step].key)
        step *= 2
    def depth(key: str) -> int:
        d, node = 0, f.nodes[key]
        while node.parent:
            node, d = f.nodes[node.parent], d + 1
        return d
    assert max(depth(n.key) for n in nodes) <= 10
    assert f.find("n0000").size == 1024 and f.find("n0000").holdout == 512
