"""The id helper must reproduce the document ids already stored: every stable id is pinned here
against hashlib directly (the formula each module used before it called the helper), and the
published SHA-256 vector pins hashlib itself."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from functions.adapters import holdout_keys, idempotency, outbox
from functions.adapters.repositories import links
from functions.core.ids import new_id, random_hex, short_digest
from functions.core.ledger import signing
from functions.models.assign import ExposureRow
from functions.services.metrics.landing import exposure_event_id, link_event_id

TEXTS = ["", "unit-1", "événement/1", "a" * 1000, "exp-1__x\x00y"]


def test_sha256_known_answer() -> None:
    # FIPS 180-2 test vector: the helper is SHA-256 and nothing else
    assert short_digest("abc", 64) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert short_digest(b"abc", 16) == "ba7816bf8f01cfea"


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("length", [6, 16, 32, 40, 64])
def test_short_digest_is_truncated_sha256_hex(text: str, length: int) -> None:
    expected = hashlib.sha256(text.encode()).hexdigest()[:length]
    assert short_digest(text, length) == expected
    assert short_digest(text.encode(), length) == expected


@pytest.mark.parametrize("text", TEXTS)
def test_stored_ids_are_unchanged(text: str) -> None:
    sha = hashlib.sha256(text.encode()).hexdigest()
    assert holdout_keys.unit_key(text) == sha[:40]
    assert holdout_keys.spillover_event_key(text) == sha[:40]
    assert links.event_path(text)[1] == sha[:40]
    assert holdout_keys.assignment_id("exp-1", text) == f"exp-1__{sha[:32]}"
    assert idempotency.key_id(text) == sha[:40]
    assert outbox.message_id(text) == sha[:40]
    key = json.dumps([text, "hc-1"], separators=(",", ":"))
    assert link_event_id(text, "hc-1") == hashlib.sha256(key.encode()).hexdigest()[:32]


def test_exposure_row_id_is_unchanged() -> None:
    row = ExposureRow(unitId="u-1", experimentId="exp-1", variant="B", inHoldout=False, status="ASSIGNED")
    key = json.dumps(["exp-1", "u-1", "ASSIGNED", "B"], separators=(",", ":"))
    assert exposure_event_id(row) == hashlib.sha256(key.encode()).hexdigest()[:32]


def test_signing_key_id_is_unchanged() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert signing.key_id(key) == signing.key_id(key.public_key()) == hashlib.sha256(raw).hexdigest()[:16]


def test_fresh_ids_have_their_shape_and_differ() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", random_hex())
    assert re.fullmatch(r"[0-9a-f]{6}", random_hex(6))
    ids = {new_id("exp", 12) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"exp-[0-9a-f]{12}", i) for i in ids)
