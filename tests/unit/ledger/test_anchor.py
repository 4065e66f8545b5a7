"""The anchoring core without a database: consistency proofs from a compact range, entry
signatures, checkpoint checks, the witness, and the start-up refusal without a key."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from functions.core.ledger import anchor, merkle, signing
from functions.core.ledger.entry import GENESIS_HASH, seal_entry
from functions.core.ledger.verify import verify_chain, verify_segment
from functions.core.ledger.witness import verify_witness

ROOT = Path(__file__).resolve().parents[3]
KEY = Ed25519PrivateKey.generate()
RING = signing.keyring_of([KEY])


def signed_chain(n: int, key: Ed25519PrivateKey = KEY) -> list[dict]:
    docs, prev = [], GENESIS_HASH
    for i in range(n):
        sealed = seal_entry(chain_id="exp-1", seq=i, prev_hash=prev, timestamp=f"2026-11-24T00:00:{i:02d}Z",
                            actor={"uid": "u"}, action="X", subject={}, payload={"i": i})
        docs.append({**sealed.to_document(), **signing.sign_entry(sealed.hash, key)})
        prev = sealed.hash
    return docs


def test_consistency_proofs_from_a_compact_range_equal_the_full_tree_proofs():
    hashes = [merkle.leaf_hash(bytes([i])) for i in range(40)]
    for n in range(1, 40):
        for m in range(1, n + 1):
            old = merkle.frontier_append([], hashes[:m])
            proof = merkle.consistency_proof_from_frontier(old, hashes[m:n])
            assert proof == merkle.consistency_proof(m, hashes[:n])
            assert merkle.verify_consistency(m, n, merkle.frontier_root(old), merkle.root_from_hashes(hashes[:n]),
                                             proof)


def test_an_unsigned_entry_past_the_signed_head_is_forged():
    docs = signed_chain(6)
    assert verify_chain("exp-1", docs, (3, docs[3]["hash"]), RING).ok
    docs[5] = {k: v for k, v in docs[5].items() if k != "signature"}
    verdict = verify_chain("exp-1", docs, (3, docs[3]["hash"]), RING)
    assert (verdict.ok, verdict.damage, verdict.first_bad_index) == (False, "FORGED_ENTRY", 5)
    other = Ed25519PrivateKey.generate()  # an insider's own key is not in the keyring
    docs = signed_chain(6)
    docs[5].update(signing.sign_entry(docs[5]["hash"], other))
    assert verify_chain("exp-1", docs, None, RING).damage == "FORGED_ENTRY"


@pytest.mark.parametrize("start", [1, 2, 5])
def test_a_consistent_rechain_is_reported_at_its_first_rewritten_entry(start):
    docs = signed_chain(9)
    head = (8, docs[-1]["hash"])
    forged, prev = copy.deepcopy(docs[:start]), docs[start - 1]["hash"]
    for i in range(start, 9):
        sealed = seal_entry(chain_id="exp-1", seq=i, prev_hash=prev, timestamp="t", actor={"uid": "mallory"},
                            action="X", subject={}, payload={"i": i})
        forged.append({**sealed.to_document(), "signature": docs[i]["signature"], "keyId": docs[i]["keyId"]})
        prev = sealed.hash
    for expected_head in (head, None):  # pinned by the checkpoint, or the anchor lost
        verdict = verify_chain("exp-1", forged, expected_head, RING)
        assert (verdict.ok, verdict.first_bad_index) == (False, start)
    assert verify_chain("exp-1", forged, head, RING).damage == "REWRITTEN_CHAIN"
    assert verify_segment("exp-1", forged[start - 1:], head, RING).first_bad_index == start


def _checkpoints(sizes: list[int], key: Ed25519PrivateKey = KEY, salt: bytes = b"") -> list[dict]:
    """Published checkpoint messages over one growing log."""
    leaves = [merkle.leaf_hash(salt + bytes([i])) for i in range(max(sizes))]
    out, previous = [], None
    for number, size in enumerate(sizes, 1):
        prev_size = previous["treeSize"] if previous else 0
        old = merkle.frontier_append([], leaves[:prev_size])
        cp = {"format": signing.CHECKPOINT_FORMAT, "number": number, "treeSize": size,
              "rootHash": merkle.root_from_hashes(leaves[:size]).hex(), "at": f"2026-11-24T00:0{number}:00Z",
              "previousSize": prev_size, "previousRoot": previous["rootHash"] if previous else anchor.EMPTY_ROOT,
              "headsRoot": signing.heads_root({}), "keyId": signing.key_id(key)}
        path = merkle.consistency_proof_from_frontier(old, leaves[prev_size:size]) if prev_size else []
        cp.update(signature=signing.sign(cp, key), consistency={"fromSize": prev_size, "fromRoot": cp["previousRoot"],
                                                                "path": [h.hex() for h in path]})
        out.append(cp)
        previous = cp
    return out


def _names(cps):
    return [(f"{i}.json", cp) for i, cp in enumerate(cps)]


def test_a_witness_accepts_a_growing_log_and_sees_forks_rollbacks_and_bad_proofs():
    good = _checkpoints([3, 5, 9, 12])
    assert verify_witness(_names(good), RING)["ok"]
    other = _checkpoints([3, 5, 7], salt=b"x")  # the same key signed another history
    kinds = {p["damage"] for p in verify_witness(_names([*good, other[1]]), RING)["problems"]}
    assert "FORK" in kinds
    rolled = _checkpoints([3, 5, 6, 7, 8])[4]  # number 5 of a log restored to an older state: 8 leaves, not 12+
    assert [p["damage"] for p in verify_witness(_names([*good, rolled]), RING)["problems"]] == ["ROLLBACK"]
    bent = copy.deepcopy(good[2])
    bent["consistency"]["path"] = bent["consistency"]["path"][:-1]
    assert [p["damage"] for p in verify_witness(_names([good[0], good[1], bent]), RING)["problems"]] == [
        "INCONSISTENT_PROOF"]
    assert [p["damage"] for p in verify_witness(_names(good), signing.keyring_of([Ed25519PrivateKey.generate()]))[
        "problems"]] == ["BAD_SIGNATURE"] * 4


def test_checkpoint_heads_and_links_are_checked():
    cps = _checkpoints([3, 5])
    heads = {"exp-1": [2, "ab" * 32]}
    cp = {**cps[1], "headsRoot": signing.heads_root(heads), "chainHeads": heads}
    cp["signature"] = signing.sign(cp, KEY)
    assert anchor.checkpoint_problems(cp, RING) == []
    edited = {**cp, "chainHeads": {"exp-1": [2, "cd" * 32]}}
    assert [p["damage"] for p in anchor.checkpoint_problems(edited, RING)] == ["HEADS_TAMPERED"]
    assert anchor.link_problems(cps[0], cp) == []
    assert [p["damage"] for p in anchor.link_problems(None, cp)] == ["CHECKPOINT_MISSING"]
    assert [p["damage"] for p in anchor.link_problems({**cps[0], "rootHash": "00" * 32}, cp)] == ["CHECKPOINT_GAP"]


def _import_main(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("LEDGER_SIGNING_KEY", "K_SERVICE")}
    return subprocess.run([sys.executable, "-c", "import main"], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_in_the_cloud_the_functions_refuse_to_start_without_a_signing_key(tmp_path):
    missing = _import_main({"K_SERVICE": "ledger", "LEDGER_KEY_FILE": str(tmp_path / "never.pem")})
    assert missing.returncode != 0 and "LEDGER_SIGNING_KEY is not configured" in missing.stderr
    assert not (tmp_path / "never.pem").exists()  # no per-instance key was made up
    import base64

    from cryptography.hazmat.primitives import serialization

    seed = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                      serialization.NoEncryption())
    configured = _import_main({"K_SERVICE": "ledger", "LEDGER_SIGNING_KEY": base64.b64encode(seed).decode()})
    assert configured.returncode == 0, configured.stderr


def test_a_keyring_entry_whose_id_does_not_match_its_key_is_refused():
    doc = signing.keyring_document(RING, signing.key_id(KEY))
    assert signing.keyring_from_document(doc).keys() == RING.keys()
    doc["keys"][0]["keyId"] = "0" * 16
    with pytest.raises(ValueError):
        signing.keyring_from_document(doc)
