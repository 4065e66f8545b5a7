"""The console's page plumbing: the route table, the request being served (who, where the
console is mounted, rendering with Jinja2) and the public Firebase web config."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import flask
from jinja2 import Environment, FileSystemLoader, select_autoescape

from functions.adapters.auth import Principal, unsigned_tokens_accepted
from functions.config import settings
from functions.console import session, wording
from functions.core.wording import p_text, pct

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
ENV = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(when=wording.when, pct=pct, p_text=p_text, money=wording.money)
STATIC_NAME = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")

Handler = Callable[..., flask.Response]
ROUTES: list[tuple[str, re.Pattern[str], Handler, bool]] = []  # method, path, handler, needs sign-in


def route(method: str, path: str, signed_in: bool = True) -> Callable[[Handler], Handler]:
    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "/?$")

    def register(handler: Handler) -> Handler:
        ROUTES.append((method, pattern, handler, signed_in))
        return handler

    return register


class Page:
    """The request being served: who, where the console is mounted, and rendering."""

    def __init__(self, request: flask.Request, who: Principal | None) -> None:
        self.request, self.who = request, who
        self.base = base_path(request)
        self.csrf = session.csrf_token(request)

    def url(self, path: str, **query: Any) -> str:
        q = {k: v for k, v in query.items() if v not in (None, "")}
        return f"{self.base}{path}" + (f"?{urlencode(q)}" if q else "")

    def render(self, template: str, status: int = 200, **data: Any) -> flask.Response:
        body = ENV.get_template(template).render(
            page=self, who=self.who, base=self.base, csrf=self.csrf, url=self.url,
            local_signin=unsigned_tokens_accepted(), firebase=firebase_config(), **data)
        return flask.Response(body, status=status, mimetype="text/html")

    def redirect(self, path: str, **query: Any) -> flask.Response:
        return flask.redirect(self.url(path, **query), code=303)


def base_path(request: flask.Request) -> str:
    configured = settings_base()
    if configured is not None:
        return configured
    prefix = "/console" if request.path == "/console" or request.path.startswith("/console/") else ""
    return request.script_root.rstrip("/") + prefix


def settings_base() -> str | None:
    value = os.environ.get("CONSOLE_BASE_PATH")
    return None if value is None else value.rstrip("/")


def firebase_config() -> dict[str, str] | None:
    """Cloud sign-in needs the web app's public Firebase config (FIREBASE_WEB_API_KEY,
    FIREBASE_AUTH_DOMAIN) and the vendored SDK in static/vendor (deploy.sh fetches it)."""
    key = os.environ.get("FIREBASE_WEB_API_KEY")
    if not key:
        return None
    return {"apiKey": key, "authDomain": os.environ.get("FIREBASE_AUTH_DOMAIN", f"{settings().project_id}"
                                                                                ".firebaseapp.com"),
            "projectId": settings().project_id}


