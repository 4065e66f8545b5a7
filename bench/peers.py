"""Peers whose dependencies conflict with ours (gbstats needs numpy<2) run in their own venv,
`.venv-peers`, created on first use; we call it with JSON in and JSON out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-peers"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ["numpy<2", "gbstats==0.8.0"]


class PeerUnavailable(RuntimeError):
    pass


def ensure() -> Path:
    if not PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    probe = subprocess.run([str(PYTHON), "-c", "import gbstats"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        done = subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", *REQUIREMENTS], capture_output=True,
                              text=True, timeout=900)
        if done.returncode != 0:
            raise PeerUnavailable(f"could not install {REQUIREMENTS} into {VENV}: {done.stderr[-500:]}")
    return PYTHON


def run(script: str, payload: Any, timeout: float = 600) -> Any:
    """Run `script` (reads JSON from stdin, prints JSON last) in the peers venv."""
    python = ensure()
    out = subprocess.run([str(python), "-c", script], input=json.dumps(payload), capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise PeerUnavailable(out.stderr[-1000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


GBSTATS_SEQUENTIAL = """
import json, sys
from gbstats.models.statistics import SampleMeanStatistic
from gbstats.frequentist.tests import SequentialTwoSidedTTest, SequentialConfig
out = []
for case in json.load(sys.stdin):
    a = SampleMeanStatistic(n=case["a"][0], sum=case["a"][1], sum_squares=case["a"][2])
    b = SampleMeanStatistic(n=case["b"][0], sum=case["b"][1], sum_squares=case["b"][2])
    cfg = SequentialConfig(alpha=case["alpha"], sequential_tuning_parameter=case["tuning"],
                           difference_type="relative" if case["relative"] else "absolute")
    t = SequentialTwoSidedTTest(a, b, cfg)
    out.append([float(t.point_estimate), *[float(x) for x in t.confidence_interval]])
print(json.dumps(out))
"""
