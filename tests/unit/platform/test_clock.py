"""One clock: only functions/core/clock.py reads the time of day. A module in functions/ or
localdev/ that calls datetime.now(, datetime.utcnow(, datetime.today(, date.today( or
time.time( fails here (durations use time.monotonic()/perf_counter(), which are allowed)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from functions.core.clock import iso_text, now_text, parse_time, timestamp_text, utc_now

ROOT = Path(__file__).resolve().parents[3]
SCANNED = (ROOT / "functions", ROOT / "localdev")
HELPER = ROOT / "functions" / "core" / "clock.py"
CLOCK_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"), ("time", "time")}


def clock_reads(source: str) -> list[str]:
    """`owner.attr(` calls that read the wall clock, by line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if (name, node.func.attr) in CLOCK_CALLS:
                found.append(f"{name}.{node.func.attr}() at line {node.lineno}")
    return found


def test_only_the_clock_module_reads_the_time_of_day() -> None:
    files = [f for d in SCANNED for f in sorted(d.rglob("*.py"))]
    assert HELPER in files and len(files) > 100
    offenders = {str(f.relative_to(ROOT)): clock_reads(f.read_text()) for f in files if f != HELPER}
    assert {k: v for k, v in offenders.items() if v} == {}
    assert clock_reads(HELPER.read_text()), "the helper itself reads the clock"


@pytest.mark.parametrize(("source", "expected"), [
    ("from datetime import UTC, datetime\nx = datetime.now(UTC)\n", 1),
    ("import datetime\nx = datetime.datetime.utcnow()\n", 1),
    ("from datetime import date\nx = date.today()\n", 1),
    ("import time\nx = time.time()\n", 1),
    ("import time\nx = time.monotonic() + time.perf_counter()\n", 0),
    ("from functions.core.clock import utc_now\nx = utc_now()\n", 0),
])
def test_the_guard_sees_each_clock_read(source: str, expected: int) -> None:
    assert len(clock_reads(source)) == expected


def test_utc_now_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = utc_now()
    after = datetime.now(UTC)
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before <= now <= after


def test_timestamp_text_is_fixed_width_utc() -> None:
    assert timestamp_text(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
    plus_two = timezone(timedelta(hours=2))
    assert timestamp_text(datetime(2026, 1, 2, 5, 4, 5, 7, tzinfo=plus_two)) == "2026-01-02T03:04:05.000007Z"
    assert timestamp_text(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z"  # naive is UTC
    text = now_text()
    assert len(text) == 27 and text.endswith("Z")
    assert parse_time(text) is not None


def test_parse_time_and_iso_text() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2026-01-02T03:04:05Z") == moment
    assert parse_time("2026-01-02T05:04:05+02:00") == moment
    assert parse_time("2026-01-02T03:04:05") == moment
    assert parse_time(moment.replace(tzinfo=None)) == moment
    assert parse_time("not a time") is None
    assert parse_time("") is None and parse_time(None) is None and parse_time(17) is None
    assert iso_text(moment) == "2026-01-02T03:04:05+00:00"
    assert iso_text("kept") == "kept" and iso_text(None) is None
