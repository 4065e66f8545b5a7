"""The long API fuzz: every HTTP function, every role, many examples per operation (schema-driven,
then hostile values at and past every limit, see tests/support/fuzz.py), on the emulators; prints
cases run and failures (none expected).

    python -m bench fuzz [--examples 200] [--hostile 200]
"""

from __future__ import annotations

import argparse
import time

from bench.report import emit
from functions.triggers import API_FUNCTIONS
from localdev.emulators import Emulators


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fuzz")
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--hostile", type=int, default=None, help="hostile cases per operation (default: --examples)")
    args = parser.parse_args(argv)
    with Emulators():
        from tests.support.fuzz import ROLES, fuzz_function

        started = time.perf_counter()
        cases, failures = 0, []
        for name in API_FUNCTIONS:
            for role in ROLES:
                try:
                    cases += fuzz_function(name, role, args.examples, args.hostile)
                except Exception as exc:  # report every failing function/role, keep going
                    failures.append({"function": name, "role": role, "error": str(exc)[:500]})
        seconds = time.perf_counter() - started
    for failure in failures:
        print(f"FAIL {failure['function']} as {failure['role']}: {failure['error']}")
    config = {"examples": args.examples, "hostile": args.hostile or args.examples, "roles": len(ROLES)}
    emit("fuzz", "cases/s", round(cases / seconds, 1), {}, config,
         extra={"cases": cases, "failures": len(failures), "seconds": round(seconds, 1)})
    return 1 if failures else 0
