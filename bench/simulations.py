"""Operating characteristics of the statistical engine, by seeded Monte-Carlo simulation: the
larger version of tests/unit/stats (same functions, bench/simulation.py, many
more replications), each rate printed with its 95% Monte-Carlo (Wilson) interval.

- A/A false-positive rate of the fixed-horizon Welch test (nominal 5%)
- A/A with a guardrail checked at 50 sweeps: always-valid confidence sequence vs the naive
  repeated t-test (the peer: what a dashboard that re-tests every sweep would kill)
- power of a true 5% lift at the sample size the power module plans (nominal 80%)
- fraudulent whales in one arm: naive vs bias-corrected lift, and how often the one-sided
  fraud removal is flagged

    python -m bench simulations [--seed 2026] [--quick]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bench.report import emit
from bench.simulation import (
    Mean,
    Rate,
    aa_false_positives,
    fraud_whales,
    peeking_false_kills,
    power_at_planned_sample,
)

FULL = {"aa": 50_000, "power": 20_000, "peeking": 10_000, "whales": 2_000}
QUICK = {"aa": 2_000, "power": 1_000, "peeking": 500, "whales": 100}


def show(label: str, value: Rate | Mean, nominal: str = "") -> None:
    low, high = value.ci()
    if isinstance(value, Rate):
        print(f"{label:48s} {value.rate:8.4f}  95% MC CI [{low:.4f}, {high:.4f}]  ({value.hits}/{value.sims})"
              f"{'  nominal ' + nominal if nominal else ''}")
    else:
        print(f"{label:48s} {value.mean:+8.4f}  95% MC CI [{low:+.4f}, {high:+.4f}]  ({len(value.values)} sims)"
              f"{'  nominal ' + nominal if nominal else ''}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench simulations")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sims = QUICK if args.quick else FULL
    seeds = np.random.SeedSequence(args.seed).spawn(4)
    seconds: dict[str, float] = {}
    results: dict[str, Any] = {}

    started = time.perf_counter()
    aa = aa_false_positives(np.random.default_rng(seeds[0]), sims=sims["aa"], n=300)
    seconds["aa"] = time.perf_counter() - started
    show("A/A fixed-horizon Welch false positives", aa, "0.05")
    results["aaFalsePositive"] = aa.to_dict()

    started = time.perf_counter()
    sequential, naive = peeking_false_kills(np.random.default_rng(seeds[1]), sims=sims["peeking"], looks=50,
                                            per_look=40)
    seconds["peeking"] = time.perf_counter() - started
    show("A/A guardrail, 50 sweeps: always-valid kills", sequential, "<= 0.05")
    show("A/A guardrail, 50 sweeps: naive t-test kills", naive, "0.05 (claimed)")
    results["peekingFalseKill"] = {"sequential": sequential.to_dict(), "naiveRepeatedTTest": naive.to_dict(),
                                   "looks": 50, "unitsPerLookPerArm": 40}

    started = time.perf_counter()
    detected, n = power_at_planned_sample(np.random.default_rng(seeds[2]), sims=sims["power"], mean=50.0, sd=20.0,
                                          mde_relative=0.05)
    seconds["power"] = time.perf_counter() - started
    show(f"power of a true 5% lift at planned n={n}/arm", detected, "0.80")
    results["powerAtPlannedSample"] = {**detected.to_dict(), "unitsPerArm": n}

    started = time.perf_counter()
    whales = fraud_whales(np.random.default_rng(seeds[3]), sims=sims["whales"], n=4000, whales=15)
    seconds["whales"] = time.perf_counter() - started
    show("fraud whales: naive lift (true 0)", whales.naive_lift)
    show("fraud whales: bias-corrected lift (true 0)", whales.corrected_lift)
    show("fraud whales: naive p < 0.05", whales.naive_significant, "0.05")
    show("fraud whales: corrected p < 0.05", whales.corrected_significant, "0.05")
    show("fraud whales: flagged UNTRUSTWORTHY", whales.flagged_untrustworthy, "1.0")
    results["fraudWhales"] = whales.to_dict()

    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    # Ours = the always-valid guardrail's false-kill rate under 50 peeks; the peer is the naive
    # repeated t-test on the same data (lower is better; ratio_vs > 1 means fewer false kills).
    # With zero false kills the ratio is undefined (None); the upper CI bound is in extra.
    emit("simulations", "A/A false-kill rate over 50 sweeps", sequential.rate,
         {"naive_repeated_t_test": naive.rate},
         {"seed": args.seed, "quick": args.quick, "sims": sims},
         higher_is_better=False,
         extra={"results": results, "seconds": {k: round(v, 2) for k, v in seconds.items()}})
    return 0
