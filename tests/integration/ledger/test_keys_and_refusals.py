"""Key rotation keeps old checkpoints verifiable through the keyring; a refused checkpoint
answers 409, goes out once on the alerts topic and shows in health."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from functions.adapters import ledger_store
from functions.adapters import merkle_log as ledger_log
from functions.config import reset_settings
from functions.core.ledger import signing
from functions.core.ledger.__main__ import main as cli
from functions.services.ledger import checkpoints, verification
from localdev.tokens import bearer
from tests.integration.ledger.test_offline_cli import _append

VIEWER = bearer("auditor", ["viewer"])
OPERATOR = bearer("olga", ["operator"])


def _seed(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.b64encode(raw).decode()


def test_after_a_rotation_old_checkpoints_verify_through_the_keyring(function_client, monkeypatch, tmp_path):
    chain = ledger_store.experiment_chain("rot")
    _append(chain, 3)
    old_id = checkpoints.create_checkpoint()["keyId"]
    old_pem = signing.public_pem(ledger_log.signing_key())
    new = Ed25519PrivateKey.generate()
    monkeypatch.setenv("LEDGER_SIGNING_KEY", _seed(new))
    monkeypatch.setenv("LEDGER_KEYRING", old_pem)
    reset_settings()
    try:
        _append(chain, 2)
        second = checkpoints.create_checkpoint()
        assert second["keyId"] == signing.key_id(new) != old_id and second["number"] == 2
        assert verification.verify_all()["ok"]
        client = function_client("ledger")
        keys = client.get("/keys").get_json()
        assert {(k["keyId"], k["status"]) for k in keys["keys"]} == {(old_id, "retired"),
                                                                      (signing.key_id(new), "current")}
        (tmp_path / "keys.json").write_text(json.dumps(keys))
        export = tmp_path / "export.jsonl"
        export.write_text(client.get("/exports?experimentId=rot", headers=VIEWER).data.decode())
        assert cli(["verify-export", "--export", str(export), "--keyring", str(tmp_path / "keys.json")]) == 0
        monkeypatch.setenv("LEDGER_KEYRING", "")  # the old key forgotten: its checkpoint no longer verifies
        reset_settings()
        problems = verification.verify_all()["checkpointProblems"]
        assert [(p["number"], p["damage"]) for p in problems] == [(1, "BAD_SIGNATURE")]
    finally:
        monkeypatch.undo()
        reset_settings()


def test_a_refused_checkpoint_is_409_alerted_once_and_shown_in_health(function_client, topics):
    sub = topics.subscribe("ledger_alerts")
    chain = ledger_store.experiment_chain("refused")
    _append(chain, 4)
    assert checkpoints.create_checkpoint()
    entries = ledger_store.chain_ref(chain).collection(ledger_store.ENTRIES)
    entries.document(ledger_store.entry_id(3)).delete()  # truncate a signed entry and rewind the head
    ledger_store.chain_ref(chain).update({"headSeq": 2, "headHash": entries.document(ledger_store.entry_id(2))
                                         .get().get("hash")})
    _append(ledger_store.experiment_chain("bystander"), 1)
    client = function_client("ledger")
    assert client.get("/health", headers=VIEWER).get_json()["status"] == "OK"
    for _ in range(2):
        resp = client.post("/checkpoints", headers=OPERATOR)
        body = resp.get_json()
        assert resp.status_code == 409 and body["error"]["code"] == "CHECKPOINT_REFUSED"
        assert [(p["chainId"], p["damage"]) for p in body["error"]["details"]["problems"]] == [
            (chain, "TRUNCATED_TAIL")]
    assert len(ledger_log.checkpoints()) == 1  # nothing was signed
    alerts = topics.drain(sub)
    assert len(alerts) == 1 and alerts[0]["kind"] == "CHECKPOINT_REFUSED"
    assert alerts[0]["problems"][0]["chainId"] == chain
    health = client.get("/health", headers=VIEWER).get_json()
    assert health["status"] == "REFUSING" and health["refusals"][0]["count"] == 2


def test_deleting_the_newest_checkpoint_alone_is_detected(emulators):
    """Deleted with the log state left as it was, or rewound (the leaves remain): every verifier
    says CHECKPOINT_MISSING. Rewound, the history itself is intact, so the next checkpoint signs
    the very same tree again (same size and root: a witness sees no fork)."""
    chain = ledger_store.experiment_chain("gone")
    _append(chain, 3)
    assert checkpoints.create_checkpoint()
    first_state = ledger_log.log_ref().get().to_dict()
    _append(chain, 2)
    newest = checkpoints.create_checkpoint()
    ledger_log.checkpoint_ref(newest["treeSize"]).delete()
    for rewind in (False, True):
        if rewind:
            ledger_log.log_ref().set(first_state)
        one = verification.verify_experiment("gone")
        assert (one["ok"], one["damage"]) == (False, "CHECKPOINT_MISSING"), one
        assert not verification.verify_all()["ok"]
        if not rewind:
            with pytest.raises(checkpoints.CheckpointRefused):
                checkpoints.create_checkpoint()
    again = checkpoints.create_checkpoint()
    assert (again["number"], again["treeSize"], again["rootHash"]) == (2, newest["treeSize"], newest["rootHash"])
    assert verification.verify_all()["ok"]


def test_a_sweep_reports_a_refused_checkpoint_as_a_failed_step_that_no_redelivery_can_mend(topics):
    from functions.services.sweep import run_sweep

    chain = ledger_store.experiment_chain("refused-in-sweep")
    _append(chain, 3)
    assert checkpoints.create_checkpoint()
    entries = ledger_store.chain_ref(chain).collection(ledger_store.ENTRIES)
    entries.document(ledger_store.entry_id(2)).delete()
    ledger_store.chain_ref(chain).update({"headSeq": 1, "headHash": entries.document(ledger_store.entry_id(1))
                                         .get().get("hash")})
    _append(ledger_store.experiment_chain("bystander-in-sweep"), 1)
    result = run_sweep()
    assert result["ok"] is False and result["steps"]["checkpoint"] == "FAILED"
    refused = [f for f in result["failures"] if f["step"] == "checkpoint"]
    assert [f["code"] for f in refused] == ["CHECKPOINT_REFUSED"] and "TRUNCATED_TAIL" in refused[0]["message"]
    assert [f for f in result["failures"] if f.get("retry", True)] == []  # the tick is not redelivered for it
    assert len(ledger_log.checkpoints()) == 1
