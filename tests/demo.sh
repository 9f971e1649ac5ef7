#!/bin/sh
# The README's demos do what they say:
# - examples/demo (offline): reports each bad CSV row by its line number,
#   prints the request body of the good rows, and a parsed sample callback;
# - make demo (examples/quickstart.sh): tsesim run on 25,000 generated
#   devices against tsesim-sim, whose summary line has exactly the counts
#   the generator's options dictate, whose bad rows are reported by line, and
#   whose failed devices are listed by tsesim status --failed; tsesim run
#   exits 1 (some rows invalid, some devices failed); in well under a minute.
set -eu
out=$(${RUN_EXAMPLE:-} "$top_builddir/examples/demo" "$top_srcdir/examples/devices.csv" \
      "$top_srcdir/examples/sample_callback.json")
fail() { echo "demo: $1" >&2; printf '%s\n' "$out" >&2; exit 1; }
expect() { printf '%s\n' "$out" | grep -qF -- "$1" || fail "missing: $1"; }
expect_re() { printf '%s\n' "$out" | grep -qE -- "$1" || fail "missing: $1"; }
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

# make demo. Its programs run natively even under make check-valgrind-quick
# (RUN_EXAMPLE): this checks what the README promises, at its full size and
# pace; tests/cli_*.sh run tsesim itself under valgrind.
n=25000
out=$(sh "$top_srcdir/examples/quickstart.sh" "$top_builddir" 2>&1) || fail "make demo: exit status $?"
expect_re "^tsesim-sim serving http://127\.0\.0\.1:[0-9]+/api\$"
expect_re "^tsesim-sim: made $n rows: $((n - 5)) valid \(5 to fail, 5 to warn\), 5 bad \(seed 1\)\$"
[ "$(printf '%s\n' "$out" | grep -cE '^devices\.csv:[0-9]+: (imei|iccid|eid)')" -eq 5 ] ||
  fail "make demo: not 5 bad rows reported by line"
expect_re "^tsesim run: exit status 1 \(some rows were invalid, or some devices failed"
# The summary: the generator's 5 bad rows invalid, its 5 failing devices
# failed, every other device (its 5 warning ones too) SUCCESS; once from
# tsesim run, once from tsesim status.
summary="devices $n success $((n - 10)) failed 5 unknown 0 refused 0 pending 0 invalid 5"
[ "$(printf '%s\n' "$out" | grep -cx "$summary")" -eq 2 ] || fail "make demo: not twice: $summary"
expect_re "^unmatched 0\$"
# The failed table: its header, then the 5 failing devices, each the row of
# the generated file with that line (the same options give the same file)
# and an imei ending in 13.
expect_re "^ +LINE +EID +STATE +STATUS +FAULT/ERROR\$"
rows=$(printf '%s\n' "$out" | grep -E '^ *[0-9]+  8904' || true)
[ "$(printf '%s\n' "$rows" | grep -c .)" -eq 5 ] || fail "make demo: not 5 failed devices listed"
csv=$(mktemp "$top_builddir/tests/tmp-demo-XXXXXX")
trap 'rm -f "$csv"' EXIT
"$top_builddir/tools/tsesim-sim" --make-devices $n --bad-rows 5 --failing 5 --warning 5 \
  >"$csv" 2>/dev/null
printf '%s\n' "$rows" | while read -r line eid state status fault; do
  [ "$state $status $fault" = "failed Failed REQUEST_FAILED.Device.NotReachable" ] ||
    fail "make demo: failed row: $line $eid $state $status $fault"
  row=$(sed -n "${line}p" "$csv")
  [ "${row%%,*}" = "$eid" ] || fail "make demo: line $line of the file is $row, not $eid"
  case $row in *13) ;; *) fail "make demo: line $line: $row does not end in 13" ;; esac
done
secs=$(printf '%s\n' "$out" | sed -n "s/^quickstart: $n devices in \([0-9.]*\) s\$/\1/p")
[ -n "$secs" ] || fail "make demo: no wall time"
awk -v s="$secs" 'BEGIN { exit !(s < 60) }' || fail "make demo: $secs s, not under a minute"
echo "demo: bad rows reported by line, body and callback printed; make demo: $n devices in $secs s"
