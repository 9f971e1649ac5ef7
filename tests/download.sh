#!/bin/sh
# examples/download against tsesim-sim: accepted with the simulator's
# credentials, refused (exit 1, not retried) with a wrong password.
set -eu
. "$top_srcdir/tests/sim_start.sh"
sim_start download
out=$(${RUN_EXAMPLE:-} "$top_builddir/examples/download" "$base" "$top_srcdir/examples/devices.csv")
printf '%s\n' "$out" | grep -qE '^requestId [0-9a-f-]{36} for 7 devices$' || {
  echo "download: unexpected output: $out" >&2; exit 1; }
status=0
TSESIM_PASSWORD=wrong ${RUN_EXAMPLE:-} "$top_builddir/examples/download" "$base" \
  "$top_srcdir/examples/devices.csv" >/dev/null 2>"$dir/err" || status=$?
[ "$status" -eq 1 ] || { echo "download: wrong password gave exit $status" >&2; exit 1; }
grep -q "TSESIM_E_AUTH" "$dir/err" || { echo "download: no TSESIM_E_AUTH" >&2; cat "$dir/err" >&2; exit 1; }
echo "download: accepted, and a wrong password refused"
