"""An insider with database write access (the Admin SDK, bypassing the rules) but without the
signing key attacks signed history, then waits while routine sweeps take their checkpoints. Every
verifier must keep saying DAMAGED, at the first bad index: per-experiment verify, whole-ledger
verify, the audit report (JSON and HTML) and the offline CLI over an export, also with the
export's header doctored to say ok."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from functions.adapters import ledger_store
from functions.adapters.firestore import db
from functions.core.ledger.__main__ import main as cli
from functions.core.ledger.entry import seal_entry
from functions.services.ledger import checkpoints
from functions.services.sweep import run_sweep
from localdev.tokens import bearer
from tests.integration.ledger.test_ledger_on_emulator import append as _append

VIEWER = bearer("auditor", ["viewer"])
FORGED_APPROVER = "mallory"
REWRITTEN = {"REWRITTEN_CHAIN", "FORGED_ENTRY"}  # a re-chain: rewritten, or unsigned once the anchor is gone




def _entries_ref(chain: str):
    return ledger_store.chain_ref(chain).collection(ledger_store.ENTRIES)


def _checkpoint_docs():
    return list(db().collection("experimentLedger").document("_log").collection("checkpoints").stream())


def _rechain(chain: str, start: int) -> list[dict]:
    """Rewrite every entry from `start` on, approvers replaced, with recomputed hashes, the old
    signature fields kept, and the head document moved: a consistent rewrite."""
    docs = ledger_store.entries(chain)
    prev = docs[start - 1]["hash"]
    for doc in docs[start:]:
        body = json.loads(doc["canonical"])
        actor = {**body["actor"], "uid": FORGED_APPROVER} if "APPROV" in body["action"] else body["actor"]
        payload = {**body["payload"], "reason": "rewritten"}
        sealed = seal_entry(chain_id=chain, seq=body["seq"], prev_hash=prev, timestamp=body["timestamp"],
                            actor=actor, action=body["action"], subject=body["subject"], payload=payload)
        _entries_ref(chain).document(ledger_store.entry_id(body["seq"])).set({**doc, **sealed.to_document()})
        prev = sealed.hash
    ledger_store.chain_ref(chain).update({"headHash": prev})
    return ledger_store.entries(chain)


def rechain(chain, state):
    _rechain(chain, 2)
    return 2, REWRITTEN


def truncate(chain, state):
    docs = ledger_store.entries(chain)
    keep = len(docs) - 2
    for doc in docs[keep:]:
        _entries_ref(chain).document(ledger_store.entry_id(doc["seq"])).delete()
    ledger_store.chain_ref(chain).update({"headSeq": keep - 1, "headHash": docs[keep - 1]["hash"]})
    return keep, {"TRUNCATED_TAIL"}


def rechain_then_edit_heads(chain, state):
    forged = _rechain(chain, 2)
    latest = max(_checkpoint_docs(), key=lambda s: s.get("treeSize"))
    latest.reference.update({f"chainHeads.`{chain}`": [forged[-1]["seq"], forged[-1]["hash"]]})
    return 2, REWRITTEN


def rechain_then_delete_latest_checkpoint(chain, state):
    _rechain(chain, 2)
    max(_checkpoint_docs(), key=lambda s: s.get("treeSize")).reference.delete()
    return 2, REWRITTEN


def rechain_then_roll_the_log_back(chain, state):
    """The thorough version: the newest checkpoint, its leaves and the log state go back to the
    checkpoint before, as if it had never been taken."""
    _rechain(chain, 2)
    latest = max(_checkpoint_docs(), key=lambda s: s.get("treeSize"))
    log = db().collection("experimentLedger").document("_log")
    for leaf in log.collection("leaves").stream():
        if int(leaf.id) >= state["first_log"]["size"]:
            leaf.reference.delete()
    latest.reference.delete()
    log.set(state["first_log"])
    return 2, REWRITTEN


def forged_append(chain, state):
    docs = ledger_store.entries(chain)
    n = len(docs)
    sealed = seal_entry(chain_id=chain, seq=n, prev_hash=docs[-1]["hash"], timestamp=docs[-1]["timestamp"],
                        actor={"uid": FORGED_APPROVER, "role": "approver"}, action="EXPERIMENT_APPROVE",
                        subject=json.loads(docs[-1]["canonical"])["subject"], payload={"reason": "backdated"})
    _entries_ref(chain).document(ledger_store.entry_id(n)).create(
        {**sealed.to_document(), "signature": docs[-1].get("signature"), "keyId": docs[-1].get("keyId")})
    ledger_store.chain_ref(chain).update({"headSeq": n, "headHash": sealed.hash})
    return n, {"FORGED_ENTRY"}


def forged_checkpoint(chain, state):
    """A new newest checkpoint over the re-chained history, signed with the insider's own key."""
    forged = _rechain(chain, 2)
    latest = max(_checkpoint_docs(), key=lambda s: s.get("treeSize")).to_dict()
    size = latest["treeSize"] + 1
    mine = Ed25519PrivateKey.generate()
    from functions.core.ledger import signing

    fake = {**latest, "treeSize": size, "number": latest.get("number", 0) + 1, "previousSize": latest["treeSize"],
            "chainHeads": {**latest["chainHeads"], chain: [forged[-1]["seq"], forged[-1]["hash"]]},
            "keyId": signing.key_id(mine)}
    fake["signature"] = signing.sign({k: fake.get(k) for k in signing.SIGNED_FIELDS}, mine)
    log = db().collection("experimentLedger").document("_log")
    log.collection("checkpoints").document(f"{size:012d}").set(fake)
    log.update({"size": size})
    return 2, REWRITTEN


ATTACKS = [rechain, truncate, rechain_then_edit_heads, rechain_then_delete_latest_checkpoint,
           rechain_then_roll_the_log_back, forged_append, forged_checkpoint]


def _setup() -> tuple[str, str, dict]:
    """A running experiment, checkpointed twice (after start, then after two more entries)."""
    from tests.support.factories import running_experiment

    eid = running_experiment()
    chain = ledger_store.experiment_chain(eid)
    assert checkpoints.create_checkpoint()
    first_log = db().collection("experimentLedger").document("_log").get().to_dict()
    _append(chain, 2, action="EXPERIMENT_NOTE")
    assert checkpoints.create_checkpoint()
    return eid, chain, {"first_log": first_log}


def _assert_every_verifier_says_damaged(client, eid: str, chain: str, index: int, kinds: set[str],
                                        tmp_path) -> None:
    one = client.get(f"/verify/{eid}", headers=VIEWER).get_json()
    assert (one["ok"], one["firstBadIndex"]) == (False, index), one
    assert one["damage"] in kinds, one
    whole = client.get("/verify", headers=VIEWER).get_json()
    assert whole["ok"] is False
    assert [(d["firstBadIndex"], d["damage"] in kinds) for d in whole["damaged"] if d["chainId"] == chain] == [
        (index, True)], whole
    report = client.get(f"/reports/{eid}", headers=VIEWER).get_json()
    assert (report["integrity"]["ok"], report["integrity"]["firstBadIndex"]) == (False, index)
    assert [t["seq"] for t in report["timeline"] if t["verified"]] == list(range(min(index, len(report["timeline"]))))
    forged = [a for a in report["approvals"] if a["actor"].get("uid") == FORGED_APPROVER]
    assert (kinds != REWRITTEN or forged) and not any(a["verified"] for a in forged)  # shown, never vouched for
    page = client.get(f"/reports/{eid}/html", headers=VIEWER).data.decode()
    assert "DAMAGED" in page and "VERIFIED" not in page
    keyring = tmp_path / "keys.json"
    keyring.write_text(json.dumps(client.get("/keys").get_json()))
    lines = client.get(f"/exports?experimentId={eid}", headers=VIEWER).data.decode().splitlines()
    header = json.loads(lines[0])
    assert header["verification"]["ok"] is False
    for doctored in (False, True):  # the file's own header changed to say all is well
        if doctored:
            header["verification"] = {"ok": True, "chains": 1, "damaged": []}
        path = tmp_path / f"export-{doctored}.jsonl"
        path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
        assert cli(["verify-export", "--export", str(path), "--keyring", str(keyring)]) == 1
    from functions.core.ledger import signing
    from functions.core.ledger.offline import verify_export

    offline = verify_export(path.read_text().splitlines(), signing.keyring_from_document(json.loads(
        keyring.read_text())))
    assert [(c["firstBadIndex"], c["damage"] in kinds) for c in offline["chains"] if c["chainId"] == chain] == [
        (index, True)] or offline["problems"], offline


@pytest.mark.parametrize("sweeps", [0, 2], ids=["at-once", "after-2-sweeps"])
@pytest.mark.parametrize("attack", ATTACKS, ids=lambda f: f.__name__)
def test_every_verifier_reports_the_attack(function_client, tmp_path, attack, sweeps):
    eid, chain, state = _setup()
    client = function_client("ledger")
    assert client.get(f"/verify/{eid}", headers=VIEWER).get_json()["ok"] is True
    index, kinds = attack(chain, state)
    taken = []
    for n in range(sweeps):  # routine work goes on: other chains grow, the sweep checkpoints
        _append(ledger_store.experiment_chain(f"other-{n}"), 1)
        taken.append(run_sweep(datetime.now(UTC) + timedelta(minutes=10 * (n + 1)))["checkpoint"])
    _assert_every_verifier_says_damaged(client, eid, chain, index, kinds, tmp_path)
    assert all(c and c.get("refused") is True for c in taken), taken  # nothing was signed over the attack
    if sweeps:
        health = client.get("/health", headers=VIEWER).get_json()
        assert health["status"] in ("REFUSING", "DAMAGED") and health["refusals"], health
