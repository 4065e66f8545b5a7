#!/usr/bin/env bash
# Copy the console screenshots the browser tests took (make test writes artifacts/console/*.png)
# into docs/screenshots, where the README and docs/console.md show them.
set -euo pipefail
cd "$(dirname "$0")/.."
for page in experiments experiment-killed board-report holdouts program ledger; do
  cp "artifacts/console/$page.png" "docs/screenshots/$page.png"
done
echo "docs/screenshots updated from artifacts/console"
