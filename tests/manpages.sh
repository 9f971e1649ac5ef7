#!/bin/sh
# Every exported function has its man3 page, installed by make install, and
# every page has the sections a reader looks for.
set -eu
status=0
for sym in $(grep -v '^#' "$top_srcdir/lib/libtsesim.sym" | sed '/^$/d'); do
  page="$top_srcdir/man/$sym.3"
  if [ ! -f "$page" ]; then
    echo "manpages: $sym has no man/$sym.3" >&2; status=1; continue
  fi
  grep -q "man/$sym.3" "$top_srcdir/man/local.mk" || {
    echo "manpages: man/$sym.3 is not installed (man/local.mk)" >&2; status=1; }
  if grep -q '^\.so ' "$page"; then continue; fi
  for sec in NAME SYNOPSIS DESCRIPTION "RETURN VALUE" ERRORS EXAMPLE "SEE ALSO"; do
    grep -q "^\.SH \"*$sec\"*\$" "$page" || {
      echo "manpages: man/$sym.3 lacks the $sec section" >&2; status=1; }
  done
done
[ -f "$top_srcdir/man/libtsesim.7" ] || { echo "manpages: no libtsesim(7)" >&2; status=1; }
[ $status -eq 0 ] && echo "manpages: every exported function has a complete page"
exit $status
