"""firestore.rules as enforced by the Firestore emulator over its REST API, for several
identities (unsigned ID tokens carry the claims) against every collection."""

from __future__ import annotations

import json

import pytest
import requests

from functions.adapters.firestore import COLLECTIONS, HOLDOUT_ASSIGNMENTS, db
from localdev.tokens import mint
from tests.conftest import ROOT

STAFF_READABLE = {"offerExperiments", "holdoutCohorts", "experimentAnalyses", "rolloutPlans", "experimentLedger"}
IDENTITIES = {
    "anonymous": None,
    "user_a": ("user-a", []),
    "user_b": ("user-b", []),
    "viewer": ("viewer-1", ["viewer"]),
    "pm": ("pm-1", ["pm"]),
    "admin": ("admin-1", ["admin"]),
}


def _headers(identity: str, project: str) -> dict[str, str]:
    spec = IDENTITIES[identity]
    if spec is None:
        return {}
    uid, roles = spec
    return {"Authorization": f"Bearer {mint(uid, roles, project=project)}"}


def _doc_url(emulators, path: str) -> str:
    return (
        f"http://{emulators.firestore_host}/v1/projects/{emulators.project_id}/databases/(default)/documents/{path}"
    )


@pytest.fixture
def seeded(emulators):
    for collection in COLLECTIONS:
        db().collection(collection).document("doc1").set({"unitId": "user-a", "x": 1})
    db().collection(HOLDOUT_ASSIGNMENTS).document("doc-b").set({"unitId": "user-b", "x": 1})
    db().collection("experimentLedger").document("doc1").collection("entries").document("000000000000").set({"x": 1})
    return emulators


def _expected_read(identity: str, collection: str, owner: str = "user-a") -> bool:
    if collection == HOLDOUT_ASSIGNMENTS:
        return IDENTITIES[identity] is not None and IDENTITIES[identity][0] == owner
    return identity in {"viewer", "pm", "admin"} and collection in STAFF_READABLE


@pytest.mark.parametrize("identity", list(IDENTITIES))
def test_reads_follow_roles_and_ownership(seeded, identity):
    outcomes = {}
    for collection in COLLECTIONS:
        resp = requests.get(_doc_url(seeded, f"{collection}/doc1"), headers=_headers(identity, seeded.project_id))
        outcomes[collection] = resp.status_code
    expected = {c: (200 if _expected_read(identity, c) else 403) for c in COLLECTIONS}
    assert outcomes == expected
    headers = _headers(identity, seeded.project_id)
    other = requests.get(_doc_url(seeded, f"{HOLDOUT_ASSIGNMENTS}/doc-b"), headers=headers)
    assert other.status_code == (200 if _expected_read(identity, HOLDOUT_ASSIGNMENTS, "user-b") else 403)


@pytest.mark.parametrize("identity", list(IDENTITIES))
def test_nobody_writes_or_deletes_any_collection_from_a_client(seeded, identity):
    headers = _headers(identity, seeded.project_id)
    body = {"fields": {"x": {"integerValue": "2"}}}
    for collection in COLLECTIONS:
        update = requests.patch(_doc_url(seeded, f"{collection}/doc1"), json=body, headers=headers)
        create = requests.patch(_doc_url(seeded, f"{collection}/new-doc"), json=body, headers=headers)
        delete = requests.delete(_doc_url(seeded, f"{collection}/doc1"), headers=headers)
        assert (update.status_code, create.status_code, delete.status_code) == (403, 403, 403), collection
    entry = requests.delete(_doc_url(seeded, "experimentLedger/doc1/entries/000000000000"), headers=headers)
    assert entry.status_code == 403
    # and nothing changed
    assert db().collection("offerExperiments").document("doc1").get().to_dict()["x"] == 1
    entries = db().collection("experimentLedger").document("doc1").collection("entries")
    assert entries.document("000000000000").get().exists


def test_every_allow_rule_is_exercised_and_the_coverage_report_is_kept(seeded):
    """The emulator's rule coverage report is saved as a test artifact; every conditional `allow`
    line must have been evaluated, so no rule escapes the identity matrix above."""
    for identity in IDENTITIES:
        headers = _headers(identity, seeded.project_id)
        for collection in COLLECTIONS:
            requests.get(_doc_url(seeded, f"{collection}/doc1"), headers=headers)
        requests.get(_doc_url(seeded, "experimentLedger/doc1/entries/000000000000"), headers=headers)
    base = f"http://{seeded.firestore_host}/emulator/v1/projects/{seeded.project_id}:ruleCoverage"
    report = requests.get(base, timeout=10).json()
    html = requests.get(base + ".html", timeout=10)
    out = ROOT / "artifacts"
    out.mkdir(exist_ok=True)
    (out / "firestore-rules-coverage.html").write_text(html.text)
    (out / "firestore-rules-coverage.json").write_text(json.dumps(report, indent=1))
    rules_text = (ROOT / "firestore.rules").read_text()
    assert report["rules"]["files"][0]["content"] == rules_text
    evaluated: set[int] = set()
    stack = list(report["report"])
    while stack:
        node = stack.pop()
        if any(v.get("count", 0) > 0 for v in node.get("values", [])):
            evaluated.add(node["sourcePosition"]["line"])
        stack.extend(node.get("children", []))
    # `if false` is a constant the emulator does not report; every condition that can vary is.
    allow_lines = {n for n, line in enumerate(rules_text.splitlines(), 1)
                   if line.strip().startswith("allow") and not line.rstrip().endswith("if false;")}
    assert allow_lines and allow_lines <= evaluated, sorted(allow_lines - evaluated)
