#!/bin/sh
# examples/download against tsesim-sim: accepted with the simulator's
# credentials, refused (exit 1, not retried) with a wrong password.
set -eu
dir=$(mktemp -d "$top_builddir/tests/tmp-download-XXXXXX")
"$top_builddir/tools/tsesim-sim" --port 0 --port-file "$dir/port" >/dev/null 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null; rm -rf "$dir"' EXIT
i=0
while [ ! -s "$dir/port" ]; do
  i=$((i + 1)); [ "$i" -lt 1000 ] || { echo "download: no simulator" >&2; exit 1; }
  sleep 0.01
done
base="http://127.0.0.1:$(cat "$dir/port")/api"
out=$("$top_builddir/examples/download" "$base" "$top_srcdir/examples/devices.csv")
printf '%s\n' "$out" | grep -qE '^requestId [0-9a-f-]{36} for 7 devices$' || {
  echo "download: unexpected output: $out" >&2; exit 1; }
status=0
TSESIM_PASSWORD=wrong "$top_builddir/examples/download" "$base" \
  "$top_srcdir/examples/devices.csv" >/dev/null 2>"$dir/err" || status=$?
[ "$status" -eq 1 ] || { echo "download: wrong password gave exit $status" >&2; exit 1; }
grep -q "TSESIM_E_AUTH" "$dir/err" || { echo "download: no TSESIM_E_AUTH" >&2; cat "$dir/err" >&2; exit 1; }
echo "download: accepted, and a wrong password refused"
