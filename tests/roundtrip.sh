#!/bin/sh
# The README's main command (make demo) does the round trip it promises, on
# the library's listener and tracker:
# - examples/devices.csv: its rejected rows are named by line, and every good
#   device ends with its final status (one Failed, one SUCCESS after a Warning);
# - 25,000 generated devices: every one final, every callback matched, and
#   the simulator downloaded no device twice.
set -eu
stats=$(mktemp "$top_builddir/tests/tmp-roundtrip-stats-XXXXXX")
trap 'rm -f "$stats"' EXIT
fail() { echo "roundtrip: $1" >&2; printf '%s\n' "$out" >&2; exit 1; }
expect() { printf '%s\n' "$out" | grep -qE -- "$1" || fail "missing: $1"; }
stat_of() { # downloads.eids_repeated -> its value in the simulator's stats
  v=$(sed -n "s/.*\"${1%%.*}\":{\([^}]*\)}.*/\1/p" "$stats" |
    tr ',' '\n' | sed -n "s/^\"${1#*.}\":\([0-9]*\)\$/\1/p")
  [ -n "$v" ] || fail "no $1 in the stats: $(cat "$stats")"
  echo "$v"
}

# Under valgrind (make check-valgrind-quick sets RUN_EXAMPLE), the listener
# takes 10-50x longer per callback: the wait and the simulator's redelivery
# interval grow with it, so that no callback is abandoned while the example
# is still busy and the 25,000 wait does not end first.
if [ -n "${RUN_EXAMPLE:-}" ]; then
  ROUNDTRIP_WAIT=900 ROUNDTRIP_REDELIVERY=15
  export ROUNDTRIP_WAIT ROUNDTRIP_REDELIVERY
fi
csv=$top_srcdir/examples/devices.csv
out=$(ROUNDTRIP_STATS=$stats sh "$top_srcdir/examples/roundtrip.sh" "$top_builddir" "$top_srcdir" 2>&1) ||
  fail "exit status $?"
expect "^$csv:5: imei: check digit 4 does not match \(expected 3\)$"
expect "^listener http://127\.0\.0\.1:[0-9]+/callbacks registered$"
expect "^job roundtrip submitted: 7 devices$"
expect "^ LINE  EID {29}  ICCID {15}  IMEI {11}  STATE      STATUS   CALLBACKS  FAULT/ERROR$"
expect "^    2  89049032526018159083016613186029  89014109139099603087  352099002462816  success    SUCCESS          1$"
expect "^    4  89049032625276018955597971147118  -                     352099001703426  success    SUCCESS          1$"
expect "^    5  89049032366712768426846563212221  89014103307924402688  352099005995284  invalid    -                0  imei: check digit 4 does not match \(expected 3\)$"
expect "^   10  89049032761222029729975288200182  89014108263304348394  -                success    SUCCESS          1$"
expect "^   11  89049032176031372159010928159017  89014101396245957118  352099078666613  failed     Failed           1  REQUEST_FAILED.Device.NotReachable$"
expect "^   12  89049032312402344834782450400023  89014108838737167865  352099864920877  success    SUCCESS          2$"
expect "^callbacks 8 duplicates 0 unmatched 0$"
expect "^devices 11 success 6 failed 1 unknown 0 refused 0 pending 0 invalid 4$"
[ "$(stat_of downloads.eids_repeated)" = 0 ] || fail "a device was downloaded twice"

out=$(ROUNDTRIP_STATS=$stats sh "$top_srcdir/examples/roundtrip.sh" "$top_builddir" "$top_srcdir" 25000 2>&1) ||
  fail "25,000 devices: exit status $?"
expect "^job roundtrip submitted: 25000 devices$"
expect "^callbacks [0-9]+ duplicates [0-9]+ unmatched 0$"
expect "^devices 25000 success [0-9]+ failed [0-9]+ unknown 0 refused 0 pending 0 invalid 0$"
! printf '%s\n' "$out" | grep -q "^  *[0-9]*  8904" || fail "25,000 devices: a row printed one by one"
[ "$(stat_of downloads.devices_accepted)" = 25000 ] || fail "not 25,000 devices accepted"
[ "$(stat_of downloads.eids_repeated)" = 0 ] || fail "25,000 devices: a device was downloaded twice"
echo "roundtrip: 7 devices, each with its final status; 25,000 devices all final, none downloaded twice"
