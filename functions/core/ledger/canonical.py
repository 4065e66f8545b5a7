"""RFC 8785 (JSON Canonicalization Scheme) bytes: the one serialisation that is hashed."""

from __future__ import annotations

from typing import Any

import rfc8785


def canonical_bytes(obj: Any) -> bytes:
    return rfc8785.dumps(obj)
