"""The console over HTTP (functions_framework's own app, real emulators): sessions, CSRF, roles,
refusals as coded 4xx pages that change nothing, the API's validation on the form, the CSV export."""

from __future__ import annotations

import csv
import io

import pytest

from functions.adapters.repositories.experiments import document as experiment_document
from functions.services.experiments import repository
from functions.services.experiments.transitions import transition
from tests.console.conftest import CSRF
from tests.support.factories import OPERATOR, running_experiment


def test_session_cookie_is_httponly_and_samesite_strict(console):
    client = console()
    page = client.get("/signin")
    assert page.status_code == 200
    pre = [h for h in page.headers.getlist("Set-Cookie") if h.startswith("console_signin=")]
    assert pre and "HttpOnly" in pre[0] and "SameSite=Strict" in pre[0]
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    resp = client.client.post("/signin", data={"uid": "alice", "role": "pm", "csrf": token})
    cookie = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("console_session=")]
    assert resp.status_code == 303 and cookie and "HttpOnly" in cookie[0] and "SameSite=Strict" in cookie[0]
    assert "alice" in client.get("/experiments").get_data(as_text=True)


def test_sign_in_as_a_role_is_refused_outside_emulator_mode(console, monkeypatch):
    client = console()
    token = client.csrf("/signin")
    monkeypatch.setenv("K_SERVICE", "console")  # a deployed service
    page = client.get("/signin").get_data(as_text=True)
    assert 'name="role"' not in page
    resp = client.client.post("/signin", data={"uid": "mallory", "role": "admin", "csrf": token})
    assert resp.status_code == 403 and "LOCAL_SIGNIN_DISABLED" in resp.get_data(as_text=True)
    assert not [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("console_session=")]


@pytest.mark.parametrize("forged", [{}, {"csrf": "0" * 40}])
def test_state_changing_forms_need_the_sessions_csrf_token(console, forged):
    eid = running_experiment()
    client = console("carol", "operator")
    resp = client.client.post(f"/experiments/{eid}/actions/kill", data={"confirm": "yes", "text": "x", **forged})
    assert resp.status_code == 403 and "CSRF" in resp.get_data(as_text=True)
    assert repository.load(eid)["state"] == "RUNNING"


def test_a_cross_origin_post_is_refused_even_with_a_token(console):
    eid = running_experiment()
    client = console("carol", "operator")
    resp = client.post(f"/experiments/{eid}/actions/kill", {"confirm": "yes", "text": "x"},
                       headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403 and "CSRF_ORIGIN" in resp.get_data(as_text=True)
    assert repository.load(eid)["state"] == "RUNNING"


def test_the_apis_role_rules_apply_to_console_actions(console):
    eid = running_experiment()
    viewer = console("vera", "viewer")
    resp = viewer.post(f"/experiments/{eid}/actions/kill", {"confirm": "yes", "text": "no"})
    assert resp.status_code == 403 and "role not allowed" in resp.get_data(as_text=True)
    approver = console("bob", "approver")
    assert approver.post(f"/experiments/{eid}/actions/pause", {"confirm": "yes", "text": "x"}).status_code == 403
    assert repository.load(eid)["state"] == "RUNNING"


def test_an_action_asks_for_confirmation_first_and_needs_a_reason(console):
    eid = running_experiment()
    client = console("carol", "operator")
    page = client.post(f"/experiments/{eid}/actions/kill", {"text": "refunds spiking"})
    assert page.status_code == 200 and "Confirm: kill" in page.get_data(as_text=True)
    assert repository.load(eid)["state"] == "RUNNING"
    empty = client.post(f"/experiments/{eid}/actions/kill", {"confirm": "yes", "text": ""})
    assert empty.status_code == 422 and repository.load(eid)["state"] == "RUNNING"
    done = client.post(f"/experiments/{eid}/actions/kill", {"confirm": "yes", "text": "refunds spiking"})
    assert done.status_code == 303 and repository.load(eid)["state"] == "KILLED"
    history = client.get(f"/experiments/{eid}").get_data(as_text=True)
    assert "refunds spiking" in history and "carol" in history


def test_the_new_experiment_form_shows_the_apis_messages_and_creates_nothing(console):
    client = console("alice", "pm")
    before = len(repository.list_experiments())
    resp = client.post("/experiments/new", {"name": "", "variants": "control:50\ntreatment:abc", "primaryMetric": ""})
    assert resp.status_code == 422 and "a number is expected" in resp.get_data(as_text=True)
    resp = client.post("/experiments/new", {"name": "x", "statement": "s", "variants": "control:50",
                                            "primaryMetric": "revenue", "offerType": "PRICE_CHANGE"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "variants" in body and 'id="form-errors"' in body
    assert len(repository.list_experiments()) == before


@pytest.mark.parametrize("path", ["/experiments/..%2f..%2fetc", "/experiments/a b", "/nope", "/assets/../main.py",
                                  "/assets/%2e%2e/app.py", "/experiments/" + "x" * 2000, "/ledger/reports/missing"])
def test_odd_paths_are_coded_4xx_pages(console, path):
    resp = console("vera", "viewer").get(path)
    assert 400 <= resp.status_code < 500, (path, resp.status_code)
    assert "text/html" in resp.headers["Content-Type"] or resp.status_code == 404


def test_unknown_action_and_wrong_method_are_refused(console):
    eid = running_experiment()
    client = console("carol", "operator")
    assert client.post(f"/experiments/{eid}/actions/explode", {"confirm": "yes"}).status_code == 404
    assert client.client.put(f"/experiments/{eid}").status_code == 405
    assert repository.load(eid)["state"] == "RUNNING"


def test_open_redirects_after_sign_in_are_refused(console):
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        client = console()
        token = client.csrf("/signin")
        resp = client.client.post("/signin", data={"uid": "a", "role": "viewer", "csrf": token, "next": target})
        assert resp.status_code == 303 and resp.headers["Location"].endswith("/experiments"), target


def test_ledger_csv_starts_with_its_header_and_carries_reason_and_payload(console):
    eid = running_experiment()
    transition(eid, "KILL", OPERATOR.to_dict(), "refund spike, stopping now")
    resp = console("vera", "viewer").get(f"/ledger/export.csv?experimentId={eid}")
    assert resp.status_code == 200 and resp.headers["X-Ledger-Verification"].startswith('{"ok":true')
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    kill = [r for r in rows if r["action"] == "EXPERIMENT_KILL"]
    assert len(kill) == 1 and kill[0]["reason"] == "refund spike, stopping now"
    assert '"reason":"refund spike, stopping now"' in kill[0]["payload"]
    assert [int(r["seq"]) for r in rows] == list(range(len(rows)))


def test_summaries_and_snapshot_series_routes_check_roles(function_client):
    from localdev.tokens import bearer

    eid = running_experiment()
    client = function_client("experiments")
    assert client.get("/summaries").status_code == 401
    assert client.get("/summaries", headers=bearer("u", ["user"])).status_code == 403
    rows = client.get("/summaries", headers=bearer("v", ["viewer"])).get_json()["experiments"]
    assert [r["id"] for r in rows] == [eid] and rows[0]["owner"] == "pm-alice" and rows[0]["state"] == "RUNNING"
    series = client.get(f"/{eid}/snapshots", headers=bearer("v", ["viewer"]))
    assert series.status_code == 200 and series.get_json()["snapshots"] == []
    assert client.get("/missing/snapshots", headers=bearer("v", ["viewer"])).status_code == 404
    assert client.get(f"/{eid}/snapshots?limit=0", headers=bearer("v", ["viewer"])).status_code == 422


def test_a_definition_changed_behind_the_apis_back_shows_in_the_diff_against_the_approved_one(console):
    eid = running_experiment()
    client = console("vera", "viewer")
    assert 'id="diff-same"' in client.get(f"/experiments/{eid}").get_data(as_text=True)
    doc = repository.load(eid)
    guardrails = [{**doc["guardrails"][0], "absoluteMax": 0.5}]
    experiment_document(eid).update({"guardrails": guardrails})  # an insider's direct write
    page = client.get(f"/experiments/{eid}").get_data(as_text=True)
    assert 'id="diff-same"' not in page and "guardrails[0].absoluteMax" in page and "0.08" in page


def _analysed_experiment() -> tuple[str, dict]:
    """A running EUR-priced experiment with exposures, revenue (landed in the base currency) and a
    published analysis."""
    import random

    from functions.models.analytics import AnalysisRequest
    from functions.models.experiments import KpiEvent
    from functions.services.analytics import analyses
    from functions.services.experiments.kpi import ingest
    from tests.support.factories import expose, kpi

    eid = running_experiment()
    rng = random.Random(3)
    arms = {f"u{i}": ("control" if i % 2 else "treatment") for i in range(200)}
    expose(eid, arms)
    ingest([KpiEvent.model_validate(kpi(u, "revenue", rng.uniform(40, 60) + (6 if a == "treatment" else 0)))
            for u, a in arms.items()])
    return eid, analyses.run(eid, AnalysisRequest(), OPERATOR.to_dict())


def test_money_is_shown_in_the_experiments_own_currency(console):
    import re

    eid, analysis = _analysed_experiment()
    assert repository.load(eid)["offerConfig"]["currency"] == "EUR"
    diff = analysis["results"]["revenue"]["arms"]["treatment"]["primary"]["diff"]  # base currency (USD) per user
    for path in (f"/experiments/{eid}", f"/ledger/reports/{eid}"):
        page = console("vera", "viewer").get(path).get_data(as_text=True)
        found = re.search(r"\(([\d,]+) users/month\): <b>([+-])([\d,]+) (\w{3})</b>", page)
        assert found, path
        per_month, sign, shown, currency = found.groups()
        assert currency == "EUR" and sign == "+", path
        expected = diff * float(per_month.replace(",", "")) / 1.08  # CURRENCY_RATES: 1 EUR = 1.08 USD
        assert abs(float(shown.replace(",", "")) - expected) <= 1 + abs(diff), (path, shown, expected)
    # the experiment page also gives the figure in the deployment's base currency, unconverted
    page = console("vera", "viewer").get(f"/experiments/{eid}").get_data(as_text=True)
    base = re.search(r'in the base currency <b class="impact-base">([+-])([\d,]+) USD</b>', page)
    assert base, "no base-currency figure"
    per_month = float(re.search(r"\(([\d,]+) users/month\)", page).group(1).replace(",", ""))
    assert abs(float(base.group(2).replace(",", "")) - diff * per_month) <= 1 + abs(diff)


def test_the_board_report_prints_the_ledgers_content(console, function_client):
    from html import escape

    from localdev.tokens import bearer

    eid, _ = _analysed_experiment()
    transition(eid, "KILL", OPERATOR.to_dict(), "refund spike, stopping now")
    report = function_client("ledger").get(f"/reports/{eid}", headers=bearer("v", ["viewer"])).get_json()
    page = console("vera", "viewer").get(f"/ledger/reports/{eid}").get_data(as_text=True)
    for approval in report["approvals"]:
        assert approval["contentHash"] and f"<code>{approval['contentHash']}</code>" in page
    sentences = [a["sentence"] for k in report["finalAnalysis"]["kpis"] for a in k["arms"]]
    assert sentences and all(escape(s) in page for s in sentences)
    assert "refund spike, stopping now" in page and report["preRegistration"]["planHash"] in page
    html = function_client("ledger").get(f"/reports/{eid}/html", headers=bearer("v", ["viewer"])).get_data(as_text=True)
    assert all(escape(s) in html for s in sentences)  # the ledger's own HTML prints the same words


def test_the_holdouts_page_says_why_there_is_no_programme_effect_without_a_global_holdout(console):
    page = console("vera", "viewer").get("/holdouts")
    assert page.status_code == 200 and "NO_GLOBAL_HOLDOUT" in page.get_data(as_text=True)
    assert console("vera", "viewer").get("/holdouts?metric=a%20b").status_code == 400
