"""Ledger hashing throughput: append (seal) and verify over stored entries, side by side with
(a) a tight hashlib.sha256 loop over each stored entry's bytes - the floor for any per-entry
verifier in Python - and (b) one sha256 over all those bytes - the CPU's limit. Also the cost
of the entry signatures: signing on append, and verifying a tail no checkpoint pins yet.

    python -m bench ledger [--entries 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.report import emit
from functions.core.ledger import signing
from functions.core.ledger.entry import GENESIS_HASH, seal_entry
from functions.core.ledger.verify import verify_chain, verify_segment


def build(n: int) -> tuple[list[dict], float]:
    docs, prev = [], GENESIS_HASH
    started = time.perf_counter()
    for i in range(n):
        sealed = seal_entry(chain_id="exp-bench", seq=i, prev_hash=prev, timestamp="2026-11-24T10:00:00.000000Z",
                            actor={"uid": "sweep", "role": "service"}, action="EXPERIMENT_GUARDRAIL_ALERT",
                            subject={"experimentId": "exp-bench"},
                            payload={"from": "RUNNING", "to": "RUNNING", "version": i, "observed": 0.0123})
        docs.append(sealed.to_document())
        prev = sealed.hash
    return docs, time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ledger")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n = 50_000 if args.quick else args.entries
    docs, seal_seconds = build(n)
    canon = [d["canonical"] for d in docs]

    started = time.perf_counter()
    verdict = verify_chain("exp-bench", docs, expected_head=(n - 1, docs[-1]["hash"]))
    ours = time.perf_counter() - started
    assert verdict.ok, verdict

    sha = hashlib.sha256
    started = time.perf_counter()
    for text in canon:
        sha(text.encode()).digest()
    floor = time.perf_counter() - started

    buffer = "".join(canon).encode()  # joined outside the timing: (b) is the hash alone
    started = time.perf_counter()
    sha(buffer).digest()
    one_buffer = time.perf_counter() - started

    key = Ed25519PrivateKey.generate()
    tail = docs[-min(n, 20_000):]
    started = time.perf_counter()
    signed_tail = [{**d, **signing.sign_entry(d["hash"], key)} for d in tail]
    sign_seconds = time.perf_counter() - started
    started = time.perf_counter()  # nothing pins these: each is parsed, linked and its signature checked
    assert verify_segment("exp-bench", signed_tail, None, signing.keyring_of([key])).ok
    tail_seconds = time.perf_counter() - started

    rate = {"ours_verify": n / ours, "per_entry_sha256_loop": n / floor, "single_buffer_sha256": n / one_buffer}
    print(f"append (seal)       {n / seal_seconds:12,.0f} entries/s")
    for name, value in rate.items():
        print(f"{name:20s}{value:12,.0f} entries/s")
    emit("ledger", "entries/s (verify)", round(rate["ours_verify"]),
         {"per_entry_sha256_loop": round(rate["per_entry_sha256_loop"]),
          "single_buffer_sha256": round(rate["single_buffer_sha256"])},
         {"entries": n, "avg_entry_bytes": round(sum(map(len, canon)) / n)},
         extra={"append_entries_per_s": round(n / seal_seconds),
                "entry_signatures_per_s": round(len(tail) / sign_seconds),
                "unpinned_tail_verify_entries_per_s": round(len(tail) / max(tail_seconds, 1e-9)),
                "verify_share_of_per_entry_floor": round(rate["ours_verify"] / rate["per_entry_sha256_loop"], 3),
                "verify_share_of_single_buffer": round(rate["ours_verify"] / rate["single_buffer_sha256"], 3)})
    return 0
