#!/bin/sh
# The README's main command (bash .ci/quickstart demo, that is make demo)
# runs this: the whole provisioning job of tsesim(1) on 25,000 devices
# against a local ThingSpace simulator.
#   1. tsesim-sim --make-devices writes the device file: 25,000 rows, 5 of
#      them bad (a check digit or a length), 5 devices that the simulator
#      fails and 5 that first get a Warning;
#   2. tsesim-sim starts on a free loopback port;
#   3. tsesim run, configured from the environment as against ThingSpace
#      itself, reports the bad rows by line, starts its callback listener,
#      registers it, submits the devices in chunks of 10,000, shows its
#      progress, waits until every device is final, and prints the summary;
#   4. tsesim status --failed lists the failed devices.
# Then it prints its own wall time and stops the simulator.
#   quickstart.sh BUILDDIR [DEVICES]
# DEVICES: how many rows to generate (default 25000). Exit status: 0 when
# tsesim run exits 1, as it must for a file with bad rows and failing
# devices; else tsesim run's status (see tsesim(1)), or 1 if the
# simulator does not start.
set -eu
b=$(cd "${1:-.}" && pwd)
n=${2:-25000}
now() { date +%s.%N; }
t0=$(now)
dir=$(mktemp -d "$b/tmp-quickstart-XXXXXX")
sim=""
trap '[ -z "$sim" ] || { kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null; }; rm -rf "$dir"' EXIT

"$b/tools/tsesim-sim" --make-devices "$n" --bad-rows 5 --failing 5 --warning 5 >"$dir/devices.csv"
# 64 callbacks at a time: ThingSpace delivers many at once too.
"$b/tools/tsesim-sim" --port 0 --port-file "$dir/port" --callback-workers 64 \
  --redelivery-interval 1 >"$dir/sim.out" 2>&1 &
sim=$!
i=0
while [ ! -s "$dir/port" ]; do
  kill -0 "$sim" 2>/dev/null || { cat "$dir/sim.out" >&2; exit 1; }
  i=$((i + 1))
  [ "$i" -lt 1000 ] || { echo "quickstart: tsesim-sim did not start" >&2; exit 1; }
  sleep 0.01
done
echo "tsesim-sim serving http://127.0.0.1:$(cat "$dir/port")/api"

# What a vendor sets for ThingSpace itself (there TSESIM_BASE_URL is left
# unset: https://thingspace.verizon.com/api). The simulator's built-in client
# and user; the listener's credentials are made at random by tsesim run.
TSESIM_BASE_URL="http://127.0.0.1:$(cat "$dir/port")/api"
TSESIM_CLIENT_ID=sim-key TSESIM_CLIENT_SECRET=sim-secret
TSESIM_USERNAME=sim-user TSESIM_PASSWORD=sim-pass
export TSESIM_BASE_URL TSESIM_CLIENT_ID TSESIM_CLIENT_SECRET TSESIM_USERNAME TSESIM_PASSWORD

echo "tsesim run --journal journal.db --account 0000123456-00001 devices.csv"
status=0
(cd "$dir" && "$b/tools/tsesim" run --journal journal.db --account 0000123456-00001 \
  devices.csv) || status=$?
case $status in
  1) why="some rows were invalid, or some devices failed: as this file intends" ;;
  *) why="see EXIT STATUS in tsesim(1)" ;;
esac
echo "tsesim run: exit status $status ($why)"
echo "tsesim status --journal journal.db --failed"
(cd "$dir" && "$b/tools/tsesim" status --journal journal.db --failed) || true
echo "quickstart: $n devices in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
[ "$status" -eq 1 ] && exit 0
exit "$status"
