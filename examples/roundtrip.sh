#!/bin/sh
# The README's main command runs this: it starts tsesim-sim on a free
# loopback port, runs examples/roundtrip against it (log in, register a
# callback listener, download profiles for examples/devices.csv, wait for
# the callbacks, print each device's final status), then stops the simulator.
#   roundtrip.sh BUILDDIR SRCDIR
set -eu
b=${1:-.}
s=${2:-..}
dir=$(mktemp -d "$b/tmp-roundtrip-XXXXXX")
"$b/tools/tsesim-sim" --port 0 --port-file "$dir/port" --redelivery-interval 1 \
  >"$dir/sim.out" 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null; rm -rf "$dir"' EXIT
i=0
while [ ! -s "$dir/port" ]; do
  kill -0 "$sim" 2>/dev/null || { cat "$dir/sim.out" >&2; exit 1; }
  i=$((i + 1))
  [ "$i" -lt 1000 ] || { echo "roundtrip: tsesim-sim did not start" >&2; exit 1; }
  sleep 0.01
done
echo "tsesim-sim serving http://127.0.0.1:$(cat "$dir/port")/api"
${RUN_EXAMPLE:-} "$b/examples/roundtrip" "http://127.0.0.1:$(cat "$dir/port")/api" "$s/examples/devices.csv"
