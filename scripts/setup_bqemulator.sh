#!/usr/bin/env bash
# The BigQuery API emulator for the tests (bqemulator, a local REST server on DuckDB), in its own
# virtualenv .venv-bqemulator: it pins sqlglot<30.12 and duckdb 1.5.5, which the project's own
# venv must not get. Idempotent: a stamp of the pins skips the install when nothing changed.
# `[testing]` matters: plain `bqemulator` registers a pytest plugin that needs testcontainers.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv-bqemulator
# numpy: bqemulator registers DuckDB UDFs at start, which need it (not declared by the package)
PINS=("bqemulator[testing]==1.4.0" "duckdb==1.5.5" "duckdb-extension-spatial==1.5.5" "numpy==2.4.6")

if [[ -L "$VENV" ]]; then
  exit 0  # a shared, already built venv linked in (a worktree); its owner keeps it up to date
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha"
WANT=$(printf '%s\n' "${PINS[@]}" | sha256sum | cut -d' ' -f1)
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
  "$VENV/bin/bqemulator" --help >/dev/null
  echo "$WANT" > "$STAMP"
fi
# bqemulator loads DuckDB's spatial extension at start and would download it: install the one
# the duckdb-extension-spatial wheel ships, offline, into DuckDB's extension directory (under the
# home directory, outside the venv: so this runs every time, about a second, and is idempotent).
"$VENV/bin/python" - <<'PY'
import pathlib

import duckdb
import duckdb_extension_spatial as pkg

try:
    duckdb.connect().execute("LOAD spatial")
    raise SystemExit(0)
except duckdb.Error:
    pass
root = pathlib.Path(pkg.__file__).resolve().parent
found = sorted(root.rglob("*.duckdb_extension"))
if not found:
    raise SystemExit(f"no .duckdb_extension file in {root}")
con = duckdb.connect()
con.execute(f"INSTALL '{found[0]}'")
con.execute("LOAD spatial")
print(f"duckdb spatial extension installed from {found[0].name}")
PY
