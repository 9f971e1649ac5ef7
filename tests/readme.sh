#!/bin/sh
# The README's C example is examples/readme_example.c, which make check
# builds: the README cannot drift from code that compiles.
set -eu
tmp=readme_example.extracted.tmp
awk '/^```c$/ {on=1; next} /^```$/ {if (on) exit} on' "$top_srcdir/README" > "$tmp"
if ! diff -u "$top_srcdir/examples/readme_example.c" "$tmp" >&2; then
  rm -f "$tmp"
  echo "readme: the README's C example differs from examples/readme_example.c" >&2
  exit 1
fi
rm -f "$tmp"
out=$("$top_builddir/examples/readme_example")
case "$out" in
  '{"devices":[{"deviceIds":[{"kind":"eid","id":"89049032000001000000000000000074"},'*) ;;
  *) echo "readme: the example printed: $out" >&2; exit 1 ;;
esac
echo "readme: the example compiles, runs and matches"
