"""The ledger's signing key and keyring, from configuration.

`LEDGER_SIGNING_KEY` (Secret Manager in the cloud) is the current Ed25519 key; `LEDGER_KEYRING`
holds the public keys of retired ones, so checkpoints and entries signed before a rotation stay
verifiable. In the cloud (`K_SERVICE` set) a missing key stops the function at start: a key made
up per instance would sign checkpoints no other instance can verify. Locally a dev key file is
created once per checkout. The keyring never comes from the database: an insider with write
access must not be able to add a key.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from functions.config import settings
from functions.core.ledger import signing

_lock = threading.Lock()
_cache: dict[str, Any] = {}


class MissingSigningKey(RuntimeError):
    """Raised at start in the cloud when no signing key is configured."""


def in_cloud() -> bool:
    return bool(os.environ.get("K_SERVICE"))


def _load() -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    configured, key_file, ring_text = settings().ledger_signing_key, settings().ledger_key_file, \
        settings().ledger_keyring
    cache_key = (configured, key_file, ring_text, in_cloud())
    with _lock:
        if _cache.get("for") != cache_key:
            if configured.strip():
                key = signing.parse_private_key(configured)
            elif in_cloud():
                raise MissingSigningKey("LEDGER_SIGNING_KEY is not configured: refusing to start with a "
                                        "per-instance key (see docs/security.md, Keys)")
            else:
                key = signing.load_or_create_dev_key(key_file)
            ring = signing.keyring_of([*signing.split_pems(ring_text), key])
            _cache.update({"for": cache_key, "key": key, "ring": ring})
        return _cache["key"], _cache["ring"]


def signing_key() -> Ed25519PrivateKey:
    return _load()[0]


def keyring() -> dict[str, Any]:
    """key id -> public key: the current key and every retired one."""
    return dict(_load()[1])


def require_configured() -> None:
    """Called when the functions start: fail fast instead of at the first append."""
    _load()
