"""Ed25519 signatures over checkpoints. The private key comes from configuration (Secret
Manager in the cloud); locally a dev key is generated once. Verifying needs only the public key."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from functions.core.ledger.canonical import canonical_bytes

SIGNED_FIELDS = ("treeSize", "rootHash", "at", "previousSize", "keyId")


def load_private_key(configured: str, key_file: str | Path) -> Ed25519PrivateKey:
    """A base64 raw 32-byte seed or a PEM in `configured`; else the dev key file (created once)."""
    if configured.strip():
        text = configured.strip()
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("LEDGER_SIGNING_KEY is not an Ed25519 key")
            return key
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text))
    path = Path(key_file)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(checkpoint: Mapping[str, Any]) -> bytes:
    return canonical_bytes({k: checkpoint[k] for k in SIGNED_FIELDS})


def sign(checkpoint: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.sign(signed_bytes(checkpoint))).decode()


def verify(checkpoint: Mapping[str, Any], signature: str, public_key_pem: str) -> bool:
    public = serialization.load_pem_public_key(public_key_pem.encode())
    if not isinstance(public, Ed25519PublicKey):
        return False
    try:
        public.verify(base64.b64decode(signature), signed_bytes(checkpoint))
        return True
    except (InvalidSignature, ValueError):
        return False
