"""HTTP function `analytics`: bias-corrected analyses, fraud flags, data quality."""

from functions.api.router import Router

router = Router("analytics", "Bias-corrected analytics", "Exclusions, corrections, tests, data quality, trust.")
