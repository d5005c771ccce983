#!/usr/bin/env bash
# On the GPU machine, from the repository root: unpack the carried runtime (once all parts are
# there), run the driver's phases, and leave results.json plus one archive of the logs in $OUT.
#   bash benchmarks/gpu/on_device.sh unpack            # after the last part has arrived
#   bash benchmarks/gpu/on_device.sh run [driver args] # e.g. --phases stock,patched
set -uo pipefail
SITE=${SITE:-/tmp/site}
RESULTS=${RESULTS:-/tmp/e3gpu/results}
case "${1:-}" in
  unpack)
    if [ ! -f "$SITE/.complete" ]; then
      mkdir -p "$SITE"
      # The parts are one xz stream cut in pieces: they must be joined in order.
      ls .gpu-carry/part-*/site.tar.xz.* | sort -t. -k4 -n | xargs cat | xz -dc -T0 | tar -x -C "$SITE" \
        && touch "$SITE/.complete"
    fi
    du -sh "$SITE"; ls "$SITE" | wc -l
    ;;
  run)
    shift
    mkdir -p "$RESULTS"
    python3 benchmarks/gpu/driver.py run --site "$SITE" --out "$RESULTS" "$@"
    rc=$?
    if [ -n "${OUT:-}" ]; then
      cp "$RESULTS/results.json" "$OUT/" 2>/dev/null
      # At most 8 files come back: the logs travel as one archive, without the import-time
      # lines (already summarised in results.json under "imports").
      mkdir -p /tmp/e3gpu/logs
      for f in "$RESULTS"/*.log; do grep -v '^import time:' "$f" > "/tmp/e3gpu/logs/$(basename "$f")"; done
      cp "$RESULTS"/bench-*.json /tmp/e3gpu/logs/ 2>/dev/null
      tar -czf "$OUT/logs.tar.gz" -C /tmp/e3gpu logs
    fi
    exit $rc
    ;;
  *) echo "usage: $0 unpack | run [driver args]" >&2; exit 2 ;;
esac
