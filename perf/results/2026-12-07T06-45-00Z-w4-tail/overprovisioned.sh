#!/usr/bin/env bash
# A sluice binary ($SLUICE_BIN) whose broker runs with --overprovisioned, for harnesses
# that take a binary: `SLUICE_BIN=/abs/sluice overprovisioned.sh broker ...`.
[ -n "${SLUICE_BIN:-}" ] || { echo "overprovisioned.sh: set SLUICE_BIN to a sluice binary" >&2; exit 2; }
if [ "$1" = broker ]; then shift; exec "$SLUICE_BIN" broker --overprovisioned "$@"; fi
exec "$SLUICE_BIN" "$@"
