#!/bin/sh
# The shared library exports exactly the functions listed in
# lib/libtsesim.sym: nothing outside tsesim_*, no tsesim__ internals, and
# nothing listed missing.
set -eu
so=$(ls "$top_builddir"/lib/.libs/libtsesim.so.* 2>/dev/null | head -n 1)
[ -n "$so" ] || { echo "exports: no lib/.libs/libtsesim.so.* built" >&2; exit 1; }
actual=$(${NM:-nm} -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort)
expected=$(grep -v '^#' "$top_srcdir/lib/libtsesim.sym" | sed '/^$/d' | sort)
if [ "$actual" != "$expected" ]; then
  echo "exports: the library's symbols differ from lib/libtsesim.sym" >&2
  echo "  ('<' exported but not listed, '>' listed but not exported)" >&2
  printf '%s\n' "$actual" > exports.actual.tmp
  printf '%s\n' "$expected" > exports.expected.tmp
  diff exports.actual.tmp exports.expected.tmp >&2 || true
  rm -f exports.actual.tmp exports.expected.tmp
  exit 1
fi
bad=$(printf '%s\n' "$actual" | grep -v '^tsesim_[a-z]' || true)
[ -z "$bad" ] || { echo "exports: outside tsesim_*: $bad" >&2; exit 1; }
echo "exports: $(printf '%s\n' "$actual" | wc -l) symbols, all tsesim_*, as listed"
