"""`make run` flags: ARGS pass through to localdev.run, and --quiet keeps the terminal to the
story and the URLs while details and the functions' logs go to the log file."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.run import Output, parse_args
from tests.conftest import ROOT


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in saved:
            handler.close()
    root.handlers[:] = saved
    root.setLevel(level)


def _dry_run(*args: str) -> str:
    """The command `make run` would run; the same whether or not this suite runs under make
    (a parent make's MAKEFLAGS/MAKELEVEL would add "Entering directory" lines)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    out = subprocess.run(["make", "--no-print-directory", "-n", "run", *args], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60, env=env).stdout
    [command] = [line for line in out.splitlines() if "-m localdev.run" in line]
    return command.rstrip()


def test_make_run_passes_args_through() -> None:
    assert _dry_run("ARGS=--quiet --no-demo").endswith("-m localdev.run --quiet --no-demo")
    assert _dry_run().endswith("-m localdev.run")


def test_flags_parse() -> None:
    args = parse_args(["--quiet", "--no-demo"])
    assert args.quiet and args.no_demo and not args.exit_after_demo
    assert not parse_args([]).quiet
    with pytest.raises(SystemExit):
        parse_args(["--quiet=yes"])


def test_quiet_prints_the_story_and_files_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   root_handlers: None) -> None:
    log_path = tmp_path / "run" / "localdev.log"
    log_path.parent.mkdir()
    log_path.write_text("a previous run\n")
    out = Output(quiet=True, log_path=log_path)
    out.send_logs_to_file()
    out.story("functions at http://127.0.0.1:8000:")
    out.detail("push subscriptions:")
    logging.getLogger("functions.http").warning("event handled")
    printed = capsys.readouterr().out
    assert printed == "functions at http://127.0.0.1:8000:\n"
    logged = log_path.read_text()
    assert "push subscriptions:" in logged and '"message": "event handled"' in logged
    assert "a previous run" not in logged  # one run's log


def test_without_quiet_everything_is_printed_and_no_file_is_written(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    root_handlers: None) -> None:
    log_path = tmp_path / "localdev.log"
    before = logging.getLogger().handlers[:]
    out = Output(quiet=False, log_path=log_path)
    out.send_logs_to_file()
    out.story("console: http://127.0.0.1:8000/console/")
    out.detail("push subscriptions:")
    assert capsys.readouterr().out == "console: http://127.0.0.1:8000/console/\npush subscriptions:\n"
    assert logging.getLogger().handlers == before
    assert not log_path.exists()


def test_the_demo_rounds_a_messages_numbers_for_people_and_keeps_anything_else():
    from localdev.demo import _for_people

    exact = '{"action":"KILL","bound":0.11727774053495457,"units":400}'
    assert _for_people(exact) == '{"action":"KILL","bound":0.117,"units":400}'
    assert _for_people("not json") == "not json" and _for_people("[1.23456]") == "[1.23456]"
    assert _for_people(None) is None
