"""HTTP function `console`: routes, sign-in, CSRF and error pages of the web console.

Pages are rendered on the server (Jinja2) with charts as inline SVG, so they need no script,
work offline and print. Any refusal (no session, wrong role, bad form, unknown id) is an HTML
page with the API's error code and message and a 4xx status; nothing a visitor sends gives a 500.
"""

from __future__ import annotations

import logging
import mimetypes
import time
from urllib.parse import quote

import flask
from google.api_core import exceptions as gexc

from functions.adapters.auth import Principal, create_session_cookie
from functions.console import forms, pages, session
from functions.console import reports as _reports  # noqa: F401  (its routes register on import)
from functions.console.apicall import call
from functions.console.web import ROUTES, STATIC, STATIC_NAME, Page, firebase_config, route
from functions.core.errors import AppError, BadRequest, ErrorCode, MethodNotAllowed, NotFound, Unauthenticated
from functions.core.ids import random_hex
from functions.models.common import is_document_id

log = logging.getLogger("functions.console")

def _local_path(request: flask.Request) -> str:
    path = request.path
    if path == "/console" or path.startswith("/console/"):
        path = path[len("/console"):]
    return path or "/"


def handle(request: flask.Request) -> flask.Response:
    started = time.perf_counter()
    who: Principal | None = None
    try:
        path = _local_path(request)
        if path.startswith("/assets/"):  # not /static/: functions_framework's Flask app owns that path
            return _static(path[len("/assets/"):])
        who = session.principal(request)
        page = Page(request, who)
        response = _dispatch(request, page, path)
    except AppError as err:
        response = _error(request, who, err)
    except (gexc.Aborted, gexc.Conflict):
        response = _error(request, who, AppError("someone changed this at the same time; try again",
                                                 code=ErrorCode.CONTENTION), status=409)
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.TooManyRequests):
        response = _error(request, who, AppError("backend temporarily unavailable",
                                                 code=ErrorCode.UNAVAILABLE), status=503)
    except Exception:
        request_id = random_hex()
        log.exception("console error", extra={"json_fields": {"requestId": request_id, "path": request.path}})
        response = _error(request, who, AppError("internal error", code=ErrorCode.INTERNAL,
                                                 details={"requestId": request_id}), status=500)
    response.headers.setdefault("Content-Security-Policy", content_security_policy())
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    log.info("%s %s %s %.1fms", request.method, request.path, response.status_code,
             1000 * (time.perf_counter() - started))
    return response


def content_security_policy() -> str:
    """Same-origin only; the cloud sign-in page also talks to Firebase Authentication."""
    policy = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
              "frame-ancestors 'none'; form-action 'self'")
    config = firebase_config()
    if config:
        policy += (f"; connect-src 'self' https://*.googleapis.com; frame-src https://{config['authDomain']}; "
                   "script-src 'self' https://apis.google.com")
        policy = policy.replace("; script-src 'self';", ";", 1)
    return policy


def _dispatch(request: flask.Request, page: Page, path: str) -> flask.Response:
    methods = []
    for method, pattern, handler, signed_in in ROUTES:
        m = pattern.match(path)
        if not m:
            continue
        if method != request.method and not (request.method == "HEAD" and method == "GET"):
            methods.append(method)
            continue
        params = m.groupdict()
        if any(not is_document_id(v) for v in params.values()):
            raise NotFound("no such page", code=ErrorCode.UNKNOWN_ID)
        if signed_in and page.who is None:
            if request.method == "GET":
                return page.redirect("/signin", next=request.full_path if request.query_string else request.path)
            raise Unauthenticated("sign in first", code=ErrorCode.NO_SESSION)
        if request.method == "POST":
            session.check_csrf(request)
        return handler(page, **params)
    if methods:
        raise MethodNotAllowed(f"{request.method} not allowed here", details={"allowed": sorted(set(methods))})
    raise NotFound("no such page", code=ErrorCode.PAGE_NOT_FOUND)


def _error(request: flask.Request, who: Principal | None, err: AppError, status: int | None = None) -> flask.Response:
    try:
        page = Page(request, who)
        return page.render("error.html", status=status or err.status, error=err.to_dict()["error"])
    except Exception:  # the error page itself must not fail
        log.exception("console error page failed")
        return flask.Response(f"{err.code}: {err.message}", status=status or err.status, mimetype="text/plain")


def _static(name: str) -> flask.Response:
    if not STATIC_NAME.match(name) or ".." in name:
        raise NotFound("no such file", code=ErrorCode.STATIC_NOT_FOUND)
    file = (STATIC / name).resolve()
    if STATIC not in file.parents or not file.is_file():
        raise NotFound("no such file", code=ErrorCode.STATIC_NOT_FOUND)
    mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    response = flask.Response(file.read_bytes(), mimetype=mime)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _safe_next(value: str | None) -> str:
    """Only a path inside the console (no scheme, no host, no protocol-relative //)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/experiments"
    return value


# -- sign-in -----------------------------------------------------------------------------------

@route("GET", "/signin", signed_in=False)
def signin_form(page: Page) -> flask.Response:
    pre = page.request.cookies.get(session.PRE_COOKIE) or session.new_pre_token()
    page.csrf = session.csrf_token_for(pre) if not page.request.cookies.get(session.COOKIE) else page.csrf
    response = page.render("signin.html", roles=session.SIGNIN_ROLES,
                           next=_safe_next(page.request.args.get("next")))
    session.set_cookie(response, page.request, session.PRE_COOKIE, pre, 1800)
    return response


@route("POST", "/signin", signed_in=False)
def signin(page: Page) -> flask.Response:
    form = page.request.form
    token = session.local_token(form.get("uid", "").strip(), form.get("role", ""))
    response = flask.redirect(page.base + _safe_next(form.get("next")), code=303)
    session.set_cookie(response, page.request, session.COOKIE, token, session.MAX_AGE)
    return response


@route("POST", "/session", signed_in=False)
def cloud_session(page: Page) -> flask.Response:
    """The browser's Firebase ID token, exchanged for an HttpOnly session cookie."""
    id_token = page.request.form.get("idToken", "")
    if not id_token:
        raise BadRequest("idToken missing", code=ErrorCode.MISSING_TOKEN)
    if len(id_token) > 8192:
        raise BadRequest("idToken longer than 8192 characters", code=ErrorCode.BAD_REQUEST)
    cookie = create_session_cookie(id_token, session.MAX_AGE)
    response = flask.Response('{"ok":true}', mimetype="application/json")
    session.set_cookie(response, page.request, session.COOKIE, cookie, session.MAX_AGE)
    return response


@route("POST", "/signout")
def signout(page: Page) -> flask.Response:
    response = page.redirect("/signin")
    session.clear(response)
    return response


# -- pages -------------------------------------------------------------------------------------

@route("GET", "/", signed_in=False)
def home(page: Page) -> flask.Response:
    return page.redirect("/experiments" if page.who else "/signin")


@route("GET", "/experiments")
def experiments(page: Page) -> flask.Response:
    args = page.request.args
    data = pages.experiment_list(page.who, args.get("q", "")[:100], args.get("state", ""), args.get("view", ""),
                                 args.get("guardrail", ""))
    return page.render("experiments.html", **data)


@route("GET", "/experiments/new")
def new_form(page: Page) -> flask.Response:
    return page.render("new.html", form=forms.DEFAULTS, errors=[], **forms.choices(page.who))


@route("POST", "/experiments/new")
def create(page: Page) -> flask.Response:
    values = forms.values(page.request.form)
    try:
        definition = forms.definition(values)
        created = call(pages.E, "POST", "/", page.who, body=definition)
    except AppError as err:
        return page.render("new.html", status=err.status, form=values, errors=forms.messages(err),
                           **forms.choices(page.who))
    return page.redirect(f"/experiments/{quote(created['id'])}", done="created")


@route("GET", "/experiments/{experiment_id}")
def experiment(page: Page, experiment_id: str) -> flask.Response:
    data = pages.experiment_detail(page.who, experiment_id)
    done = page.request.args.get("done", "")
    return page.render("experiment.html", done=done if done in DONE else "", done_text=DONE.get(done, ""), **data)


DONE = {"created": "Experiment created as a draft.", **{a: f"Done: {a}." for a in pages.ACTIONS}}


@route("POST", "/experiments/{experiment_id}/actions/{action}")
def action(page: Page, experiment_id: str, action: str) -> flask.Response:
    if action not in pages.ACTIONS:
        raise NotFound("no such action", code=ErrorCode.UNKNOWN_ACTION, details={"actions": sorted(pages.ACTIONS)})
    form = page.request.form
    text = form.get("text", "").strip()[:2000]
    _, _, field, says = pages.ACTIONS[action]
    if form.get("confirm") != "yes":
        return page.render("confirm.html", experiment_id=experiment_id, action=action, says=says, text=text,
                           field=field, required=action in pages.NEEDS_TEXT)
    try:
        pages.run_action(page.who, experiment_id, action, text)
    except AppError as err:
        return page.render("confirm.html", status=err.status, experiment_id=experiment_id, action=action,
                           says=says, text=text, field=field, required=action in pages.NEEDS_TEXT,
                           error=err.to_dict()["error"])
    return page.redirect(f"/experiments/{quote(experiment_id)}", done=action)


