#!/bin/sh
# The README's main command (make demo) does the round trip it promises:
# every good device of examples/devices.csv ends with its final status.
set -eu
out=$(sh "$top_srcdir/examples/roundtrip.sh" "$top_builddir" "$top_srcdir")
fail() { echo "roundtrip: $1" >&2; printf '%s\n' "$out" >&2; exit 1; }
expect() { printf '%s\n' "$out" | grep -qE -- "$1" || fail "missing: $1"; }
expect "devices.csv:5: rejected: imei: check digit 4 does not match"
expect "download [0-9a-f-]{36} accepted for 7 devices"
expect "^EID {31}ICCID {17}IMEI {13}STATUS   DETAIL$"
expect "^89049032526018159083016613186029  89014109139099603087  352099002462816  SUCCESS  ACTIVE/ENABLE/LOCAL$"
expect "^89049032625276018955597971147118  -                     352099001703426  SUCCESS  ACTIVE/ENABLE/LOCAL$"
expect "^89049032761222029729975288200182  89014108263304348394  -                SUCCESS  ACTIVE/ENABLE/LOCAL$"
expect "^89049032176031372159010928159017  89014101396245957118  352099078666613  Failed   REQUEST_FAILED.Device.NotReachable$"
expect "^89049032312402344834782450400023  89014108838737167865  352099864920877  SUCCESS  ACTIVE/ENABLE/LOCAL  \(after a Warning\)$"
expect "^8 callbacks received, 0 rejected; 7 of 7 devices final$"
[ "$(printf '%s\n' "$out" | grep -c ' SUCCESS ')" -eq 6 ] || fail "expected 6 SUCCESS lines"
echo "roundtrip: 7 devices, each with its final status"
