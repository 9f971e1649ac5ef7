#!/bin/sh
# The README's main command runs this: it starts tsesim-sim on a free
# loopback port, runs examples/roundtrip against it (start the library's
# callback listener, register it, submit examples/devices.csv as a job, wait
# until every device is final, print each row's outcome), then stops the
# simulator.
#   roundtrip.sh BUILDDIR SRCDIR [DEVICES]
# DEVICES: a device file (default SRCDIR/examples/devices.csv) or a number
# of devices to generate.
# ROUNDTRIP_WAIT (seconds, default 60) bounds the wait for the callbacks;
# ROUNDTRIP_REDELIVERY (seconds, default 1) is the simulator's interval
# between deliveries of a callback that failed (it tries 4 times).
set -eu
b=${1:-.}
s=${2:-..}
devices=${3:-$s/examples/devices.csv}
dir=$(mktemp -d "$b/tmp-roundtrip-XXXXXX")
"$b/tools/tsesim-sim" --port 0 --port-file "$dir/port" --redelivery-interval "${ROUNDTRIP_REDELIVERY:-1}" \
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
base="http://127.0.0.1:$(cat "$dir/port")"
echo "tsesim-sim serving $base/api"
status=0
${RUN_EXAMPLE:-} "$b/examples/roundtrip" --journal "$dir/journal" "$base/api" "$devices" "${ROUNDTRIP_WAIT:-60}" ||
  status=$?
# ROUNDTRIP_STATS=FILE keeps what the simulator counted (tests/roundtrip.sh
# checks that no device was downloaded twice).
if [ -n "${ROUNDTRIP_STATS:-}" ]; then
  curl -sS "$base/_sim/stats" >"$ROUNDTRIP_STATS"
fi
exit "$status"
