#!/usr/bin/env bash
# After the suite: every emulator process the harness started must be gone.
cd "$(dirname "$0")/.."
PIDS_FILE=.run/test-emulator-pids
[[ -f "$PIDS_FILE" ]] || exit 0
alive=()
while read -r pid; do
  # each recorded pid leads its own process group (launcher + java child)
  [[ -n "$pid" ]] && pgrep -g "$pid" >/dev/null 2>&1 && alive+=("$pid")
done < "$PIDS_FILE"
if (( ${#alive[@]} )); then
  echo "FAIL: emulator processes still running after the suite: ${alive[*]}" >&2
  exit 1
fi
echo "emulators stopped: no stray processes"
