"""Who is signed in to the console, and CSRF tokens bound to that session.

Cloud: the browser signs in with Firebase Authentication (Google) and posts the ID token once;
the server exchanges it for a Firebase session cookie (firebase-admin, revocation checked on
every request). Local runs and tests: a sign-in-as-role page mints an unsigned emulator token,
offered only when `unsigned_tokens_accepted()` holds, the same condition under which the API
accepts unsigned tokens; a deployed service refuses it.

The cookie is HttpOnly and SameSite=Strict (Secure over HTTPS). Every state-changing form
carries a CSRF token derived from the session cookie, which a page from another origin can
neither read nor compute; the Origin header, when sent, must be this host.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import flask

from functions.adapters.auth import Principal, authenticate, authenticate_session, unsigned_tokens_accepted
from functions.core.errors import BadRequest, ErrorCode, Forbidden, Unauthenticated

COOKIE = "console_session"
PRE_COOKIE = "console_signin"  # double-submit token for the sign-in form (no session yet)
MAX_AGE = 8 * 3600
SIGNIN_ROLES = ("viewer", "pm", "approver", "operator", "admin")
_UID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def secure(request: flask.Request) -> bool:
    return request.is_secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def principal(request: flask.Request) -> Principal | None:
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        if unsigned_tokens_accepted():
            return authenticate(f"Bearer {value}")
        return authenticate_session(value)
    except Unauthenticated:
        return None


def csrf_token_for(cookie_value: str) -> str:
    return hmac.new(cookie_value.encode(), b"console-csrf", hashlib.sha256).hexdigest()[:40]


def csrf_token(request: flask.Request) -> str:
    return csrf_token_for(request.cookies.get(COOKIE) or request.cookies.get(PRE_COOKIE) or "")


def check_csrf(request: flask.Request) -> None:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.rstrip("/") != request.host_url.rstrip("/"):
        raise Forbidden("cross-origin form refused", code=ErrorCode.CSRF_ORIGIN, details={"origin": origin[:200]})
    sent = request.form.get("csrf", "") or request.headers.get("X-CSRF-Token", "")
    if not (request.cookies.get(COOKIE) or request.cookies.get(PRE_COOKIE)) or not hmac.compare_digest(
            sent, csrf_token(request)):
        raise Forbidden("missing or wrong CSRF token; reload the page and try again", code=ErrorCode.CSRF)


def new_pre_token() -> str:
    return secrets.token_urlsafe(24)


def local_token(uid: str, role: str) -> str:
    """An unsigned emulator token for the sign-in-as-role page; refused outside emulator mode."""
    if not unsigned_tokens_accepted():
        raise Forbidden("sign-in as a role exists only with the emulators", code=ErrorCode.LOCAL_SIGNIN_DISABLED)
    if role not in SIGNIN_ROLES:
        raise BadRequest("unknown role", code=ErrorCode.UNKNOWN_ROLE, details={"roles": list(SIGNIN_ROLES)})
    if not _UID.match(uid):
        raise BadRequest("user name: 1-64 letters, digits, dot, dash or underscore", code=ErrorCode.BAD_UID)
    from localdev.tokens import mint  # local tooling; never reached in the cloud (checked above)

    return mint(uid, [role])


def set_cookie(response: flask.Response, request: flask.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Strict", secure=secure(request),
                        path="/")


def clear(response: flask.Response) -> None:
    response.delete_cookie(COOKIE, path="/", samesite="Strict")
