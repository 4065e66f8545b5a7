"""The ledger on the emulators: tamper detection by kind and index, concurrency, checkpoints,
proofs verified offline, reports and exports."""

from __future__ import annotations

import json
import threading

import pytest

from functions.adapters import ledger_store
from functions.adapters import merkle_log as ledger_log
from functions.adapters.firestore import db, transactional
from functions.core.ledger.offline import verify_consistency_proof, verify_export, verify_inclusion_proof
from functions.services.ledger import checkpoints, proofs, verification
from localdev.tokens import bearer

VIEWER = bearer("auditor", ["viewer"])


def append(chain: str, n: int, action: str = "TEST") -> None:
    """n entries on `chain` through the service's own append (the ledger tests' one way to write)."""
    for i in range(n):
        @transactional
        def run(txn, i=i):
            head = ledger_store.read_head(txn, chain)
            ledger_store.append(txn, head, actor={"uid": "t", "role": "pm"}, action=action, subject={"i": i},
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
    return 10, "FORGED_ENTRY"  # linked correctly, but not signed by the ledger key


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


def _rewrite(chain, seq, change):
    """Rewrite entry `seq`'s canonical body with `change(body)` and store it rehashed, metadata intact."""
    from functions.core.ledger.canonical import canonical_bytes
    from functions.core.ledger.entry import entry_hash_from_canonical

    ref = entries_ref(chain).document(ledger_store.entry_id(seq))
    doc = ref.get().to_dict()
    canonical = canonical_bytes(change(json.loads(doc["canonical"])))
    ref.update({"canonical": canonical.decode(), "hash": entry_hash_from_canonical(canonical)})
    return doc


def tamper_modify_rehashed(chain):
    _rewrite(chain, 4, lambda b: {**b, "payload": {"i": 400}})
    return 4, "MODIFIED_ENTRY"


def tamper_body_prevhash(chain):
    """Stored prevHash right, the body's own prevHash field wrong; the right value is hidden in the
    payload so a substring check would be fooled."""
    doc = _rewrite(chain, 4, lambda b: {**b, "prevHash": "0" * 64, "payload": {"shadow": {"prevHash": b["prevHash"]}}})
    assert entries_ref(chain).document(ledger_store.entry_id(4)).get().get("prevHash") == doc["prevHash"]
    return 4, "MODIFIED_ENTRY"


def tamper_body_prevhash_at_head(chain):
    """The same forgery on the last entry, with the head document moved to match: only the signed
    checkpoint still knows the real last hash."""
    _rewrite(chain, 9, lambda b: {**b, "prevHash": "0" * 64, "payload": {"shadow": {"prevHash": b["prevHash"]}}})
    forged = entries_ref(chain).document(ledger_store.entry_id(9)).get().get("hash")
    ledger_store.chain_ref(chain).update({"headHash": forged})
    return 9, "MODIFIED_ENTRY"


def tamper_metadata_only(chain):
    """Only the stored index fields change (e.g. a KILL relabelled): verification does not read them,
    so readers must not either; the export shows what the hashed body says."""
    entries_ref(chain).document(ledger_store.entry_id(5)).update({"action": "RELABELLED", "timestamp": "1999"})
    return None, None


@pytest.mark.parametrize("tamper", [tamper_modify, tamper_modify_rehashed, tamper_body_prevhash,
                                    tamper_body_prevhash_at_head, tamper_delete, tamper_reorder, tamper_truncate,
                                    tamper_insert, tamper_genesis], ids=lambda f: f.__name__)
def test_tampering_is_named_with_its_index(emulators, tamper):
    chain = ledger_store.experiment_chain("tamper")
    append(chain, 10)
    checkpoints.create_checkpoint()
    assert verification.verify_chain_id(chain).ok
    index, kind = tamper(chain)
    verdict = verification.verify_chain_id(chain)
    assert (verdict.ok, verdict.damage, verdict.first_bad_index) == (False, kind, index)
    assert not verification.verify_all()["ok"]


def test_index_fields_are_not_what_exports_show(function_client):
    chain = ledger_store.experiment_chain("meta")
    append(chain, 8)
    checkpoints.create_checkpoint()
    tamper_metadata_only(chain)
    csv_text = function_client("ledger").get("/exports?experimentId=meta&format=csv", headers=VIEWER).data.decode()
    assert "RELABELLED" not in csv_text and "1999" not in csv_text and csv_text.count("\nexp-meta,") == 8


def test_a_deleted_chain_is_still_named_by_the_whole_ledger_verify(emulators):
    doomed, kept = ledger_store.experiment_chain("doomed"), ledger_store.experiment_chain("kept")
    append(doomed, 3)
    append(kept, 2)
    checkpoints.create_checkpoint()
    for seq in range(3):
        entries_ref(doomed).document(ledger_store.entry_id(seq)).delete()
    ledger_store.chain_ref(doomed).delete()
    report = verification.verify_all()
    assert not report["ok"]
    assert [(d["chainId"], d["damage"], d["firstBadIndex"]) for d in report["damaged"]] == [
        (doomed, "TRUNCATED_TAIL", 0)]


@pytest.mark.parametrize("field", ["signature", "treeSize"])
def test_bad_checkpoint_signature_is_detected_by_field(emulators, field):
    append(ledger_store.experiment_chain("sig2"), 3)
    made = checkpoints.create_checkpoint()
    if field == "signature":
        sig = made["signature"]
        forged = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
        ledger_log.checkpoint_ref(made["treeSize"]).update({"signature": forged})
    else:
        ledger_log.checkpoint_ref(made["treeSize"]).update({"treeSize": made["treeSize"] - 1})
    problems = verification.verify_all()["checkpointProblems"]
    assert problems[0]["damage"] == "BAD_SIGNATURE"
    assert {p["damage"] for p in problems} <= {"BAD_SIGNATURE", "HEADS_MISMATCH"}


def test_checkpoints_are_published_and_verify_with_only_the_public_key(topics):
    from functions.adapters import outbox
    from functions.core.ledger import signing

    sub = topics.subscribe("ledger_checkpoints")
    append(ledger_store.experiment_chain("pub"), 4)
    first = checkpoints.create_checkpoint()
    append(ledger_store.experiment_chain("pub"), 2)
    second = checkpoints.create_checkpoint()
    outbox.flush(ledger_log.log_ref())
    published = topics.drain(sub)
    assert [m["treeSize"] for m in published] == [first["treeSize"], second["treeSize"]]
    for message in published:
        assert signing.verify(message, message["signature"], signing.keyring_of([message["publicKey"]]))
    assert published[1]["previousSize"] == published[0]["treeSize"]
    cons = proofs.consistency(first["treeSize"], second["treeSize"])
    assert verify_consistency_proof(cons, signing.keyring_of([published[0]["publicKey"]]))[0]


def test_time_range_exports_verify_offline_and_bad_ranges_are_422(function_client):
    chain = ledger_store.experiment_chain("range")
    append(chain, 6)
    stamps = [json.loads(d["canonical"])["timestamp"] for d in ledger_store.entries(chain)]
    client = function_client("ledger")
    lines = client.get(f"/exports?since={stamps[2]}&until={stamps[4]}", headers=VIEWER).data.decode().splitlines()
    records = [json.loads(line) for line in lines[1:]]
    assert [(r["chainId"], r["seq"]) for r in records] == [(chain, 2), (chain, 3), (chain, 4)]
    checked = verify_export(lines)
    assert checked["ok"] and checked["chains"][0]["fromSeq"] == 2
    broken = [lines[0], lines[1], lines[3]]  # entry 3 left out of the file
    assert verify_export(broken)["chains"][0]["damage"] == "DELETED_ENTRY"
    for bad in ("since=yesterday", f"since={stamps[4]}&until={stamps[2]}"):
        resp = client.get(f"/exports?{bad}", headers=VIEWER)
        assert resp.status_code == 422, bad


def test_a_plan_changed_after_start_is_a_flagged_deviation(function_client):
    from functions.adapters.repositories.experiments import document as experiment_document
    from functions.services.experiments import repository
    from tests.support.factories import running_experiment

    eid = running_experiment()
    client = function_client("ledger")
    assert client.get(f"/reports/{eid}", headers=VIEWER).get_json()["preRegistration"]["deviations"] == []
    doc = repository.load(eid)
    experiment_document(eid).update({"guardrails": [{**doc["guardrails"][0], "absoluteMax": 0.5}]})  # behind our back
    report = client.get(f"/reports/{eid}", headers=VIEWER).get_json()
    assert len(report["preRegistration"]["deviations"]) == 1
    page = client.get(f"/reports/{eid}/html", headers=VIEWER).data.decode()
    assert "deviations:" in page and "analysis plan changed after start" in page


def test_bad_checkpoint_signature_is_detected(emulators):
    append(ledger_store.experiment_chain("sig"), 3)
    made = checkpoints.create_checkpoint()
    assert verification.verify_all()["ok"]
    ledger_log.checkpoint_ref(made["treeSize"]).update({"rootHash": "00" * 32})
    problems = verification.verify_all()["checkpointProblems"]
    assert [(p["treeSize"], p["damage"]) for p in problems] == [(made["treeSize"], "BAD_SIGNATURE")]


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

    public = ledger_log.keyring()
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
    resp = client.get(f"/exports?experimentId={eid}&format=csv", headers=VIEWER)
    csv_text = resp.data.decode()
    assert csv_text.startswith("chainId,seq,timestamp,action,actorUid,actorRole,reason,payload,")
    assert "EXPERIMENT_START" in csv_text and json.loads(resp.headers["X-Ledger-Verification"])["ok"] is True
    assert client.get(f"/verify/{eid}", headers=VIEWER).get_json()["ok"] is True
    assert client.post("/checkpoints", headers=VIEWER).status_code == 403
