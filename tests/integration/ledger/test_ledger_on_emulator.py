"""The ledger on the emulators: tamper detection by kind and index, concurrency, checkpoints,
proofs verified offline, reports and exports."""

from __future__ import annotations

import json
import threading

import pytest

from functions.adapters import ledger_store
from functions.adapters.firestore import db, transactional
from functions.core.ledger.offline import verify_consistency_proof, verify_export, verify_inclusion_proof
from functions.services.ledger import checkpoints, proofs, verification
from functions.services.ledger import log as ledger_log
from localdev.tokens import bearer

VIEWER = bearer("auditor", ["viewer"])


def append(chain: str, n: int) -> None:
    for i in range(n):
        @transactional
        def run(txn, i=i):
            head = ledger_store.read_head(txn, chain)
            ledger_store.append(txn, head, actor={"uid": "t", "role": "pm"}, action="TEST", subject={"i": i},
                                payload={"i": i})

        run(db().transaction())


def entries_ref(chain):
    return ledger_store.chain_ref(chain).collection(ledger_store.ENTRIES)


def tamper_modify(chain):
    ref = entries_ref(chain).document(ledger_store.entry_id(4))
    doc = ref.get().to_dict()
    ref.update({"canonical": doc["canonical"].replace('"i":4', '"i":40')})
    return 4, "MODIFIED_ENTRY"


def tamper_delete(chain):
    entries_ref(chain).document(ledger_store.entry_id(3)).delete()
    return 3, "DELETED_ENTRY"


def tamper_reorder(chain):
    a, b = entries_ref(chain).document(ledger_store.entry_id(2)), entries_ref(chain).document(ledger_store.entry_id(3))
    da, dbb = a.get().to_dict(), b.get().to_dict()
    a.set(dbb)
    b.set(da)
    return 2, "REORDERED_ENTRIES"


def tamper_truncate(chain):
    for seq in (7, 8, 9):
        entries_ref(chain).document(ledger_store.entry_id(seq)).delete()
    ledger_store.chain_ref(chain).update({"headSeq": 6, "headHash": entries_ref(chain).document(
        ledger_store.entry_id(6)).get().get("hash")})  # the forger also rewinds the head
    return 7, "TRUNCATED_TAIL"


def tamper_insert(chain):
    from functions.core.ledger.entry import seal_entry

    docs = ledger_store.entries(chain)
    forged = seal_entry(chain_id=chain, seq=10, prev_hash=docs[-1]["hash"], timestamp="2030-01-01T00:00:00Z",
                        actor={"uid": "mallory"}, action="FORGED", subject={}, payload={}).to_document()
    entries_ref(chain).document(ledger_store.entry_id(10)).set(forged)  # head document not moved
    return 10, "INSERTED_ENTRY"


def tamper_genesis(chain):
    from functions.core.ledger.entry import seal_entry

    docs = ledger_store.entries(chain)
    prev = "f" * 64
    for d in docs:  # re-seal the whole chain from a different genesis
        sealed = seal_entry(chain_id=chain, seq=d["seq"], prev_hash=prev, timestamp=d["timestamp"], actor=d["actor"],
                            action=d["action"], subject=d["subject"], payload={"i": d["seq"]})
        entries_ref(chain).document(ledger_store.entry_id(d["seq"])).set(sealed.to_document())
        prev = sealed.hash
    ledger_store.chain_ref(chain).update({"headHash": prev})
    return 0, "REPLACED_GENESIS"


@pytest.mark.parametrize("tamper", [tamper_modify, tamper_delete, tamper_reorder, tamper_truncate, tamper_insert,
                                    tamper_genesis], ids=lambda f: f.__name__)
def test_tampering_is_named_with_its_index(emulators, tamper):
    chain = ledger_store.experiment_chain("tamper")
    append(chain, 10)
    checkpoints.create_checkpoint()
    assert verification.verify_chain_id(chain).ok
    index, kind = tamper(chain)
    verdict = verification.verify_chain_id(chain)
    assert (verdict.ok, verdict.damage, verdict.first_bad_index) == (False, kind, index)


def test_bad_checkpoint_signature_is_detected(emulators):
    append(ledger_store.experiment_chain("sig"), 3)
    made = checkpoints.create_checkpoint()
    assert verification.verify_all()["ok"]
    ledger_log.checkpoint_ref(made["treeSize"]).update({"rootHash": "00" * 32})
    problems = verification.verify_all()["checkpointProblems"]
    assert problems == [{"treeSize": made["treeSize"], "damage": "BAD_SIGNATURE"}]


def test_twenty_concurrent_appends_leave_a_gap_free_valid_chain(emulators):
    """Every append that commits lands exactly once, in order, linked; one that exhausts its
    retries under contention commits nothing (never a gap or a fork)."""
    chain = ledger_store.experiment_chain("busy")
    committed: list[int] = []

    def one(i: int) -> None:
        @transactional
        def run(txn):
            head = ledger_store.read_head(txn, chain)
            ledger_store.append(txn, head, actor={"uid": f"t{i}", "role": "pm"}, action="TEST", subject={"i": i},
                                payload={"i": i})

        try:
            run(db().transaction(max_attempts=8))
            committed.append(i)
        except ValueError:  # retries exhausted: the caller gets an error, the chain is untouched
            pass

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    docs = ledger_store.entries(chain)
    assert [d["seq"] for d in docs] == list(range(len(committed)))
    assert sorted(d["subject"]["i"] for d in docs) == sorted(committed)
    assert committed  # the emulator serialises with lock timeouts: measured 2-4 of 20 commit here
    assert verification.verify_chain_id(chain).ok


def test_checkpoints_extend_each_other_and_proofs_verify_offline(emulators):
    append(ledger_store.experiment_chain("a"), 5)
    first = checkpoints.create_checkpoint()
    assert checkpoints.create_checkpoint() is None  # nothing new
    append(ledger_store.experiment_chain("b"), 4)
    append(ledger_store.experiment_chain("a"), 2)
    second = checkpoints.create_checkpoint()
    assert (first["treeSize"], second["treeSize"], second["previousSize"]) == (5, 11, 5)
    from functions.core.ledger import signing

    public = signing.public_pem(ledger_log.signing_key())
    proof = proofs.inclusion(ledger_store.experiment_chain("b"), 2)
    assert verify_inclusion_proof(json.loads(json.dumps(proof)), public)[0]
    bad = dict(proof, index=proof["index"] + 1)
    assert not verify_inclusion_proof(bad, public)[0]
    cons = proofs.consistency(5, 11)
    assert verify_consistency_proof(cons, public)[0]
    assert not verify_consistency_proof(dict(cons, path=cons["path"][:-1]), public)[0]
    assert verification.verify_all()["ok"]


def test_report_and_exports_through_http(function_client):
    from tests.support.factories import running_experiment

    eid = running_experiment()
    checkpoints.create_checkpoint()
    client = function_client("ledger")
    report = client.get(f"/reports/{eid}", headers=VIEWER).get_json()
    assert report["integrity"]["ok"] and report["preRegistration"]["planHash"]
    assert [t["action"] for t in report["timeline"]][-1] == "EXPERIMENT_START"
    page = client.get(f"/reports/{eid}/html", headers=VIEWER)
    assert page.status_code == 200 and b"<h1>Audit report" in page.data and b"VERIFIED" in page.data
    lines = client.get(f"/exports?experimentId={eid}", headers=VIEWER).data.decode().splitlines()
    assert json.loads(lines[0])["verification"]["ok"] is True
    assert verify_export(lines)["ok"]
    csv_text = client.get(f"/exports?experimentId={eid}&format=csv", headers=VIEWER).data.decode()
    assert csv_text.startswith("# ") and "EXPERIMENT_START" in csv_text
    assert client.get(f"/verify/{eid}", headers=VIEWER).get_json()["ok"] is True
    assert client.post("/checkpoints", headers=VIEWER).status_code == 403
