"""Land the spillover links Firestore recorded that the metric store's `links` table lacks.

    python -m localdev.backfill_links [--cohort ID ...]

Uses the configured project and metric store (GOOGLE_CLOUD_PROJECT, METRIC_STORE=bigquery,
METRIC_DATASET, METRIC_LOCATION against a deployment; the emulators locally). Idempotent: a
second run lands nothing. Prints one JSON line (cohorts, recorded, alreadyLanded, landed).
See functions/services/metrics/backfill.py and docs/operations.md.
"""

from __future__ import annotations

import argparse
import json

from functions.services.metrics.backfill import backfill_links


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.backfill_links", description=__doc__.split("\n")[0])
    parser.add_argument("--cohort", action="append", dest="cohorts", metavar="ID",
                        help="only this cohort (repeatable); default: every frozen cohort")
    args = parser.parse_args(argv)
    print(json.dumps(backfill_links(args.cohorts).to_dict(), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
