"""RFC 6962 known answers, and proofs that verify exactly when they should."""

from __future__ import annotations

import hashlib

import pytest

from functions.core.ledger import merkle

# The certificate-transparency reference leaves and roots (RFC 6962 test data).
LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
          bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_empty_tree_is_hash_of_nothing():
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def test_single_leaf_has_the_leaf_prefix():
    assert merkle.root([b"x"]) == hashlib.sha256(b"\x00x").digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_rfc6962_roots(size):
    assert merkle.root(LEAVES[:size]).hex() == ROOTS[size - 1]


def _hashes(n):
    return [merkle.leaf_hash(f"leaf-{i}".encode()) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64, 100])
def test_every_inclusion_proof_verifies(n):
    hashes = _hashes(n)
    root = merkle.root_from_hashes(hashes)
    for i in range(n):
        assert merkle.verify_inclusion(hashes[i], i, n, merkle.inclusion_proof(i, hashes), root)


@pytest.mark.parametrize(("m", "n"), [(1, 2), (1, 8), (3, 7), (4, 8), (5, 13), (8, 8), (63, 100), (64, 100)])
def test_every_consistency_proof_verifies(m, n):
    hashes = _hashes(n)
    proof = merkle.consistency_proof(m, hashes)
    assert merkle.verify_consistency(m, n, merkle.root_from_hashes(hashes[:m]), merkle.root_from_hashes(hashes),
                                     proof)


def _flip(b: bytes) -> bytes:
    return bytes([b[0] ^ 1]) + b[1:]


def test_mutated_inclusion_proofs_fail():
    hashes = _hashes(13)
    root = merkle.root_from_hashes(hashes)
    proof = merkle.inclusion_proof(5, hashes)
    assert merkle.verify_inclusion(hashes[5], 5, 13, proof, root)
    for k in range(len(proof)):  # a bit flip in any step
        bad = list(proof)
        bad[k] = _flip(bad[k])
        assert not merkle.verify_inclusion(hashes[5], 5, 13, bad, root)
    assert not merkle.verify_inclusion(hashes[5], 5, 13, proof[:-1], root)  # truncated
    assert not merkle.verify_inclusion(hashes[5], 5, 13, [*proof, proof[0]], root)  # extended
    assert not merkle.verify_inclusion(hashes[5], 6, 13, proof, root)  # wrong index
    assert not merkle.verify_inclusion(hashes[5], 5, 8, proof, root)  # wrong size (sizes with the same path
    # shape, e.g. 14, are bound to their root by the signed checkpoint, not by the path)
    assert not merkle.verify_inclusion(_flip(hashes[5]), 5, 13, proof, root)
    assert not merkle.verify_inclusion(hashes[5], 5, 13, proof, _flip(root))


def test_mutated_consistency_proofs_fail():
    hashes = _hashes(20)
    old, new = merkle.root_from_hashes(hashes[:7]), merkle.root_from_hashes(hashes)
    proof = merkle.consistency_proof(7, hashes)
    for k in range(len(proof)):
        bad = list(proof)
        bad[k] = _flip(bad[k])
        assert not merkle.verify_consistency(7, 20, old, new, bad)
    assert not merkle.verify_consistency(7, 20, old, new, proof[:-1])
    assert not merkle.verify_consistency(6, 20, old, new, proof)
    assert not merkle.verify_consistency(7, 40, old, new, proof)
    assert not merkle.verify_consistency(7, 20, _flip(old), new, proof)
