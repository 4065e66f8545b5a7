"""Ed25519 signatures over checkpoints and over each entry's hash, verified against a keyring.

The private key comes from configuration (Secret Manager in the cloud; see
`functions.adapters.ledger_keys`). Verifying needs only public keys: the keyring maps each key id
to a public key, so checkpoints and entries signed before a rotation stay verifiable. A keyring
is always supplied by the verifier (configuration, a pinned file), never read from the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from functions.core.ids import short_digest
from functions.core.ledger.canonical import canonical_bytes

CHECKPOINT_FORMAT = "offers-ledger-checkpoint/2"
# Everything a verifier relies on: the tree, its link to the previous checkpoint, and a digest of
# every chain's signed head (`headsRoot`), so the heads map stored beside it cannot be edited.
SIGNED_FIELDS = ("format", "number", "treeSize", "rootHash", "at", "previousSize", "previousRoot", "headsRoot",
                 "keyId")
ENTRY_DOMAIN = b"offers-ledger-entry/v1\x00"
Keyring = Mapping[str, Ed25519PublicKey]


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """A base64 raw 32-byte seed or a PEM."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the ledger signing key is not an Ed25519 key")
        return key
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))


def load_or_create_dev_key(path: str | Path) -> Ed25519PrivateKey:
    """Local development only: one key per checkout, created once."""
    path = Path(path)
    if path.exists():
        return parse_private_key(path.read_text())
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
    return short_digest(raw, 16)


def load_public_pem(text: str) -> Ed25519PublicKey:
    try:
        public = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return public


def split_pems(text: str) -> list[str]:
    """Every PEM public key block in a text (a keyring file or variable may hold several)."""
    marker = "-----END PUBLIC KEY-----"
    return [part.strip() + "\n" + marker + "\n" for part in text.split(marker) if "-----BEGIN" in part]


def keyring_of(keys: Iterable[Ed25519PublicKey | Ed25519PrivateKey | str]) -> dict[str, Ed25519PublicKey]:
    ring: dict[str, Ed25519PublicKey] = {}
    for key in keys:
        if isinstance(key, str):
            public = load_public_pem(key)
        elif isinstance(key, Ed25519PrivateKey):
            public = key.public_key()
        else:
            public = key
        ring[key_id(public)] = public
    return ring


def keyring_document(ring: Keyring, current: str | None = None) -> dict[str, Any]:
    """The published form (`GET /ledger/keys`, export header)."""
    return {"current": current, "keys": [{"keyId": kid, "publicKeyPem": public_pem(pub),
                                          "status": "current" if kid == current else "retired"}
                                         for kid, pub in sorted(ring.items())]}


def keyring_from_document(doc: Any) -> dict[str, Ed25519PublicKey]:
    """Parse a published keyring (or a list of PEMs); a key id that does not match its key is refused."""
    keys = doc.get("keys") if isinstance(doc, Mapping) else doc
    if not isinstance(keys, list) or not keys:
        raise ValueError("a keyring is {\"keys\": [{\"keyId\", \"publicKeyPem\"}, ...]}")
    ring: dict[str, Ed25519PublicKey] = {}
    for item in keys:
        pem = item.get("publicKeyPem") if isinstance(item, Mapping) else item
        if not isinstance(pem, str):
            raise ValueError("a keyring entry has no publicKeyPem")
        public = load_public_pem(pem)
        if isinstance(item, Mapping) and item.get("keyId") not in (None, key_id(public)):
            raise ValueError(f"keyring entry {item.get('keyId')!r} does not match its key")
        ring[key_id(public)] = public
    return ring


def heads_root(chain_heads: Mapping[str, Any]) -> str:
    """Digest of every chain's signed head {chainId: [seq, hash]}."""
    normal = {str(c): [int(h[0]), str(h[1])] for c, h in chain_heads.items()}
    return hashlib.sha256(b"offers-ledger-heads/v1\x00" + canonical_bytes(normal)).hexdigest()


def signed_bytes(checkpoint: Mapping[str, Any]) -> bytes:
    return canonical_bytes({k: checkpoint[k] for k in SIGNED_FIELDS})


def sign(checkpoint: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.sign(signed_bytes(checkpoint))).decode()


def _verify_raw(public: Ed25519PublicKey, signature: Any, message: bytes) -> bool:
    try:
        public.verify(base64.b64decode(str(signature), validate=True), message)
        return True
    except (InvalidSignature, ValueError, binascii.Error):
        return False


def verify(checkpoint: Mapping[str, Any], signature: Any, keyring: Keyring) -> bool:
    """The signature over the signed fields, by the key the checkpoint names (which must be in
    the keyring: a checkpoint cannot bring its own key)."""
    public = keyring.get(str(checkpoint.get("keyId")))
    if public is None or checkpoint.get("format") != CHECKPOINT_FORMAT:
        return False
    try:
        message = signed_bytes(checkpoint)
    except (KeyError, TypeError, ValueError):
        return False
    return _verify_raw(public, signature, message)


def sign_entry(entry_hash: str, key: Ed25519PrivateKey) -> dict[str, str]:
    """The fields an entry document carries beside its hash: who appended it, provably."""
    return {"signature": base64.b64encode(key.sign(ENTRY_DOMAIN + bytes.fromhex(entry_hash))).decode(),
            "keyId": key_id(key)}


def verify_entry(doc: Mapping[str, Any], keyring: Keyring) -> bool:
    """The entry's stored hash was signed by a key of the keyring (the caller checks the hash
    against the canonical body)."""
    public = keyring.get(str(doc.get("keyId")))
    if public is None:
        return False
    try:
        digest = bytes.fromhex(str(doc.get("hash")))
    except ValueError:
        return False
    return len(digest) == 32 and _verify_raw(public, doc.get("signature"), ENTRY_DOMAIN + digest)
