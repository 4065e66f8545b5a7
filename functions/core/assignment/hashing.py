"""Versioned, salted hashing of a unit into a uniform bucket in [0, 1).

v1 (frozen forever; any change is a new version):
    digest = SHA-256( UTF-8( "v1" + US + salt + US + unit_id ) ),  US = "\\x1f" (unit separator)
    bucket = int.from_bytes(digest[:8], "big") / 2**64
The separator cannot occur in salts or unit ids (both reject control characters), so no two
(salt, unit) pairs share an input. Test vectors: tests/data/assignment_vectors.json.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from functions.core.errors import ErrorCode, Unprocessable

SUPPORTED_VERSIONS = (1,)
_SCALE = float(2**64)
_SEP = "\x1f"


def _check(version: int) -> None:
    if version not in SUPPORTED_VERSIONS:
        raise Unprocessable(
            f"unknown hash version {version}",
            code=ErrorCode.UNKNOWN_HASH_VERSION, details={"supported": SUPPORTED_VERSIONS}
        )


def bucket(unit_id: str, salt: str, version: int = 1) -> float:
    _check(version)
    digest = hashlib.sha256(f"v1{_SEP}{salt}{_SEP}{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def buckets(unit_ids: Iterable[str], salt: str, version: int = 1) -> list[float]:
    """Batch form: same values as bucket(), with the per-call overhead hoisted out of the loop."""
    _check(version)
    sha, prefix, scale, frombytes = hashlib.sha256, f"v1{_SEP}{salt}{_SEP}", _SCALE, int.from_bytes
    return [frombytes(sha((prefix + u).encode()).digest()[:8], "big") / scale for u in unit_ids]


def bucket_array(unit_ids: Sequence[str], salt: str, version: int = 1) -> np.ndarray:
    """Batch form as a float64 array, identical values: one C-level join instead of a Python
    float per unit (the hot path's dominant cost after SHA-256 itself)."""
    _check(version)
    if not unit_ids:
        return np.zeros(0)
    sha, prefix = hashlib.sha256, f"v1{_SEP}{salt}{_SEP}"
    raw = b"".join([sha((prefix + u).encode()).digest()[:8] for u in unit_ids])
    return np.frombuffer(raw, dtype=">u8").astype(np.float64) / _SCALE
