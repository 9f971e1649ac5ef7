# Sourced by the shell tests that need a simulator: sim_start NAME [options]
# starts $top_builddir/tools/tsesim-sim on a free loopback port with its
# files in a fresh $dir, sets $base to its /api URL, and stops it (and
# removes $dir) when the script exits.
sim_start() {
  name=$1
  shift
  dir=$(mktemp -d "$top_builddir/tests/tmp-$name-XXXXXX")
  "$top_builddir/tools/tsesim-sim" --port 0 --port-file "$dir/port" "$@" >"$dir/sim.out" 2>&1 &
  sim=$!
  trap 'kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null; rm -rf "$dir"' EXIT
  i=0
  while [ ! -s "$dir/port" ]; do
    kill -0 "$sim" 2>/dev/null || { echo "$name: tsesim-sim exited" >&2; cat "$dir/sim.out" >&2; exit 1; }
    i=$((i + 1))
    [ "$i" -lt 1000 ] || { echo "$name: tsesim-sim did not start" >&2; exit 1; }
    sleep 0.01
  done
  base="http://127.0.0.1:$(cat "$dir/port")/api"
}
