"""Unsigned Firebase ID tokens for the emulator mode of the Admin SDK (tests, demo, benches)."""

from __future__ import annotations

import base64
import json

from functions.config import settings
from functions.core.clock import utc_now


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def mint(uid: str, roles: list[str] | str | None = None, project: str | None = None, **claims) -> str:
    project = project or settings().project_id
    now = int(utc_now().timestamp())
    payload = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "sub": uid,
        "user_id": uid,
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
        **claims,
    }
    if roles is not None:
        payload["roles"] = [roles] if isinstance(roles, str) else list(roles)
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."


def bearer(uid: str, roles: list[str] | str | None = None, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(uid, roles, **claims)}"}
