#!/bin/sh
# examples/demo (the offline part of what the README's first command shows)
# does what it says: reports each bad CSV row by its line number, prints the
# request body of the good rows, and a parsed sample callback.
set -eu
out=$(${RUN_EXAMPLE:-} "$top_builddir/examples/demo" "$top_srcdir/examples/devices.csv" \
      "$top_srcdir/examples/sample_callback.json")
fail() { echo "demo: $1" >&2; printf '%s\n' "$out" >&2; exit 1; }
expect() { printf '%s\n' "$out" | grep -qF -- "$1" || fail "missing: $1"; }
# Each rejected row is named by its line alone: the index it would have had
# in the request ("device 3") means nothing to the reader of the file.
expect "devices.csv:5: rejected: imei: check digit 4 does not match (expected 3)"
expect "devices.csv:6: rejected: eid missing (every device needs one)"
expect "devices.csv:7: rejected: eid \"8904903211O777412154728038528066\": not a digit at position 11"
expect "devices.csv:8: rejected: 2 fields, expected 3 (eid,iccid,imei)"
if printf '%s\n' "$out" | grep -q 'rejected: device '; then fail "a row is named by a device index"; fi
[ "$(printf '%s\n' "$out" | grep -c ': rejected: ')" -eq 4 ] || fail "expected 4 rejected rows"
expect "devices.csv: 7 devices accepted, 4 rows rejected"
expect '{"devices":[{"deviceIds":[{"kind":"eid","id":"89049032526018159083016613186029"},'
expect '{"deviceIds":[{"kind":"eid","id":"89049032625276018955597971147118"},{"kind":"imei","id":"352099001703426"}]}'
expect '],"accountName":"0000123456-00001","servicePlan":"Global eSIM Plan"}'
expect "requestId   d1f08526-5443-4054-9a29-4456490ea9f8"
expect "status      SUCCESS (success)"
expect "attempt     1 of 4"
expect "device      mdn    5555550100"
expect "profile     state ACTIVE, status ENABLE, role LOCAL"
# A missing file is an error, not an empty request.
if ${RUN_EXAMPLE:-} "$top_builddir/examples/demo" /nonexistent.csv >/dev/null 2>&1; then
  fail "a missing CSV file did not fail"
fi
echo "demo: bad rows reported by line, body and callback printed"
