"""Regenerate tests/data/assignment_vectors.json from the documented v1 formula, computed here
independently of functions.core (plain hashlib), so the vectors pin the spec, not the code."""

import hashlib
import json
from pathlib import Path

CASES = [
    ("user-1", "salt-a"), ("user-2", "salt-a"), ("user-1", "salt-b"), ("", "salt-a"), ("a", ""),
    ("ünïcødé-用户", "holdout-2026"), ("wallet:9f8e", "global-holdout"), ("device/abc", "exp-42"),
    ("x" * 256, "long"), ("12345", "12345"),
]


def v1(unit: str, salt: str) -> float:
    digest = hashlib.sha256(("v1\x1f" + salt + "\x1f" + unit).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


if __name__ == "__main__":
    vectors = [{"unitId": u, "salt": s, "version": 1, "bucket": v1(u, s),
                "hex64": hashlib.sha256(("v1\x1f" + s + "\x1f" + u).encode()).digest()[:8].hex()} for u, s in CASES]
    Path(__file__).with_name("assignment_vectors.json").write_text(json.dumps(vectors, indent=1, ensure_ascii=False))
