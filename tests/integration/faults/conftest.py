"""Fault-injection fixtures: a Firestore emulator of the fault tests' own that can crash and come
back, a hook that crashes it at an exact commit, and a full dump of the database for comparing
end states.

Why a dedicated emulator: the session emulators are shared by every integration test, so
killing them would break the others. This one listens on its own port; the test points the
client at it (FIRESTORE_EMULATOR_HOST) and everything is put back afterwards. Pub/Sub stays on
the session emulator.

How a crash keeps the durable state: the emulator holds data in memory only, so right before
it is killed the hook exports the database (the emulator's `:export` endpoint) and the restart
imports that export (`--import-data`). That models a backend that went down mid-operation and
came back with everything committed before the crash, and nothing after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from functions.adapters import firestore as fs_adapter
from functions.config import reset_settings, settings
from localdev.emulators import Emulators, EmulatorUnavailable, _answers, free_port

# gapic methods of the Firestore client that talk to the backend (all take `retry` and `timeout`)
_RPCS = ("get_document", "list_documents", "update_document", "delete_document", "batch_get_documents",
         "begin_transaction", "commit", "rollback", "run_query", "run_aggregation_query", "partition_query",
         "list_collection_ids", "batch_write", "create_document")


class RestartableFirestore:
    """A Firestore emulator on its own port that can be crashed (SIGKILL) and restarted from an export."""

    def __init__(self, project_id: str, workdir: Path) -> None:
        self.project_id = project_id
        self.workdir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._launcher = Emulators(project_id=project_id, log_dir=workdir)
        self._java, self._jar, _ = self._launcher._locate()
        self.starts = 0
        self.crashes = 0

    # -- process ---------------------------------------------------------------------------

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._launcher.processes.get("firestore")

    def start(self, import_from: Path | None = None, timeout: float = 120.0) -> None:
        self.starts += 1
        cmd = [self._java, "-Duser.language=en", "-cp", str(self._jar),
               "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start", "--host=127.0.0.1",
               f"--port={self.port}", f"--rules={self._launcher.rules_file}", f"--project_id={self.project_id}"]
        if import_from is not None:
            cmd.append(f"--import-data={import_from}")
        self._launcher._spawn("firestore", cmd, env={})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EmulatorUnavailable(f"fault-test Firestore emulator exited early; see {self.workdir}")
            if _answers(self.host):
                return
            time.sleep(0.1)
        raise EmulatorUnavailable(f"fault-test Firestore emulator did not answer within {timeout:.0f}s")

    def crash(self) -> None:
        """SIGKILL: no graceful shutdown, whatever was in memory and not exported is gone."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        self.crashes += 1

    def restart(self, import_from: Path | None) -> None:
        """Crash (if running) and come back with exactly the state of `import_from`."""
        self.crash()
        self.start(import_from)
        fresh_client()

    def stop(self) -> None:
        self._launcher.stop()

    # -- data ------------------------------------------------------------------------------

    def export(self) -> Path:
        """The emulator's own export of the whole database; returns the metadata file to import."""
        directory = self.workdir / f"export-{uuid.uuid4().hex[:8]}"
        directory.mkdir(parents=True)
        body = json.dumps({"database": f"projects/{self.project_id}/databases/(default)",
                           "export_directory": str(directory), "export_name": "snap"}).encode()
        req = urllib.request.Request(f"http://{self.host}/emulator/v1/projects/{self.project_id}:export", data=body,
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()
        metadata = directory / "snap" / "snap.overall_export_metadata"
        assert metadata.exists(), f"emulator export wrote no metadata under {directory}"
        return metadata


def fresh_client() -> None:
    """Drop the cached client (and its gRPC channel) so the next db() connects anew."""

    old = fs_adapter._client
    fs_adapter.reset_client()
    if old is not None:
        with contextlib.suppress(Exception):
            old.close()


@contextlib.contextmanager
def dedicated_firestore(workdir: Path) -> Iterator[RestartableFirestore]:
    """Start a restartable emulator and point the client at it; everything is put back after."""
    try:
        fs = RestartableFirestore(settings().project_id, workdir)
        fs.start()
    except EmulatorUnavailable as exc:
        pytest.fail(f"EMULATORS UNAVAILABLE - fault tests cannot run:\n{exc}", pytrace=False)
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = fs.host
    reset_settings()
    fresh_client()
    try:
        yield fs
    finally:
        fresh_client()
        fs.stop()
        if previous is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous
        reset_settings()
        fresh_client()


@pytest.fixture
def crashable_firestore(emulators, tmp_path) -> Iterator[RestartableFirestore]:
    """A dedicated, restartable Firestore emulator; the client points at it for this test only."""
    with dedicated_firestore(tmp_path) as fs:
        yield fs


class CommitCrash:
    """Counts the commit RPCs of the current Firestore client and crashes the backend at one of them.

    The crash point is the first commit whose written document paths satisfy `where` (or the
    `crash_at`-th commit). `mode="before"`: that commit never reaches the backend: the state is
    exported, the emulator killed, and the real commit RPC then fails with the real UNAVAILABLE.
    `mode="after"`: the commit is applied, then the emulator dies before its response arrives
    (the caller gets UNAVAILABLE and cannot know the commit landed). After the crash every RPC
    fails fast (the client's own retry would only wait 60 s for the same error). With neither
    `where` nor `crash_at` it only counts.
    """

    def __init__(self, fs: RestartableFirestore, *, crash_at: int | None = None,
                 where: Callable[[list[str]], bool] | None = None, mode: str = "before") -> None:
        assert mode in ("before", "after")
        self.fs, self.crash_at, self.where, self.mode = fs, crash_at, where, mode
        self.commits = 0
        self.crashed = False
        self.export: Path | None = None
        self.crashed_paths: list[str] = []  # documents the crashed commit writes

    def install(self) -> CommitCrash:
        api = fs_adapter.db()._firestore_api
        for name in _RPCS:
            original = getattr(api, name, None)
            if original is not None:
                setattr(api, name, self._wrap(name, original))
        return self

    def _hit(self, paths: list[str]) -> bool:
        if self.where is not None:
            return self.where(paths)
        return self.commits == self.crash_at

    def _wrap(self, name: str, original):
        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "commit" and not self.crashed:
                self.commits += 1
                request = kwargs.get("request") or (args[0] if args else {})
                writes = request.get("writes", []) if isinstance(request, dict) else request.writes
                paths = [_write_path(w) for w in writes]
                if self._hit(paths):
                    self.crashed_paths = paths
                    if self.mode == "after":
                        original(*args, **kwargs)
                    self._crash()
                    if self.mode == "after":
                        raise gexc.ServiceUnavailable("connection reset before the commit response arrived")
            if self.crashed:
                kwargs["retry"], kwargs["timeout"] = None, 10.0
            return original(*args, **kwargs)

        return call

    def _crash(self) -> None:
        self.export = self.fs.export()
        self.fs.crash()
        self.crashed = True

    def recover(self) -> None:
        """The backend comes back with what was durable at the crash."""
        assert self.crashed and self.export is not None, "the crash point was never reached"
        self.fs.restart(self.export)

    @property
    def crashed_outbox_mark(self) -> bool:
        """The crashed commit only marks outbox messages as sent (after they were published)."""
        return bool(self.crashed_paths) and all("/outbox/" in p for p in self.crashed_paths)


def _write_path(write: Any) -> str:
    for attr in ("update", "delete"):
        value = write.get(attr) if isinstance(write, dict) else getattr(write, attr, None)
        if value:
            return value if isinstance(value, str) else value.name
    transform = write.get("transform") if isinstance(write, dict) else getattr(write, "transform", None)
    return transform.document if transform else ""


# -- comparing whole-database dumps (tests.support.database.dump) ---------------------------------


TIME_FIELDS = frozenset({"updatedAt", "endedAt", "at", "createdAt", "sentAt", "recordedAt", "contaminatedAt",
                         "timestamp"})
HASH_FIELDS = frozenset({"hash", "prevHash", "headHash", "rootHash", "signature", "previousRoot", "headsRoot",
                         "fromRoot", "path"})


def scrub(value: Any, time_fields: frozenset[str] = TIME_FIELDS) -> Any:
    """Replace what legitimately differs between two runs (wall-clock times, and the hashes and
    signatures computed over them) by placeholders; presence and everything else still count.
    Outbox payloads and canonical ledger entries are JSON text: they are parsed and scrubbed too."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in time_fields and v is not None:
                out[k] = "<time>"
            elif k in HASH_FIELDS and v is not None:
                out[k] = "<hash>"
            elif k == "chainHeads" and isinstance(v, dict):
                out[k] = {c: [h[0], "<hash>"] for c, h in v.items()}
            elif k in ("payload", "canonical") and isinstance(v, str):  # JSON text (outbox, ledger)
                out[k] = scrub(json.loads(v), time_fields)
            else:
                out[k] = scrub(v, time_fields)
        return out
    if isinstance(value, list):
        return [scrub(v, time_fields) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def merge_shards(state: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sharded counters/aggregates land on a random shard: sum the shards of one key."""
    out: dict[str, dict[str, Any]] = {}
    for path, doc in state.items():
        parts = path.split("/")
        if len(parts) >= 2 and parts[-2] == "aggregates":  # {variant}__{metric}__{shard}
            key = "/".join([*parts[:-1], parts[-1].rsplit("__", 1)[0]])
        elif len(parts) >= 2 and parts[-2] == "counters":  # s{shard}
            key = "/".join([*parts[:-1], "*"])
        else:
            out[path] = doc
            continue
        merged = out.setdefault(key, {})
        for k, v in doc.items():
            if k == "shard":
                continue
            if isinstance(v, int | float) and not isinstance(v, bool):
                merged[k] = merged.get(k, 0) + v
            else:
                merged[k] = v
    return out
