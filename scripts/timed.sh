#!/usr/bin/env bash
# Usage: scripts/timed.sh LABEL COMMAND...
# Runs COMMAND; when $CHAOSKIT_TIMINGS names a file, appends "LABEL  SECONDS" to it (make test prints them).
label=$1; shift
start=$(date +%s.%N)
"$@"
rc=$?
if [ -n "${CHAOSKIT_TIMINGS:-}" ]; then
  awk -v l="$label" -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "  %-34s %7.1f s\n", l, e - s }' \
    >> "$CHAOSKIT_TIMINGS"
fi
exit $rc
