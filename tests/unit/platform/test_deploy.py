"""deploy.sh --dry-run names every entry point of main.py with the trigger functions/triggers.py declares."""

from __future__ import annotations

import shlex
import subprocess

from functions.config import Topics
from functions.triggers import FIRESTORE_FUNCTIONS, HTTP_FUNCTIONS, PUBSUB_FUNCTIONS, SWEEP_SCHEDULE
from localdev.targets import entry_points
from tests.conftest import ROOT


def dry_run() -> list[list[str]]:
    """Each printed command as its argv (the script prints shell-quoted words)."""
    out = subprocess.run(
        ["bash", str(ROOT / "deploy.sh"), "--dry-run", "--project", "demo-check"],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60,
    )
    return [shlex.split(line[2:]) for line in out.stdout.splitlines() if line.startswith("+ ")]


def deployed() -> dict[str, list[str]]:
    return {argv[3]: argv[4:] for argv in dry_run() if argv[:3] == ["gcloud", "functions", "deploy"]}


def test_every_entry_point_is_deployed_with_its_trigger():
    functions = deployed()
    points = entry_points()
    assert set(functions) == set(points)
    assert set(HTTP_FUNCTIONS) == {n for n, kind in points.items() if kind == "http"}
    for name in HTTP_FUNCTIONS:
        assert "--trigger-http" in functions[name]
    topics = Topics()
    for name, topic_key in PUBSUB_FUNCTIONS.items():
        assert f"--trigger-topic={getattr(topics, topic_key)}" in functions[name]
    for name, (_collection, pattern) in FIRESTORE_FUNCTIONS.items():
        assert "--trigger-event-filters=type=google.cloud.firestore.document.v1.written" in functions[name]
        assert f"--trigger-event-filters-path-pattern=document={pattern}" in functions[name]


def test_every_topic_rules_indexes_and_scheduler_are_deployed():
    commands = dry_run()
    created = {argv[4] for argv in commands if argv[:4] == ["gcloud", "pubsub", "topics", "create"]}
    assert set(Topics().all().values()) <= created
    assert ["firebase", "deploy", "--only", "firestore:rules,firestore:indexes"] in [argv[:4] for argv in commands]
    scheduler = [argv for argv in commands if argv[:5] == ["gcloud", "scheduler", "jobs", "create", "pubsub"]]
    assert len(scheduler) == 1 and f"--schedule={SWEEP_SCHEDULE}" in scheduler[0]


def test_dry_run_touches_nothing_and_exits_zero():
    out = subprocess.run(["bash", str(ROOT / "deploy.sh"), "--dry-run"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0
    assert out.stdout.strip().endswith("# dry run: nothing was deployed")
