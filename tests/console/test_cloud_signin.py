"""Cloud sign-in as far as it runs offline: Google's sign-in popup and Firebase's token service
cannot be reached here, so these tests drive everything around them. In cloud mode (no auth
emulator) an unsigned token is neither a session nor exchanged for one, a misconfigured
deployment refuses rather than trusts, and the sign-in page wires the vendored SDK to
`/session` with its CSRF token (checked in Chromium with a stand-in for the SDK)."""

from __future__ import annotations

import re
import time

from functions.services.experiments import repository
from localdev.tokens import mint
from tests.console.conftest import CSRF
from tests.support.factories import running_experiment

DATA_CSRF = re.compile(r'data-csrf="([0-9a-f]+)"')


def cloud(monkeypatch) -> None:
    """Cloud mode from now on (the app is loaded before: a deployed start needs a signing key):
    no auth emulator, a deployed service, the web app's public Firebase config."""
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("K_SERVICE", "console")
    monkeypatch.setenv("FIREBASE_WEB_API_KEY", "test-web-key")
    monkeypatch.setenv("FIREBASE_AUTH_DOMAIN", "demo-offers.firebaseapp.com")


def _session_cookies(resp) -> list[str]:
    return [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("console_session=")]


def test_the_cloud_sign_in_page_wires_the_vendored_sdk_and_offers_no_role_picker(console, monkeypatch):
    client = console()
    cloud(monkeypatch)
    page = client.get("/signin")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="role"' not in body and 'id="google-signin"' in body
    for script in ("/assets/vendor/firebase-app-compat.js", "/assets/vendor/firebase-auth-compat.js",
                   "/assets/signin.js"):
        assert f'src="{script}"' in body, script
    assert "test-web-key" in body and 'data-session-url="/session"' in body
    # the token the page posts with is the one the pre-session cookie derives
    pre = client.client.get_cookie("console_signin")
    from functions.console.session import csrf_token_for

    assert pre is not None and DATA_CSRF.search(body).group(1) == csrf_token_for(pre.value)
    policy = page.headers["Content-Security-Policy"]
    assert "frame-src https://demo-offers.firebaseapp.com" in policy and "https://apis.google.com" in policy
    assert "unsafe-inline" not in policy
    script = client.get("/assets/signin.js")
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert "sessionUrl" in script.get_data(as_text=True)


def test_an_unsigned_token_is_no_session_in_the_cloud(console, monkeypatch):
    eid = running_experiment()
    client = console()
    cloud(monkeypatch)
    client.client.set_cookie("console_session", mint("mallory", ["admin"]))
    resp = client.get("/experiments")
    assert resp.status_code == 303 and "/signin" in resp.headers["Location"]
    refused = client.client.post(f"/experiments/{eid}/actions/kill", data={"confirm": "yes", "text": "x"})
    assert refused.status_code in (401, 403) and repository.load(eid)["state"] == "RUNNING"


def test_a_deployment_left_pointing_at_the_auth_emulator_refuses_sessions(console, monkeypatch):
    client = console("mallory", "admin")  # an unsigned token minted while local
    monkeypatch.setenv("K_SERVICE", "console")  # deployed, FIREBASE_AUTH_EMULATOR_HOST still set
    resp = client.get("/experiments")
    assert resp.status_code == 503 and "AUTH_MISCONFIGURED" in resp.get_data(as_text=True)
    assert "mallory" not in resp.get_data(as_text=True)


def test_an_unsigned_id_token_is_not_exchanged_for_a_session_in_the_cloud(console, monkeypatch):
    client = console()
    cloud(monkeypatch)
    token = CSRF.search(client.get("/signin").get_data(as_text=True))
    csrf = DATA_CSRF.search(client.get("/signin").get_data(as_text=True)).group(1)
    assert token is None  # no local form in the cloud; the page's token is in data-csrf
    no_csrf = client.client.post("/session", data={"idToken": mint("mallory", ["admin"])})
    assert no_csrf.status_code == 403 and not _session_cookies(no_csrf)
    unsigned = client.client.post("/session", data={"idToken": mint("mallory", ["admin"]), "csrf": csrf})
    assert unsigned.status_code == 401 and "INVALID_TOKEN" in unsigned.get_data(as_text=True)
    assert not _session_cookies(unsigned)
    huge = client.client.post("/session", data={"idToken": "x" * 9000, "csrf": csrf})
    assert huge.status_code == 400 and not _session_cookies(huge)
    assert client.get("/experiments").status_code == 303  # still signed out


def test_an_old_sign_in_is_not_exchanged_for_a_session(console):
    """Checked before Firebase is asked: a token whose sign-in is over five minutes old."""
    client = console()
    csrf = CSRF.search(client.get("/signin").get_data(as_text=True)).group(1)
    old = mint("alice", ["pm"], auth_time=int(time.time()) - 600)
    resp = client.client.post("/session", data={"idToken": old, "csrf": csrf})
    assert resp.status_code == 401 and "STALE_SIGNIN" in resp.get_data(as_text=True)
    assert not _session_cookies(resp)


SDK_STAND_IN = """
window.firebase = {
  initializeApp: function (config) { window.__firebaseConfig = config; },
  auth: Object.assign(function () {
    return {
      signInWithPopup: function () {
        return Promise.resolve({ user: { getIdToken: function () { return Promise.resolve(window.__idToken); } } });
      },
      signOut: function () { return Promise.resolve(); }
    };
  }, { GoogleAuthProvider: function () {} })
};
"""


def test_the_sign_in_button_posts_the_id_token_to_the_session_route_which_refuses_an_unsigned_one(
        served, open_page, monkeypatch):
    """In Chromium: the vendored SDK's two files are answered with a stand-in whose Google
    sign-in resolves to an unsigned token; signin.js posts it with the CSRF token and the
    server refuses it (401), which the page says; no session cookie is set."""
    cloud(monkeypatch)
    page, watch = open_page()
    page.route("**/assets/vendor/firebase-app-compat.js",
               lambda route: route.fulfill(status=200, content_type="text/javascript", body=SDK_STAND_IN))
    page.route("**/assets/vendor/firebase-auth-compat.js",
               lambda route: route.fulfill(status=200, content_type="text/javascript", body=""))
    page.goto(f"{served.console}/signin")
    assert page.evaluate("window.__firebaseConfig.apiKey") == "test-web-key"
    page.evaluate(f"window.__idToken = {mint('mallory', ['admin'])!r}")
    with page.expect_request("**/console/session") as posted:
        page.get_by_role("button", name="Sign in with Google").click()
    form = posted.value.post_data or ""
    assert "idToken=" in form and "csrf=" in form
    status = page.locator("#signin-status")
    status.filter(has_text="Sign-in failed").wait_for()
    assert "session refused (401)" in status.inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "console_session"]
    errors, failed = watch.take()
    assert [f.split()[0] for f in failed] == ["401"] and all("401" in e for e in errors), (errors, failed)
