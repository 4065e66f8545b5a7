"""The offline CLI over real exports, proofs and published checkpoints from the emulators: file
order is what is verified, a missing genesis or a header that says ok:false fails, an inclusion
proof for a rewritten entry fails, a witness detects a rolled-back and re-signed ledger, and bad
input gets a message and exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.adapters import ledger_store
from functions.adapters import merkle_log as ledger_log
from functions.core.ledger.__main__ import main as cli
from functions.services.ledger import checkpoints
from localdev.tokens import bearer
from tests.integration.ledger.test_insider_attacks import _rechain
from tests.integration.ledger.test_ledger_on_emulator import append as _append

VIEWER = bearer("auditor", ["viewer"])




@pytest.fixture
def ledger_files(function_client, tmp_path):
    """A checkpointed chain of 6 entries, its export and the keyring, as an auditor saves them."""
    chain = ledger_store.experiment_chain("cli")
    _append(chain, 6)
    assert checkpoints.create_checkpoint()
    client = function_client("ledger")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(client.get("/keys").get_json()))
    (tmp_path / "key.pem").write_text(client.get("/public-key").get_json()["publicKeyPem"])
    lines = client.get("/exports?experimentId=cli", headers=VIEWER).data.decode().splitlines()
    return client, chain, keys, lines


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


def _export(tmp_path: Path, lines: list[str], name: str = "export.jsonl") -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_an_intact_export_verifies_with_the_pinned_keyring(ledger_files, tmp_path, capsys):
    _, _, keys, lines = ledger_files
    code, out = _run(capsys, "verify-export", "--export", _export(tmp_path, lines), "--keyring", str(keys))
    assert code == 0 and json.loads(out)["ok"] is True


@pytest.mark.parametrize("first", [1, 2, 4])
def test_swapped_entries_fail_even_though_their_seqs_are_intact(ledger_files, tmp_path, capsys, first):
    _, _, _keys, lines = ledger_files
    swapped = [*lines[:1 + first], lines[2 + first], lines[1 + first], *lines[3 + first:]]
    code, out = _run(capsys, "verify-export", "--export", _export(tmp_path, swapped))
    chain = json.loads(out)["chains"][0]
    assert (code, chain["firstBadIndex"], chain["damage"]) == (1, first, "REORDERED_ENTRIES")


def test_a_missing_genesis_fails(ledger_files, tmp_path, capsys):
    _, _, _keys, lines = ledger_files
    code, out = _run(capsys, "verify-export", "--export", _export(tmp_path, [lines[0], *lines[2:]]))
    chain = json.loads(out)["chains"][0]
    assert (code, chain["firstBadIndex"], chain["damage"]) == (1, 0, "MISSING_GENESIS")


def test_a_header_that_says_not_ok_fails(ledger_files, tmp_path, capsys):
    _, _, _keys, lines = ledger_files
    header = json.loads(lines[0])
    header["verification"]["ok"] = False
    code, out = _run(capsys, "verify-export", "--export", _export(tmp_path, [json.dumps(header), *lines[1:]]))
    assert code == 1 and json.loads(out)["problems"][0]["damage"] == "SERVER_REPORTED_DAMAGE"


def test_a_rechain_from_seq_2_is_reported_at_index_2(ledger_files, tmp_path, capsys):
    client, chain, _keys, _ = ledger_files
    _rechain(chain, 2)
    lines = client.get("/exports?experimentId=cli", headers=VIEWER).data.decode().splitlines()
    header = json.loads(lines[0])
    header["verification"] = {"ok": True}  # the file's header doctored too
    code, out = _run(capsys, "verify-export", "--export", _export(tmp_path, [json.dumps(header), *lines[1:]]))
    chain_verdict = json.loads(out)["chains"][0]
    assert (code, chain_verdict["firstBadIndex"], chain_verdict["damage"]) == (1, 2, "REWRITTEN_CHAIN")


def test_inclusion_of_a_rewritten_entry_fails(ledger_files, tmp_path, capsys):
    client, chain, _keys, _ = ledger_files
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(client.get(f"/proofs/inclusion?chainId={chain}&seq=3", headers=VIEWER)
                                     .get_json()))
    pem = str(tmp_path / "key.pem")
    assert _run(capsys, "verify-inclusion", "--proof", str(proof_file), "--public-key", pem)[0] == 0
    _rechain(chain, 2)  # the insider rewrites; the leaf log still holds the signed hash
    proof_file.write_text(json.dumps(client.get(f"/proofs/inclusion?chainId={chain}&seq=3", headers=VIEWER)
                                     .get_json()))
    code, out = _run(capsys, "verify-inclusion", "--proof", str(proof_file), "--public-key", pem)
    assert code == 1 and "ENTRY_MISMATCH" in out
    proof = json.loads(proof_file.read_text())
    proof["entryHash"] = proof["entry"]["hash"]  # ...and claims the rewritten hash is the leaf
    proof_file.write_text(json.dumps(proof))
    code, out = _run(capsys, "verify-inclusion", "--proof", str(proof_file), "--public-key", pem)
    assert code == 1 and "INCLUSION_FAILED" in out


def test_bad_input_gets_a_message_and_exit_2(ledger_files, tmp_path, capsys):
    client, _, keys, lines = ledger_files
    pem = str(tmp_path / "key.pem")
    error = client.get("/proofs/inclusion?chainId=nope&seq=0", headers=VIEWER)
    assert error.status_code == 404
    saved = tmp_path / "error.json"
    saved.write_text(error.data.decode())
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\xff\xfe\x00garbage{")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    array = tmp_path / "array.json"
    array.write_text("[1, 2]")
    cases = [
        ("verify-inclusion", "--proof", str(saved), "--public-key", pem),
        ("verify-consistency", "--proof", str(saved), "--public-key", pem),
        ("verify-inclusion", "--proof", str(garbage), "--public-key", pem),
        ("verify-inclusion", "--proof", str(array), "--public-key", pem),
        ("verify-inclusion", "--proof", str(tmp_path / "missing.json"), "--public-key", pem),
        ("verify-inclusion", "--proof", str(array), "--keyring", str(garbage)),
        ("verify-export", "--export", str(saved)),
        ("verify-export", "--export", str(garbage)),
        ("verify-export", "--export", str(empty)),
        ("verify-export", "--export", _export(tmp_path, [lines[0], "not json"], "broken.jsonl")),
        ("verify-export", "--export", _export(tmp_path, [lines[0], "[]"], "array.jsonl")),
        ("verify-witness", "--dir", str(tmp_path / "nowhere"), "--keyring", str(keys)),
        ("verify-witness", "--dir", str(tmp_path), "--keyring", str(keys)),  # holds error.json
    ]
    for argv in cases:
        code, out = _run(capsys, *argv)
        assert code == 2 and out.startswith("ERROR: "), (argv, out)


def _published(topics, sub, expect: int) -> list[dict]:
    from functions.adapters import outbox

    outbox.flush(ledger_log.log_ref())
    return topics.pull(sub, expect=expect)


def test_a_witness_detects_a_rolled_back_and_resigned_ledger(topics, function_client, tmp_path, capsys):
    """Rolling the whole ledger back (newest checkpoint, its leaves, the log state and the chain's
    tail) and letting the service sign a different history is invisible inside the database; the
    witness, which kept the published checkpoints, sees the fork."""
    sub = topics.subscribe("ledger_checkpoints")
    chain = ledger_store.experiment_chain("w")
    _append(chain, 3)
    assert checkpoints.create_checkpoint()
    saved_log = ledger_log.log_ref().get().to_dict()
    _append(chain, 2)
    assert checkpoints.create_checkpoint()
    witness = tmp_path / "witness"
    witness.mkdir()
    for message in _published(topics, sub, 2):
        (witness / f"{message['number']:08d}-{message['treeSize']}.json").write_text(json.dumps(message))
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(function_client("ledger").get("/keys").get_json()))
    code, out = _run(capsys, "verify-witness", "--dir", str(witness), "--keyring", str(keys))
    assert code == 0 and json.loads(out)["verified"] == 2

    # the insider rolls everything back to after the first checkpoint and drops two signed entries
    for leaf in ledger_log.log_ref().collection(ledger_log.LEAVES).stream():
        if int(leaf.id) >= saved_log["size"]:
            leaf.reference.delete()
    ledger_log.checkpoint_ref(5).delete()
    ledger_log.log_ref().set(saved_log)
    for seq in (3, 4):
        ledger_store.chain_ref(chain).collection(ledger_store.ENTRIES).document(ledger_store.entry_id(seq)).delete()
    head = ledger_store.chain_ref(chain).collection(ledger_store.ENTRIES).document(ledger_store.entry_id(2)).get()
    ledger_store.chain_ref(chain).update({"headSeq": 2, "headHash": head.get("hash")})
    _append(ledger_store.experiment_chain("w2"), 1)  # business as usual
    assert checkpoints.create_checkpoint()["number"] == 2
    for message in _published(topics, sub, 1):
        (witness / f"{message['number']:08d}-{message['treeSize']}.json").write_text(json.dumps(message))
    code, out = _run(capsys, "verify-witness", "--dir", str(witness), "--keyring", str(keys))
    result = json.loads(out)
    assert code == 1 and {p["damage"] for p in result["problems"]} >= {"FORK"}, result
