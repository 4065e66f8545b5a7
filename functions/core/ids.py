"""Identifiers: the one way to turn text into a short stable id, and to make a fresh random one.

Stable ids are stored document ids (idempotency keys, outbox messages, exposure rows, unit
nodes), so `short_digest` must never change its output: it is the SHA-256 hex digest of the
UTF-8 text, truncated. Tests pin it against hashlib.
"""

from __future__ import annotations

import hashlib
import uuid


def short_digest(text: str | bytes, length: int) -> str:
    """The first `length` hex characters of SHA-256(text); str is encoded as UTF-8."""
    raw = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(raw).hexdigest()[:length]


def random_hex(length: int = 32) -> str:
    """`length` (at most 32) random hex characters from a UUID4."""
    return uuid.uuid4().hex[:length]


def new_id(prefix: str, length: int) -> str:
    """A fresh id `{prefix}-{length random hex}`, e.g. `exp-3f2a…` or `hc-…`."""
    return f"{prefix}-{random_hex(length)}"
