"""Sealing, chain verification with damage classification, frontiers and signatures."""

from __future__ import annotations

import copy

import pytest

from functions.core.ledger import merkle, signing
from functions.core.ledger.entry import GENESIS_HASH, seal_entry
from functions.core.ledger.verify import verify_chain


def chain(n: int, chain_id: str = "exp-1", genesis: str = GENESIS_HASH) -> list[dict]:
    docs, prev = [], genesis
    for i in range(n):
        sealed = seal_entry(chain_id=chain_id, seq=i, prev_hash=prev, timestamp=f"2026-11-24T00:00:{i:02d}Z",
                            actor={"uid": "u", "role": "pm"}, action="EXPERIMENT_X", subject={"experimentId": "e"},
                            payload={"i": i, "note": '"prevHash":"forged"'})
        docs.append(sealed.to_document())
        prev = sealed.hash
    return docs


def test_intact_chain_verifies():
    docs = chain(20)
    verdict = verify_chain("exp-1", docs, expected_head=(19, docs[-1]["hash"]))
    assert verdict.ok and verdict.length == 20 and verdict.head_hash == docs[-1]["hash"]


def _reseal_from(docs, start):
    """What a forger with write access does: rewrite bodies and hashes from `start` on."""
    prev = docs[start - 1]["hash"] if start else GENESIS_HASH
    out = docs[:start]
    for i, d in enumerate(docs[start:], start):
        sealed = seal_entry(chain_id="exp-1", seq=i, prev_hash=prev, timestamp=d["timestamp"], actor=d["actor"],
                            action=d["action"], subject=d["subject"], payload={"i": i, "forged": True})
        out.append(sealed.to_document())
        prev = sealed.hash
    return out


CASES = {
    "modified_in_place": (lambda d: d[5].update(canonical=d[5]["canonical"].replace('"i":5', '"i":6'))
                          or d, 5, "MODIFIED_ENTRY"),
    "modified_and_rehashed": (lambda d: [*d[:5], seal_entry(
        chain_id="exp-1", seq=5, prev_hash=d[4]["hash"], timestamp=d[5]["timestamp"], actor=d[5]["actor"],
        action=d[5]["action"], subject=d[5]["subject"], payload={"i": 500}).to_document(), *d[6:]],
        5, "MODIFIED_ENTRY"),
    "deleted": (lambda d: [*d[:7], *d[8:]], 7, "DELETED_ENTRY"),
    "reordered": (lambda d: [*d[:3], d[4], d[3], *d[5:]], 3, "REORDERED_ENTRIES"),
    "truncated": (lambda d: d[:15], 15, "TRUNCATED_TAIL"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_damage_is_named_with_its_first_index(name):
    docs = chain(20)
    head = (19, docs[-1]["hash"])
    damage, index, kind = CASES[name]
    verdict = verify_chain("exp-1", damage(copy.deepcopy(docs)), expected_head=head)
    assert (verdict.ok, verdict.first_bad_index, verdict.damage) == (False, index, kind)


def test_inserted_entry_is_named():
    docs = chain(10)
    forged = seal_entry(chain_id="exp-1", seq=4, prev_hash=docs[3]["hash"], timestamp="t", actor={"uid": "x"},
                        action="FORGED", subject={}, payload={}).to_document()
    tampered = [*docs[:4], forged, *docs[4:]]
    verdict = verify_chain("exp-1", tampered)
    assert (verdict.ok, verdict.damage, verdict.first_bad_index) == (False, "INSERTED_ENTRY", 4)


def test_replaced_genesis_is_named():
    docs = chain(5, genesis="0" * 64)
    verdict = verify_chain("exp-1", docs)
    assert (verdict.damage, verdict.first_bad_index) == ("REPLACED_GENESIS", 0)


def test_a_fully_resealed_tail_is_caught_by_the_checkpoint_head():
    docs = chain(12)
    head = (11, docs[-1]["hash"])
    forged = _reseal_from(copy.deepcopy(docs), 6)
    assert verify_chain("exp-1", forged).ok  # internally consistent...
    verdict = verify_chain("exp-1", forged, expected_head=head)
    assert not verdict.ok and verdict.damage == "MODIFIED_ENTRY"  # ...but not what was signed


def test_frontier_gives_the_same_root_as_the_full_tree():
    hashes = [merkle.leaf_hash(bytes([i])) for i in range(37)]
    frontier = []
    for start in range(0, 37, 5):
        frontier = merkle.frontier_append(frontier, hashes[start:start + 5])
        assert merkle.frontier_root(frontier) == merkle.root_from_hashes(hashes[:start + 5])


def test_signatures_verify_only_with_the_right_key_and_content(tmp_path):
    key = signing.load_or_create_dev_key(tmp_path / "k.pem")
    again = signing.load_or_create_dev_key(tmp_path / "k.pem")
    assert signing.public_pem(key) == signing.public_pem(again)  # generated once, then reused
    ring = signing.keyring_of([key])
    checkpoint = {"format": signing.CHECKPOINT_FORMAT, "number": 2, "treeSize": 10, "rootHash": "ab" * 32,
                  "at": "2026-11-24T00:00:00Z", "previousSize": 5, "previousRoot": "cd" * 32,
                  "headsRoot": signing.heads_root({"exp-1": [9, "ef" * 32]}), "keyId": signing.key_id(key)}
    signature = signing.sign(checkpoint, key)
    assert signing.verify(checkpoint, signature, ring)
    for field, value in (("treeSize", 11), ("headsRoot", "00" * 32), ("previousRoot", "00" * 32), ("number", 3)):
        assert not signing.verify({**checkpoint, field: value}, signature, ring), field
    other = signing.load_or_create_dev_key(tmp_path / "other.pem")
    assert not signing.verify(checkpoint, signature, signing.keyring_of([other]))
    # a checkpoint cannot bring its own key: the key id must be in the verifier's keyring
    forged = {**checkpoint, "keyId": signing.key_id(other)}
    assert not signing.verify(forged, signing.sign(forged, other), ring)


def _forge_link(doc: dict, body_prev: str, nested_prev: str | None) -> dict:
    """Rewrite one entry so its stored metadata prevHash stays right while its canonical body's
    top-level prevHash says `body_prev`; `nested_prev` hides the right value in the payload, where
    a plain substring search would find it. Rehashed, as a forger with write access would."""
    import json

    body = json.loads(doc["canonical"])
    body["prevHash"] = body_prev
    if nested_prev is not None:
        body["payload"] = {**body["payload"], "shadow": {"prevHash": nested_prev}}
    from functions.core.ledger.canonical import canonical_bytes
    from functions.core.ledger.entry import entry_hash_from_canonical

    canonical = canonical_bytes(body)
    return {**doc, "canonical": canonical.decode(), "hash": entry_hash_from_canonical(canonical)}


@pytest.mark.parametrize("nested", [True, False], ids=["right-value-nested-in-payload", "plain"])
@pytest.mark.parametrize("pinned", [True, False], ids=["checkpoint-head", "no-head"])
@pytest.mark.parametrize("at", [0, 6, 11])
def test_metadata_prev_right_but_body_prev_wrong_is_caught(at, pinned, nested):
    docs = chain(12)
    head = (11, docs[-1]["hash"]) if pinned else None
    right = docs[at]["prevHash"]
    docs[at] = _forge_link(docs[at], "0" * 64, right if nested else None)
    assert docs[at]["prevHash"] == right  # the stored field still looks right
    verdict = verify_chain("exp-1", docs, expected_head=head)
    assert not verdict.ok
    assert verdict.first_bad_index == at
    assert verdict.damage in ("MODIFIED_ENTRY", "REPLACED_GENESIS")


def test_a_body_prev_with_the_right_prefix_but_extra_characters_is_caught():
    docs = chain(6)
    docs[5] = _forge_link(docs[5], docs[4]["hash"] + "00", None)
    assert verify_chain("exp-1", docs).first_bad_index == 5  # unpinned tail: parsed exactly
    docs = chain(6)
    docs[3] = _forge_link(docs[3], docs[2]["hash"] + "00", None)
    verdict = verify_chain("exp-1", docs, expected_head=(5, docs[5]["hash"]))
    assert (verdict.ok, verdict.first_bad_index) == (False, 3)


def test_seq_or_chain_id_forged_in_the_unpinned_tail_is_caught():
    import json

    from functions.core.ledger.canonical import canonical_bytes
    from functions.core.ledger.entry import entry_hash_from_canonical

    for field, value in (("seq", 99), ("chainId", "exp-2")):
        docs = chain(4)
        body = {**json.loads(docs[3]["canonical"]), field: value}
        canonical = canonical_bytes(body)
        docs[3] = {**docs[3], "canonical": canonical.decode(), "hash": entry_hash_from_canonical(canonical)}
        verdict = verify_chain("exp-1", docs)
        assert (verdict.ok, verdict.first_bad_index) == (False, 3), field


def test_subjects_cannot_shadow_the_chain_link():
    with pytest.raises(ValueError):
        seal_entry(chain_id="c", seq=0, prev_hash=GENESIS_HASH, timestamp="t", actor={}, action="A",
                   subject={"prevHash": "x"}, payload={})
    # payloads may carry the key: the link is the last token, which follows the payload
    sealed = seal_entry(chain_id="c", seq=0, prev_hash=GENESIS_HASH, timestamp="t", actor={}, action="A",
                        subject={}, payload={"prevHash": "0" * 64})
    assert verify_chain("c", [sealed.to_document()], expected_head=(0, sealed.hash)).ok


def test_segments_of_a_chain_verify_and_name_damage_by_sequence():
    from functions.core.ledger.verify import verify_segment

    docs = chain(10)
    assert verify_segment("exp-1", docs[3:8]).ok
    assert verify_segment("exp-1", docs[:4]).ok
    assert verify_segment("exp-1", []).ok
    gap = [*docs[3:5], *docs[6:8]]
    assert (verify_segment("exp-1", gap).first_bad_index, verify_segment("exp-1", gap).damage) == (5, "DELETED_ENTRY")
    edited = copy.deepcopy(docs[3:8])
    edited[2]["canonical"] = edited[2]["canonical"].replace('"i":5', '"i":50')
    assert (verify_segment("exp-1", edited).first_bad_index, verify_segment("exp-1", edited).damage) == (
        5, "MODIFIED_ENTRY")
    assert verify_segment("exp-1", chain(3, genesis="1" * 64)).damage == "REPLACED_GENESIS"
