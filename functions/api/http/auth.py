"""Who may call a route: the role sets routes name, and the check the router runs before any
handler (public routes run as `anonymous`; `admin` passes every role check)."""

from __future__ import annotations

from typing import Any

import flask

from functions.adapters.auth import Principal, authenticate
from functions.core.errors import Forbidden

ANY_STAFF = frozenset({"viewer", "pm", "approver", "operator", "admin"})
AUTHENTICATED = frozenset({"viewer", "pm", "approver", "operator", "admin", "service", "user"})
ANONYMOUS = "anonymous"


def authorise(request: flask.Request, roles: frozenset[str], public: bool, fields: dict[str, Any]) -> Principal:
    """The caller of a route, or 401 (no or bad token) / 403 (none of `roles`)."""
    if public:
        return Principal(uid=ANONYMOUS)
    principal = authenticate(request.headers.get("Authorization"))
    fields["uid"] = principal.uid
    require_roles(principal, roles)
    return principal


def require_roles(principal: Principal, roles: frozenset[str]) -> None:
    """403 unless `principal` holds one of `roles` (or is admin)."""
    if not principal.has_any(roles):
        raise Forbidden(
            f"role not allowed; needs one of {sorted(roles | {'admin'})}",
            details={"required": sorted(roles | {"admin"}), "roles": sorted(principal.roles)},
        )
