"""RFC 9162 (RFC 6962) Merkle tree: root, inclusion and consistency proofs, and verifiers that
check every step (an audit-log product once checked only the ends of a proof).

Leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right), empty tree =
SHA-256(""). Our leaves are the ledger entries' hashes (bytes.fromhex(entry.hash)).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LEAF, NODE = b"\x00", b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than n."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already leaf-hashed inputs (iterative, O(n))."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    level = list(hashes)
    # Build bottom-up with RFC 6962's left-balanced shape: pair greedily, carry an odd last node up.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def root(leaves: Sequence[bytes]) -> bytes:
    return root_from_hashes([leaf_hash(x) for x in leaves])


def _subtree(hashes: Sequence[bytes]) -> bytes:
    return root_from_hashes(hashes)


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) over leaf hashes."""
    n = len(hashes)
    if not 0 <= index < n:
        raise ValueError("index out of range")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(index, hashes[:k]), _subtree(hashes[k:])]
    return [*inclusion_proof(index - k, hashes[k:]), _subtree(hashes[:k])]


def verify_inclusion(leaf_hash_value: bytes, index: int, tree_size: int, proof: Sequence[bytes],
                     root_hash: bytes) -> bool:
    """RFC 9162 section 2.1.3.2, every step checked."""
    if index >= tree_size or index < 0:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash_value
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def _subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [_subtree(hashes)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], complete), _subtree(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), _subtree(hashes[:k])]


def consistency_proof(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): the first m leaves are a prefix of the n."""
    if not 0 < m <= len(hashes):
        raise ValueError("old size must be in 1..new size")
    return _subproof(m, hashes, True)


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2, every step checked."""
    if first <= 0 or first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    path = list(proof)
    if first & (first - 1) == 0:  # exact power of two: the old root is the first node
        path = [first_root, *path]
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def frontier_append(frontier: Sequence[tuple[int, bytes]], hashes: Sequence[bytes]) -> list[tuple[int, bytes]]:
    """Append leaf hashes to a compact range: the perfect subtrees (size, hash) of the 1-bits of
    the tree size, largest first. A checkpoint stores it, so the next root costs O(new + log n)
    instead of re-reading every leaf."""
    out = list(frontier)
    for h in hashes:
        out.append((1, h))
        while len(out) >= 2 and out[-1][0] == out[-2][0]:
            (size, right), (_, left) = out.pop(), out.pop()
            out.append((size * 2, node_hash(left, right)))
    return out


def frontier_root(frontier: Sequence[tuple[int, bytes]]) -> bytes:
    if not frontier:
        return hashlib.sha256(b"").digest()
    root_hash = frontier[-1][1]
    for _, h in reversed(frontier[:-1]):
        root_hash = node_hash(h, root_hash)
    return root_hash


def frontier_size(frontier: Sequence[tuple[int, bytes]]) -> int:
    return sum(size for size, _ in frontier)


def is_frontier_of(frontier: Sequence[tuple[int, bytes]], size: int) -> bool:
    """The shape a compact range of `size` leaves must have: the 1-bits of size, largest first."""
    sizes = [s for s, _ in frontier]
    return sizes == [1 << b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]


def consistency_proof_from_frontier(old: Sequence[tuple[int, bytes]], new_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) where the first m leaves are known only by their compact range `old` and
    the n - m appended ones by their leaf hashes: what the checkpointer proves before it signs,
    at O(new + log n) cost. Every subtree the proof names lies either inside one run of `old`'s
    perfect subtrees or wholly among the new leaves (RFC 9162 2.1.4.1's split is left-balanced)."""
    m = frontier_size(old)
    starts, at = [], 0
    for size, _ in old:
        starts.append(at)
        at += size

    def subtree(lo: int, hi: int) -> bytes:
        if lo >= m:
            return root_from_hashes(new_hashes[lo - m:hi - m])
        if hi <= m:
            first, last = starts.index(lo), next(i for i, s in enumerate(starts) if s + old[i][0] == hi)
            return frontier_root(old[first:last + 1])
        k = _split(hi - lo)
        return node_hash(subtree(lo, lo + k), subtree(lo + k, hi))

    def sub(lo: int, hi: int, size_m: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if size_m == n:
            return [] if complete else [subtree(lo, hi)]
        k = _split(n)
        if size_m <= k:
            return [*sub(lo, lo + k, size_m, complete), subtree(lo + k, hi)]
        return [*sub(lo + k, hi, size_m - k, False), subtree(lo, lo + k)]

    if m == 0:
        raise ValueError("old size must be at least 1")
    return sub(0, m + len(new_hashes), m, True)
