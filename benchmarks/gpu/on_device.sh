#!/usr/bin/env bash
# On the GPU machine, from the repository root (README.md, "The call plan", says which call runs what):
#   bash benchmarks/gpu/on_device.sh unpack            # once the last part of .gpu-carry/ has arrived
#   bash benchmarks/gpu/on_device.sh status            # what this machine holds: parts, runtime, kits, servers
#   bash benchmarks/gpu/on_device.sh run [driver args] # e.g. --phases real-plain --budget-s 540
# `run` leaves results.json (every phase this machine ran so far) and logs.tar.gz in $OUT.
set -uo pipefail
SITE=${SITE:-/tmp/site}
WORK=${WORK:-/tmp/e3gpu}
RESULTS=${RESULTS:-$WORK/results}
export PYTHONUNBUFFERED=1
case "${1:-}" in
  unpack)
    if [ ! -f "$SITE/.complete" ]; then
      mkdir -p "$SITE"
      # The parts are one xz stream cut in pieces: they must be joined in order.
      ls .gpu-carry/part-*/site.tar.xz.* | sort -t. -k4 -n | xargs cat | xz -dc -T0 | tar -x -C "$SITE" \
        && touch "$SITE/.complete"
    fi
    du -sh "$SITE"; ls "$SITE" | wc -l
    [ -f "$SITE/.complete" ]
    ;;
  status)
    ls -l .gpu-carry/part-*/ 2>/dev/null || echo "no .gpu-carry parts"
    [ -f "$SITE/.complete" ] && echo "runtime unpacked in $SITE" || echo "runtime not unpacked"
    ls "$WORK/models" 2>/dev/null || echo "no kits built"
    cat "$WORK/servers.json" 2>/dev/null || echo "no server table"
    nvidia-smi --query-gpu=name,memory.total,memory.used,memory.free --format=csv
    ;;
  run)
    shift
    mkdir -p "$RESULTS"
    python3 benchmarks/gpu/driver.py run --site "$SITE" --work "$WORK" --out "$RESULTS" "$@"
    rc=$?
    if [ -n "${OUT:-}" ]; then
      cp "$RESULTS/results.json" "$OUT/" 2>/dev/null
      # At most 8 files come back: the logs travel as one archive, without the import-time
      # lines (already summarised in results.json under "imports").
      rm -rf "$WORK/logs" && mkdir -p "$WORK/logs"
      for f in "$RESULTS"/*.log; do
        [ -e "$f" ] && grep -v '^import time:' "$f" > "$WORK/logs/$(basename "$f")"
      done
      cp "$RESULTS"/bench-*.json "$WORK/logs/" 2>/dev/null
      tar -czf "$OUT/logs.tar.gz" -C "$WORK" logs
    fi
    exit $rc
    ;;
  *) echo "usage: $0 unpack | status | run [driver args]" >&2; exit 2 ;;
esac
