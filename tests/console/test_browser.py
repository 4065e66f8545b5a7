"""The console in Chromium: sign-in per role, a whole lifecycle from the UI, charts, keyboard,
labels, console errors and failed requests, screenshots of every page, and the board report
printed to PDF with its charts."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import requests

from localdev.tokens import bearer
from tests.console.browser import pdf_drawing_ops, screenshot, unlabelled_controls
from tests.support.factories import frozen_cohort, running_experiment

ROLES = ("viewer", "pm", "approver", "operator", "admin")


def sign_in(page, served, uid: str, role: str) -> None:
    page.goto(f"{served.console}/signin")
    page.get_by_label("User name").fill(uid)
    page.get_by_label("Role").select_option(role)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/experiments")
    assert page.locator("#whoami").inner_text() == uid


def only_refusal(watch, status: int) -> None:
    """The one refused request was the expected one (Chromium logs any 4xx page as an error)."""
    errors, failed = watch.take()
    assert [f.split()[0] for f in failed] == [str(status)], failed
    assert all(f"status of {status}" in e for e in errors), errors


def act(page, action: str, text: str = "") -> None:
    """Press an action button, then confirm it on the confirmation page."""
    if text:
        page.locator(f"#text-{action}").fill(text)
    page.locator(f"#action-{action}").click()
    page.wait_for_url(f"**/actions/{action}")
    assert page.get_by_role("heading", name=f"Confirm: {action}").is_visible()
    page.locator("#confirm-button").click()


def test_sign_in_as_each_role_sees_what_the_role_may_do(served, open_page):
    eid = running_experiment()
    for role in ROLES:
        page, watch = open_page()
        sign_in(page, served, f"{role}-user", role)
        assert page.locator(f"#experiment-list tr[data-id='{eid}']").count() == 1
        assert (page.get_by_role("link", name="New experiment").count() == 1) == (role in ("pm", "admin"))
        page.goto(f"{served.console}/experiments/{eid}")
        can_operate = role in ("operator", "pm", "admin")
        assert (page.locator("#action-kill").count() == 1) == can_operate
        assert page.locator("#experiment-state").inner_text() == "RUNNING"
        assert unlabelled_controls(page) == []
        errors, failed = watch.take()
        assert errors == [] and failed == [], (role, errors, failed)
        screenshot(page, f"signed-in-{role}")


def test_signed_out_visitors_are_sent_to_sign_in_and_a_viewer_cannot_act(served, open_page):
    eid = running_experiment()
    page, _ = open_page()
    page.goto(f"{served.console}/experiments/{eid}")
    assert "/console/signin" in page.url
    sign_in(page, served, "vera", "viewer")
    page.goto(f"{served.console}/experiments/{eid}")
    assert page.locator("#actions").count() == 0
    # The viewer forges the kill form with a valid CSRF token: the API's role rule still refuses.
    csrf = page.locator("form input[name=csrf]").first.get_attribute("value")
    resp = page.request.post(f"{served.console}/experiments/{eid}/actions/kill",
                             form={"csrf": csrf, "confirm": "yes", "text": "forged"})
    assert resp.status == 403 and "role not allowed" in resp.text()
    page.reload()
    assert page.locator("#experiment-state").inner_text() == "RUNNING"


def _traffic(served, eid: str, units: int = 600, seed: int = 3) -> dict[str, str]:
    """Assign users through the assign API (exposures arrive over Pub/Sub push), then KPIs through
    the KPI API: treatment refunds ~45%, control ~3%, so the always-valid bound clearly crosses 8%."""
    service = bearer("backend", ["service"])
    viewer = bearer("viewer", ["viewer"])
    ids = [f"user-{i:04d}" for i in range(units)]
    arms: dict[str, str] = {}
    for i in range(0, units, 200):
        resp = requests.post(f"{served.base}/assign/batch", headers=service, timeout=60,
                             json={"units": [{"unitId": u, "attributes": {"region": "DE"}} for u in ids[i:i + 200]]})
        assert resp.status_code == 200, resp.text
        arms.update({r["unitId"]: r["experiments"][eid]["variant"] for r in resp.json()["results"]
                     if r["experiments"].get(eid, {}).get("status") == "ASSIGNED"})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        health = requests.get(f"{served.base}/experiments/{eid}/health", headers=viewer, timeout=30).json()
        if sum(health["exposures"].values()) >= len(arms):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"exposures did not arrive: {health['exposures']} of {len(arms)}")
    rng = random.Random(seed)
    now = datetime.now(UTC).isoformat()
    events = []
    for unit, arm in arms.items():
        events.append({"eventId": f"rev-{unit}", "unitId": unit, "metric": "revenue", "timestamp": now,
                       "value": round(rng.gauss(54.99 if arm == "treatment" else 49.99, 8), 2), "region": "DE",
                       "preValue": round(rng.gauss(50, 8), 2)})
        refunded = rng.random() < (0.45 if arm == "treatment" else 0.03)
        events.append({"eventId": f"ref-{unit}", "unitId": unit, "metric": "refund", "timestamp": now,
                       "value": 1.0 if refunded else 0.0, "region": "DE"})
    for i in range(0, len(events), 500):
        resp = requests.post(f"{served.base}/experiments/kpi-events", headers=service, timeout=60,
                             json={"events": events[i:i + 500]})
        assert resp.status_code == 200 and resp.json()["accepted"] == len(events[i:i + 500]), resp.text
    return arms


def test_a_whole_lifecycle_from_the_console(served, open_page):
    cohort = frozen_cohort()
    pm, watch = open_page()
    sign_in(pm, served, "alice", "pm")
    screenshot(pm, "experiments-empty")
    pm.get_by_role("link", name="New experiment").click()
    assert unlabelled_controls(pm) == []
    # The API's own validation message comes back onto the form (no name, no primary KPI).
    pm.locator("#create-button").click()
    assert pm.locator("#form-errors").is_visible()
    assert "name" in pm.locator("#form-errors").inner_text()
    screenshot(pm, "new-experiment-errors")
    only_refusal(watch, 422)
    pm.get_by_label("Name", exact=True).fill("Annual plan +10%")
    pm.get_by_label("Hypothesis", exact=True).fill(
        "A 10% higher annual price lifts revenue per user without more refunds")
    pm.get_by_label("Success criteria").fill("revenue per user up; refunds stay under 8%")
    pm.get_by_label("Frozen holdout cohort").select_option(cohort)
    pm.get_by_label("Primary KPI metric").fill("revenue")
    pm.get_by_label("Guardrails, one per line").fill("refund:max:0.08:KILL")
    pm.get_by_label("Required approvers").fill("bob")
    pm.locator("#create-button").click()
    pm.wait_for_url("**/console/experiments/exp-*")
    eid = pm.url.split("/experiments/")[1].split("?")[0]
    assert pm.locator("#experiment-state").inner_text() == "DRAFT"
    act(pm, "submit")
    pm.wait_for_url(f"**/experiments/{eid}?done=submit")
    assert pm.locator("#experiment-state").inner_text() == "PENDING_APPROVAL"

    # Four eyes: alice, now holding the approver role, is refused on her own experiment.
    self_approver, watch2 = open_page()
    sign_in(self_approver, served, "alice", "approver")
    self_approver.goto(f"{served.console}/experiments/{eid}")
    act(self_approver, "approve", "looks fine to me")
    assert self_approver.locator("#error-code").inner_text() == "FOUR_EYES"
    screenshot(self_approver, "approval-refused-for-author")
    only_refusal(watch2, 403)

    approver, watch3 = open_page()
    sign_in(approver, served, "bob", "approver")
    approver.locator("#waiting-link").click()
    assert approver.locator(f"#experiment-list tr[data-id='{eid}']").count() == 1
    screenshot(approver, "waiting-for-my-approval")
    approver.goto(f"{served.console}/experiments/{eid}")
    act(approver, "approve", "refund guardrail is strict enough")
    approver.wait_for_url(f"**/experiments/{eid}?done=approve")
    assert approver.locator("#experiment-state").inner_text() == "APPROVED"
    assert "refund guardrail is strict enough" in approver.locator("#approvals").inner_text()

    operator, watch4 = open_page()
    sign_in(operator, served, "carol", "operator")
    operator.goto(f"{served.console}/experiments/{eid}")
    act(operator, "start")
    operator.wait_for_url(f"**/experiments/{eid}?done=start")
    assert operator.locator("#experiment-state").inner_text() == "RUNNING"

    _traffic(served, eid)
    swept = requests.post(f"{served.base}/experiments/sweep", headers=bearer("carol", ["operator"]), json={},
                          timeout=120)
    assert swept.status_code == 200, swept.text
    operator.goto(f"{served.console}/experiments/{eid}")
    health = requests.get(f"{served.base}/experiments/{eid}/health", headers=bearer("v", ["viewer"]), timeout=30)
    info = {k: health.json()[k] for k in ("exposures", "unitsWithKpis", "guardrails")}
    assert operator.locator("#experiment-state").inner_text() == "KILLED", info
    guard = operator.locator("#guardrails")
    assert guard.locator("svg.chart").count() >= 1
    assert guard.locator("g.marker.kill").count() >= 1, "the kill marker is on the guardrail chart"
    assert guard.locator("circle.point").count() >= 1 and guard.locator("line.limit-line").count() >= 1
    assert "BREACHED" in guard.inner_text()
    assert operator.locator("#health svg.chart polyline.series").count() == 2

    act(operator, "analyse")
    operator.wait_for_url(f"**/experiments/{eid}?done=analyse")
    results = operator.locator("#results")
    assert results.locator("svg.chart rect.estimate").count() >= 1
    verdict = results.locator(".verdict").first.inner_text()
    assert verdict.startswith("treatment: revenue per user") and "CI" in verdict
    assert "a guardrail was breached" in verdict
    screenshot(operator, "experiment-killed")

    # Keyboard: the skip link comes first, and Enter moves focus into the page.
    operator.keyboard.press("Tab")
    assert operator.evaluate("document.activeElement.className") == "skip"
    operator.keyboard.press("Enter")
    assert operator.evaluate("document.activeElement.id") == "main"

    for path, name in (("/experiments", "experiments"), ("/holdouts", "holdouts"), ("/program", "program"),
                       ("/ledger", "ledger"), (f"/ledger/reports/{eid}", "board-report")):
        operator.goto(f"{served.console}{path}")
        assert unlabelled_controls(operator) == [], path
        screenshot(operator, name)
    operator.goto(f"{served.console}/ledger/reports/{eid}")
    report = operator.locator("main").inner_text()
    assert "refund guardrail is strict enough" in report
    assert operator.locator("#guardrails g.marker.kill").count() >= 1 and "treatment: revenue per user" in report
    operator.goto(f"{served.console}/ledger")
    assert "VERIFIED" in operator.locator("#integrity-badge").inner_text()
    operator.goto(f"{served.console}/holdouts")
    assert operator.locator("svg.chart .gauge-target").count() >= 1
    for w in (watch, watch3, watch4):
        errors, failed = w.take()
        assert errors == [] and failed == [], (errors, failed)


def test_board_report_prints_to_pdf_with_its_charts(served, open_page):
    from functions.models.experiments import KpiEvent
    from functions.services.experiments.kpi import ingest
    from functions.services.sweep import run_sweep
    from tests.support.factories import expose, kpi

    eid = running_experiment()
    rng = random.Random(5)
    arms = {f"u{i}": ("control" if i % 2 else "treatment") for i in range(120)}
    expose(eid, arms)
    for round_ in range(3):  # three sweeps over growing data: lines, not single points
        part = dict(list(arms.items())[round_ * 40:(round_ + 1) * 40])
        ingest([KpiEvent.model_validate(kpi(u, "refund", 1.0 if rng.random() < 0.1 else 0.0)) for u in part]
               + [KpiEvent.model_validate(kpi(u, "revenue", rng.uniform(40, 60))) for u in part])
        run_sweep(run_key=f"report-{round_}")
    page, watch = open_page()
    sign_in(page, served, "dora", "viewer")
    page.goto(f"{served.console}/ledger/reports/{eid}")
    page.emulate_media(media="print")
    charts = page.locator("svg.chart")
    assert charts.count() >= 2
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 200 and box["height"] > 30
    assert page.locator("header.top").is_hidden()
    with_charts = page.pdf(format="A4", print_background=True)
    (screenshot(page, "board-report-print"))
    page.evaluate("document.querySelectorAll('svg.chart').forEach(s => s.remove())")
    without = page.pdf(format="A4", print_background=True)
    assert with_charts.startswith(b"%PDF")
    # Every chart is vector drawing in the PDF: removing them removes those drawing operations.
    assert pdf_drawing_ops(with_charts) > pdf_drawing_ops(without) + 10
    from tests.console.browser import ARTIFACTS

    (ARTIFACTS / "board-report.pdf").write_bytes(with_charts)
    errors, failed = watch.take()
    assert errors == [] and failed == [], (errors, failed)
