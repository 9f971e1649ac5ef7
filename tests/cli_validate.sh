#!/bin/sh
# tsesim validate FILE (tsesim(1), CLI.md "Device files" and "validate"):
# - exit 0: no row rejected; the last stderr line `FILE: N devices valid, 0 rows rejected`;
# - exit 1: each bad row as `FILE:LINE: reason` (1-based lines of the file, the
#   reason names the field, no request index), then the count line;
# - exit 2: usage, an unreadable file, a header without eid or without both
#   iccid and imei, a file with no data row;
# - CSV quirks: header order and case, CRLF, a BOM, blank lines, quoted cells
#   (with a comma, with a line break), `-` for stdin, a repeated eid.
set -eu
. "$top_srcdir/tests/cli_lib.sh"
cli_init validate

# bad_lines: the LINE of every `FILE:LINE: ` line of stderr, space-separated.
bad_lines() { sed -n "s|^$1:\([0-9]*\): .*|\1|p" "$dir/err" | tr '\n' ' '; }
no_index() { expect_no_err 'devices\[|device [0-9]|index|request'; }

# examples/devices.csv: lines 5 to 8 are bad (imei check digit, no eid, a
# letter in the eid, 2 cells under a 3-column header).
csv=$top_srcdir/examples/devices.csv
t 1 tsesim validate "$csv"
[ "$(bad_lines "$csv")" = "5 6 7 8 " ] || fail "the bad rows are not lines 5 6 7 8"
expect_err "^$csv:5: .*imei"
expect_err "^$csv:6: .*eid"
expect_err "^$csv:7: .*eid"
expect_err "^$csv:8: "
no_index
expect_last_err "$csv: 7 devices valid, 4 rows rejected"
[ "$(wc -l <"$dir/err")" -eq 5 ] || fail "not one line per bad row and the count line"

# the same on standard input: FILE is printed as -
t 1 tsesim validate - <"$csv"
[ "$(bad_lines -)" = "5 6 7 8 " ] || fail "stdin: the bad rows are not -:5 to -:8"
expect_err "^-:7: .*eid"
expect_last_err "-: 7 devices valid, 4 rows rejected"

# all valid
gen_devices "$dir/good.csv" 5 1 1 1
t 0 tsesim validate "$dir/good.csv"
expect_last_err "$dir/good.csv: 5 devices valid, 0 rows rejected"
[ "$(wc -l <"$dir/err")" -eq 1 ] || fail "more than the count line for a valid file"
t 0 tsesim validate - <"$dir/good.csv"
expect_last_err "-: 5 devices valid, 0 rows rejected"

# rows of good.csv, by number (2..6), for the files below
row() { sed -n "${1}p" "$dir/good.csv"; }
field() { row "$1" | cut -d, -f"$2"; }

# header order and case, other columns ignored, empty cells absent
{
  echo "IMEI,Note,Eid,iccid"
  for r in 2 3 4; do echo "$(field $r 3),note $r,$(field $r 1),$(field $r 2)"; done
  echo ",no imei,$(field 5 1),$(field 5 2)"
  echo "$(field 6 3),no iccid,$(field 6 1),"
} >"$dir/order.csv"
t 0 tsesim validate "$dir/order.csv"
expect_last_err "$dir/order.csv: 5 devices valid, 0 rows rejected"

# CRLF line ends, a bad imei on line 3 (its reason without a CR)
{
  printf 'eid,iccid,imei\r\n'
  printf '%s\r\n' "$(row 2)"
  printf '%s,%s,352099000000000\r\n' "$(field 3 1)" "$(field 3 2)"
  printf '%s\r\n' "$(row 4)"
} >"$dir/crlf.csv"
t 1 tsesim validate "$dir/crlf.csv"
[ "$(bad_lines "$dir/crlf.csv")" = "3 " ] || fail "CRLF: the bad row is not line 3"
expect_err "^$dir/crlf.csv:3: .*imei"
! grep -q "$(printf '\r')" "$dir/err" || fail "CRLF: a carriage return in stderr"
expect_last_err "$dir/crlf.csv: 2 devices valid, 1 rows rejected"

# a UTF-8 BOM before the header
{
  printf '\357\273\277'
  cat "$dir/good.csv"
} >"$dir/bom.csv"
t 0 tsesim validate "$dir/bom.csv"
expect_last_err "$dir/bom.csv: 5 devices valid, 0 rows rejected"

# blank lines are skipped but counted as lines: the bad row is line 6
{
  row 1
  row 2
  echo
  echo
  row 3
  echo "$(field 4 1),$(field 4 2),35209900000000x"
  echo
} >"$dir/blank.csv"
t 1 tsesim validate "$dir/blank.csv"
[ "$(bad_lines "$dir/blank.csv")" = "6 " ] || fail "blank lines: the bad row is not line 6"
expect_err "^$dir/blank.csv:6: .*imei"
expect_last_err "$dir/blank.csv: 2 devices valid, 1 rows rejected"

# quoted cells (RFC 4180): quoted ids, a comma and a doubled quote in a
# quoted cell, a cell over two lines; the bad row after it is line 6
{
  echo '"eid","iccid","imei","note"'
  echo "\"$(field 2 1)\",\"$(field 2 2)\",\"$(field 2 3)\",\"a, b \"\"c\"\"\""
  echo "$(field 3 1),$(field 3 2),$(field 3 3),\"two"
  echo "lines\""
  echo "\"$(field 4 1)\",,\"$(field 4 3)\",plain"
  echo "\"$(field 2 1)\",\"$(field 5 2)\",\"$(field 5 3)\",\"repeat\""
} >"$dir/quoted.csv"
t 1 tsesim validate "$dir/quoted.csv"
[ "$(bad_lines "$dir/quoted.csv")" = "6 " ] || fail "quoted cells: the bad row is not line 6"
expect_err "^$dir/quoted.csv:6: .*eid repeats line 2"
expect_last_err "$dir/quoted.csv: 3 devices valid, 1 rows rejected"

# a repeated eid, named by the line it repeats
{
  cat "$dir/good.csv"
  echo "$(field 4 1),$(field 6 2),$(field 6 3)"
} >"$dir/repeat.csv"
t 1 tsesim validate "$dir/repeat.csv"
[ "$(bad_lines "$dir/repeat.csv")" = "7 " ] || fail "repeated eid: the bad row is not line 7"
expect_err "^$dir/repeat.csv:7: .*eid repeats line 4"
no_index
expect_last_err "$dir/repeat.csv: 5 devices valid, 1 rows rejected"

# exit 2: usage, unreadable files, headers, no data row
t 2 tsesim validate
[ -s "$dir/err" ] || fail "usage: nothing on stderr"
t 2 tsesim validate --no-such-option "$dir/good.csv"
expect_err "no-such-option"
t 2 tsesim
t 2 tsesim no-such-command
expect_err "no-such-command"
t 2 tsesim validate "$dir/missing.csv"
expect_err "$dir/missing.csv"
t 2 tsesim validate "$dir"
expect_err "$dir"
printf 'iccid,imei\n%s,%s\n' "$(field 2 2)" "$(field 2 3)" >"$dir/noeid.csv"
t 2 tsesim validate "$dir/noeid.csv"
expect_err "eid"
printf 'eid,note\n%s,x\n' "$(field 2 1)" >"$dir/noiccid.csv"
t 2 tsesim validate "$dir/noiccid.csv"
expect_err "iccid|imei"
row 1 >"$dir/header.csv"
t 2 tsesim validate "$dir/header.csv"
printf 'eid,iccid,imei\n\n\n' >"$dir/header-blank.csv"
t 2 tsesim validate "$dir/header-blank.csv"
: >"$dir/empty.csv"
t 2 tsesim validate "$dir/empty.csv"
t 2 tsesim validate - </dev/null

echo "validate: exits 0, 1 and 2 as tsesim(1) says; bad rows by 1-based line; CRLF, BOM, blank lines, quotes, stdin, repeated eid"
