"""Authentication with Firebase ID tokens; roles come from custom claims.

Roles: viewer < pm < approver < operator < admin are staff roles, `service` is for backends
(KPI producers, the app's server), `user` is an end user. Routes name the roles they accept;
admin is accepted everywhere. With FIREBASE_AUTH_EMULATOR_HOST set the Admin SDK accepts
unsigned tokens (local runs and tests); that mode refuses to start inside Cloud Run.
When Google's token certificates cannot be fetched (or credentials are missing) the caller
gets a coded 503 to retry, never a 500: the token may be fine, we just cannot check it yet.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import firebase_admin
import google.auth.exceptions
from firebase_admin import auth as fb_auth
from firebase_admin import exceptions as fb_exceptions

from functions.config import settings
from functions.core.clock import utc_now
from functions.core.errors import ErrorCode, Unauthenticated, Unavailable

ROLES = ("viewer", "pm", "approver", "operator", "admin", "service", "user")
STAFF = frozenset({"viewer", "pm", "approver", "operator", "admin"})

_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    uid: str
    roles: frozenset[str] = field(default_factory=frozenset)
    email: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def has_any(self, allowed: frozenset[str]) -> bool:
        return "admin" in self.roles or bool(self.roles & allowed)

    @property
    def primary_role(self) -> str:
        for role in ("admin", "operator", "approver", "pm", "viewer", "service", "user"):
            if role in self.roles:
                return role
        return "user"

    def to_dict(self) -> dict[str, str]:
        return {"uid": self.uid, "role": self.primary_role}


SYSTEM = Principal(uid="system:sweep", roles=frozenset({"service"}))


def unsigned_tokens_accepted() -> bool:
    """Emulator mode (local runs and tests): the Admin SDK accepts unsigned tokens. The console's
    sign-in-as-role page exists only under this same condition."""
    if not os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"):
        return False
    return not os.environ.get("K_SERVICE") or bool(os.environ.get("ALLOW_UNSIGNED_TOKENS"))


def _app() -> firebase_admin.App:
    if os.environ.get("FIREBASE_AUTH_EMULATOR_HOST") and not unsigned_tokens_accepted():
        raise Unavailable("token verification is misconfigured: FIREBASE_AUTH_EMULATOR_HOST is set in a "
                          "deployed service, so unsigned tokens are refused", code=ErrorCode.AUTH_MISCONFIGURED)
    name = f"offers-{settings().project_id}"
    with _lock:
        try:
            return firebase_admin.get_app(name)
        except ValueError:
            return firebase_admin.initialize_app(options={"projectId": settings().project_id}, name=name)


def _require_signed(token: str, what: str = "ID token") -> None:
    """Outside emulator mode a Firebase token is an RS256 JWT naming its key (`kid`); anything else
    (an unsigned emulator token, another algorithm, garbage) is refused here, before the Admin SDK
    needs credentials or Google's keys, so the refusal is a 401 wherever the service runs."""
    if unsigned_tokens_accepted():
        return
    _app()  # a deployment left pointing at the auth emulator says so (503) before a token is judged
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".", 1)[0] + "==="))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthenticated(f"invalid {what}", code=ErrorCode.INVALID_TOKEN, details={"reason": "not a JWT"}) from exc
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not header.get("kid"):
        raise Unauthenticated(f"invalid {what}", code=ErrorCode.INVALID_TOKEN,
                              details={"reason": "not signed (RS256 with a key id expected)"})


def roles_from_claims(claims: Mapping[str, Any]) -> frozenset[str]:
    raw = claims.get("roles", claims.get("role", []))
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return frozenset()
    return frozenset(r for r in raw if isinstance(r, str) and r in ROLES)


def authenticate(authorization: str | None) -> Principal:
    """Verify a `Bearer <Firebase ID token>` header and return who is calling."""
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthenticated("missing bearer token", code=ErrorCode.MISSING_TOKEN)
    token = authorization[len("Bearer ") :].strip()
    _require_signed(token)
    try:
        claims = fb_auth.verify_id_token(token, app=_app())
    except (fb_auth.InvalidIdTokenError, fb_auth.ExpiredIdTokenError, ValueError) as exc:
        raise Unauthenticated("invalid ID token",
                              code=ErrorCode.INVALID_TOKEN, details={"reason": str(exc)[:200]}) from exc
    except (fb_exceptions.FirebaseError, google.auth.exceptions.GoogleAuthError) as exc:
        # CertificateFetchError (Google's keys unreachable), missing or unusable credentials.
        raise Unavailable("cannot verify ID tokens right now; retry", code=ErrorCode.AUTH_UNAVAILABLE,
                          details={"reason": f"{type(exc).__name__}: {str(exc)[:200]}"}) from exc
    return principal_from_claims(claims)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    uid = claims.get("uid") or claims.get("sub")
    if not isinstance(uid, str) or not uid:
        raise Unauthenticated("token has no subject", code=ErrorCode.INVALID_TOKEN)
    roles = roles_from_claims(claims) or frozenset({"user"})
    return Principal(uid=uid, roles=roles, email=claims.get("email"), claims=dict(claims))


SESSION_SIGNIN_MAX_AGE_SECONDS = 300


def create_session_cookie(id_token: str, max_age_seconds: int) -> str:
    """Exchange a verified ID token for a Firebase session cookie (the console's cloud sign-in).

    The token is verified here first (signature, audience, expiry; an unsigned or forged token is
    refused without a network call), and only a sign-in of the last five minutes is exchanged,
    as Firebase advises, so a stolen older ID token cannot mint an 8-hour session."""
    _require_signed(id_token)
    try:
        claims = fb_auth.verify_id_token(id_token, app=_app())
        if utc_now().timestamp() - float(claims.get("auth_time") or 0) > SESSION_SIGNIN_MAX_AGE_SECONDS:
            raise Unauthenticated("sign in again: the sign-in is older than five minutes", code=ErrorCode.STALE_SIGNIN)
        expires = datetime.timedelta(seconds=max_age_seconds)
        return fb_auth.create_session_cookie(id_token, expires_in=expires, app=_app())
    except (fb_auth.InvalidIdTokenError, fb_auth.ExpiredIdTokenError, ValueError) as exc:
        raise Unauthenticated("invalid ID token",
                              code=ErrorCode.INVALID_TOKEN, details={"reason": str(exc)[:200]}) from exc
    except (fb_exceptions.FirebaseError, google.auth.exceptions.GoogleAuthError) as exc:
        raise Unavailable("cannot create a session right now; retry", code=ErrorCode.AUTH_UNAVAILABLE,
                          details={"reason": f"{type(exc).__name__}: {str(exc)[:200]}"}) from exc


def authenticate_session(cookie: str) -> Principal:
    """Verify a Firebase session cookie (revocation checked) and return who holds it."""
    _require_signed(cookie, "session")
    try:
        claims = fb_auth.verify_session_cookie(cookie, check_revoked=True, app=_app())
    except (fb_auth.InvalidSessionCookieError, fb_auth.ExpiredSessionCookieError, fb_auth.RevokedSessionCookieError,
            fb_auth.UserDisabledError, ValueError) as exc:
        raise Unauthenticated("invalid session",
                              code=ErrorCode.INVALID_SESSION, details={"reason": str(exc)[:200]}) from exc
    except (fb_exceptions.FirebaseError, google.auth.exceptions.GoogleAuthError) as exc:
        raise Unavailable("cannot verify the session right now; retry", code=ErrorCode.AUTH_UNAVAILABLE,
                          details={"reason": f"{type(exc).__name__}: {str(exc)[:200]}"}) from exc
    return principal_from_claims(claims)
