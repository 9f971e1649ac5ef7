#!/bin/sh
# The README's main command (make demo) does the round trip it promises:
# every good device of examples/devices.csv ends with its final status.
set -eu
out=$(sh "$top_srcdir/examples/roundtrip.sh" "$top_builddir" "$top_srcdir")
fail() { echo "roundtrip: $1" >&2; printf '%s\n' "$out" >&2; exit 1; }
expect() { printf '%s\n' "$out" | grep -qE -- "$1" || fail "missing: $1"; }
expect "devices.csv:5: rejected: device 3: imei: check digit 4 does not match"
expect "download [0-9a-f-]{36} accepted for 7 devices"
expect "^89049032526018159083016613186029  89014109139099603087  SUCCESS  ACTIVE/ENABLE/LOCAL$"
expect "^89049032176031372159010928159017  89014101396245957118  Failed   REQUEST_FAILED.Device.NotReachable$"
expect "^89049032312402344834782450400023  89014108838737167865  SUCCESS  ACTIVE/ENABLE/LOCAL  \(after a Warning\)$"
expect "^8 callbacks received, 0 rejected; 7 of 7 devices final$"
[ "$(printf '%s\n' "$out" | grep -c ' SUCCESS ')" -eq 6 ] || fail "expected 6 SUCCESS lines"
echo "roundtrip: 7 devices, each with its final status"
