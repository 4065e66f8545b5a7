"""The v1 hash: published vectors, uniformity, independence across salts, stability across processes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from functions.core.assignment.hashing import bucket, bucket_array, buckets
from functions.core.errors import Unprocessable
from tests.conftest import ROOT

VECTORS = json.loads((ROOT / "tests/data/assignment_vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['unitId'][:12]}|{v['salt']}")
def test_published_vectors(vector):
    assert bucket(vector["unitId"], vector["salt"], vector["version"]) == vector["bucket"]
    assert int(vector["hex64"], 16) / 2**64 == vector["bucket"]


def test_batch_forms_equal_single():
    ids = [f"u{i}" for i in range(1000)] + [v["unitId"] for v in VECTORS]
    assert buckets(ids, "s") == [bucket(u, "s") for u in ids]
    assert bucket_array(ids, "s").tolist() == [bucket(u, "s") for u in ids]


def test_unknown_version_is_a_coded_error():
    with pytest.raises(Unprocessable) as err:
        bucket("u", "s", 2)
    assert err.value.code == "UNKNOWN_HASH_VERSION"


def test_uniform_over_100_buckets():
    b = np.array(buckets((f"user-{i}" for i in range(100_000)), "uniformity"))
    assert b.min() >= 0.0 and b.max() < 1.0
    counts = np.bincount((b * 100).astype(int), minlength=100)
    assert stats.chisquare(counts).pvalue > 0.001


def test_salts_are_independent():
    ids = [f"user-{i}" for i in range(100_000)]
    a = np.array(buckets(ids, "cohort-a")) < 0.10
    b = np.array(buckets(ids, "cohort-b")) < 0.10
    overlap = int((a & b).sum())
    # Under independence overlap ~ Binomial(100000, 0.01): mean 1000, sd ~31.5.
    assert stats.binomtest(overlap, len(ids), 0.01).pvalue > 0.001
    assert stats.pearsonr(np.array(buckets(ids, "cohort-a")), np.array(buckets(ids, "cohort-b")))[1] > 0.001


def test_same_bucket_in_another_process():
    ids = ["user-1", "ünïcødé-用户", "wallet:42"]
    code = (
        "import json,sys; from functions.core.assignment.hashing import bucket;"
        f"print(json.dumps([bucket(u, 'stable-salt') for u in {ids!r}]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout) == [bucket(u, "stable-salt") for u in ids]


def test_growing_a_percentage_never_moves_a_unit_out():
    b = np.array(buckets((f"u{i}" for i in range(20_000)), "grow"))
    previous = np.zeros_like(b, dtype=bool)
    for pct in (0.01, 0.05, 0.10, 0.25, 0.50, 1.0):
        inside = b < pct
        assert not (previous & ~inside).any()
        previous = inside
