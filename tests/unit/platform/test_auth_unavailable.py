"""Production token verification when its dependencies are missing: a coded 503 the caller can
retry, never a 500 (the token may be perfectly good; we just cannot check it yet)."""

from __future__ import annotations

import json
import time
import uuid

import firebase_admin._token_gen as token_gen
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from functions_framework import create_app
from google.auth import crypt, jwt

from functions.config import reset_settings
from tests.conftest import ROOT

UNREACHABLE = "http://127.0.0.1:9/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _rs256_token(project: str) -> str:
    pem = _pem()
    now = int(time.time())
    claims = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "sub": "u-1",
              "iat": now, "auth_time": now, "exp": now + 3600, "roles": ["pm"]}
    return jwt.encode(crypt.RSASigner.from_string(pem, key_id="kid-1"), claims).decode()


def _service_account(path, project: str) -> str:
    """A well-formed service-account file (its key signs nothing real; nothing is fetched with it)."""
    path.write_text(json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": "k1", "private_key": _pem(),
        "client_email": f"functions@{project}.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token"}))
    return str(path)


@pytest.fixture
def production_client(monkeypatch, tmp_path):
    """Signed-token mode (no auth emulator) for a fresh project with credentials, so a new verifier
    is built with a certificate URL nobody answers."""
    project = f"prod-{uuid.uuid4().hex[:8]}"
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", _service_account(tmp_path / "sa.json", project))
    monkeypatch.setattr(token_gen, "ID_TOKEN_CERT_URI", UNREACHABLE)
    reset_settings()
    yield project, create_app(target="echo", source=str(ROOT / "tests/support/echo_http.py")).test_client()
    reset_settings()


def test_unreachable_certificates_are_a_coded_503(production_client):
    project, client = production_client
    token = _rs256_token(project)
    resp = client.post("/widgets", json={"name": "a", "size": 1}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 503, resp.get_data(as_text=True)[:300]
    error = resp.get_json()["error"]
    assert error["code"] == "AUTH_UNAVAILABLE"
    assert "CertificateFetchError" in error["details"]["reason"]
    assert resp.headers["Retry-After"]


def test_unsigned_token_in_production_is_still_a_401(production_client):
    """The 503 is only for a dependency we cannot reach; a token we can judge is judged."""
    _, client = production_client
    from localdev.tokens import bearer

    resp = client.post("/widgets", json={"name": "a", "size": 1}, headers=bearer("u-1", ["pm"]))
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "INVALID_TOKEN"


def test_missing_credentials_are_a_coded_503(production_client, monkeypatch, tmp_path):
    project, client = production_client
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    token = _rs256_token(project)
    resp = client.post("/widgets", json={"name": "a", "size": 1}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 503, resp.get_data(as_text=True)[:300]
    error = resp.get_json()["error"]
    assert error["code"] == "AUTH_UNAVAILABLE"
    assert "DefaultCredentialsError" in error["details"]["reason"]


def test_emulator_mode_inside_a_deployed_service_is_a_coded_503(monkeypatch):
    from localdev.tokens import bearer

    monkeypatch.setenv("K_SERVICE", "experiments")
    monkeypatch.delenv("ALLOW_UNSIGNED_TOKENS", raising=False)
    client = create_app(target="echo", source=str(ROOT / "tests/support/echo_http.py")).test_client()
    resp = client.post("/widgets", json={"name": "a", "size": 1}, headers=bearer("u-1", ["pm"]))
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "AUTH_MISCONFIGURED"
