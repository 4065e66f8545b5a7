#!/usr/bin/env bash
# One-time (and idempotent) set-up used by `make run` and `make test`: a virtualenv with the
# pinned dependencies, and Google's emulators + Java 17 if they are missing and apt can get them.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Python 3.11+ is required (found $("$PYTHON" --version 2>&1))" >&2
  exit 2
fi

if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
STAMP=.venv/.requirements.sha
WANT=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  echo "$WANT" > "$STAMP"
fi

have_emulators() {
  command -v java >/dev/null 2>&1 &&
  ls /usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar >/dev/null 2>&1 &&
  ls /usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator >/dev/null 2>&1
}
apt_install() {
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || return 1
  else
    return 1
  fi
}
if [[ -z "${FIRESTORE_EMULATOR_HOST:-}" ]] && ! have_emulators; then
  apt_install openjdk-17-jre-headless google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator || true
  if ! have_emulators; then
    echo "WARNING: Google's Firestore/Pub/Sub emulators or Java 17 are missing and could not be installed." >&2
    echo "         Install: apt-get install openjdk-17-jre-headless google-cloud-cli-firestore-emulator \\" >&2
    echo "                  google-cloud-cli-pubsub-emulator   (Google Cloud apt repository)" >&2
    echo "         Integration tests and the run command will fail until they are present." >&2
  fi
fi
# For `make test` only (--tests): Debian's Chromium runs the console's browser tests (Playwright drives it; Playwright's own browser
# download cannot be reached). The tests fail loudly when it is missing, so say so here too.
if [[ "${1:-}" == "--tests" ]] && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium || echo "WARNING: chromium is missing and could not be installed; the console browser tests will fail." >&2
fi
# For `make test` only: the BigQuery API emulator the BigQuery metric-store tests run against, in its
# own venv (.venv-bqemulator; its pins clash with the project's). The tests fail loudly without it.
if [[ "${1:-}" == "--tests" ]]; then
  bash scripts/setup_bqemulator.sh
fi
# wrk drives the HTTP benchmarks (bench/ only; not needed to run or test).
command -v wrk >/dev/null 2>&1 || apt_install wrk || true
