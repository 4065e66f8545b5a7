#!/usr/bin/env bash
# Vendor the Firebase JS SDK (app + auth, compat builds) into the console's static files at
# build time, pinned, from the npm registry: the console never loads a script from a CDN.
#
#   bash scripts/vendor_firebase.sh        (deploy.sh runs it before deploying `console`)
set -euo pipefail
FIREBASE_VERSION="12.19.0"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/functions/console/static/vendor"
if [[ -f "$DEST/VERSION" && "$(cat "$DEST/VERSION")" == "$FIREBASE_VERSION" ]]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm is needed to vendor the Firebase SDK" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "firebase@$FIREBASE_VERSION" >/dev/null && tar -xzf firebase-*.tgz)
mkdir -p "$DEST"
for file in firebase-app-compat.js firebase-auth-compat.js; do
  cp "$TMP/package/$file" "$DEST/$file"
done
echo "$FIREBASE_VERSION" > "$DEST/VERSION"
echo "vendored firebase@$FIREBASE_VERSION into $DEST"
