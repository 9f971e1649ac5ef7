#!/bin/sh
# The README's C example is examples/readme_example.c, which make check
# builds: the README cannot drift from code that compiles. It runs against
# tsesim-sim and must get a requestId.
set -eu
. "$top_srcdir/tests/sim_start.sh"
sim_start readme
awk '/^```c$/ {on=1; next} /^```$/ {if (on) exit} on' "$top_srcdir/README" > "$dir/readme.c"
if ! diff -u "$top_srcdir/examples/readme_example.c" "$dir/readme.c" >&2; then
  echo "readme: the README's C example differs from examples/readme_example.c" >&2
  exit 1
fi
out=$("$top_builddir/examples/readme_example" "$base")
printf '%s\n' "$out" | grep -qE '^requestId [0-9a-f-]{36}$' || {
  echo "readme: the example printed: $out" >&2; exit 1; }
echo "readme: the example compiles, runs against tsesim-sim and matches"
