#!/bin/sh
# tsesim status --journal DB [--json] (CLI.md "status"): `unmatched N`, then
# the summary line; with --json first one compact object per row, in file
# order, each checked by tests/cli_json (jansson) against the contract's
# keys and types, its counts against the summary's; the exit status follows
# run's rules. The journals hold every state:
# invalid, success (one after a Warning), failed, refused, unknown, queued,
# submitted and warning.
set -eu
. "$top_srcdir/tests/cli_lib.sh"
cli_init status
sim_up --redelivery-interval 2
j=$dir/journal

# status_json STATUS JOURNAL: runs status --json, checks it with cli_json;
# the output stays in $dir/status.json, read with row LINE KEY.
status_json() {
  t "$1" tsesim status --journal "$2" --json
  cp "$dir/out" "$dir/status.json"
  last_cmd="cli_json status (tsesim status --journal $2 --json: its stdout below)"
  "$CLI_JSON" status "$dir/status.json" || fail "status --json broke the contract"
}
row() { "$CLI_JSON" status "$dir/status.json" "$1" "$2"; }
expect_row() { # LINE KEY VALUE
  v=$(row "$1" "$2")
  [ "$v" = "$3" ] || { last_cmd="status --json"; cp "$dir/status.json" "$dir/out"; fail "line $1: $2 is $v, expected $3"; }
}
uuid='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

t 2 tsesim status
t 2 tsesim status --journal "$dir/no-such-journal"
expect_err "$dir/no-such-journal"
t 2 tsesim status --journal "$dir/no-such-journal" --json

# examples/devices.csv: invalid rows 5 to 8, line 11 Failed, line 12 a
# Warning then SUCCESS, the rest SUCCESS
csv=$top_srcdir/examples/devices.csv
t 1 tsesim run --journal "$j.ex" --account "$ACCOUNT" "$csv"
summary="devices 11 success 6 failed 1 unknown 0 refused 0 pending 0 invalid 4"
t 1 tsesim status --journal "$j.ex"
[ "$(cat "$dir/out")" = "unmatched 0
$summary" ] || fail "status prints more or less than unmatched and the summary"
status_json 1 "$j.ex"
[ "$("$CLI_JSON" status "$dir/status.json" rows state | cut -d" " -f1 | tr '\n' ' ')" = "2 3 4 5 6 7 8 9 10 11 12 " ] ||
  fail "the rows are not lines 2 to 12 in order"
expect_row 2 eid 89049032526018159083016613186029
expect_row 2 iccid 89014109139099603087
expect_row 2 imei 352099002462816
expect_row 2 state success
expect_row 2 status SUCCESS
expect_row 2 fault null
expect_row 2 error null
expect_row 2 callbacks 1
row 2 requestId | grep -qE "$uuid" || fail "line 2: requestId is not a UUID"
expect_row 4 iccid null
for l in 5 6 7 8; do
  expect_row $l state invalid
  expect_row $l requestId null
  expect_row $l status null
  expect_row $l callbacks 0
done
expect_row 6 eid null
row 5 error | grep -q imei || fail "line 5: the error does not name the imei"
row 8 error | grep -q cells || fail "line 8: the error does not name the cells"
expect_row 10 imei null
expect_row 11 state failed
expect_row 11 status Failed
expect_row 11 fault REQUEST_FAILED.Device.NotReachable
expect_row 11 error null
expect_row 12 state success
expect_row 12 status SUCCESS
expect_row 12 callbacks 2
[ "$(row 2 requestId)" = "$(row 12 requestId)" ] || fail "one chunk, yet two requestIds"
expect_summary "$summary"

# all SUCCESS: 0
gen_devices "$dir/ok.csv" 3 100
t 0 tsesim run --journal "$j.ok" --account "$ACCOUNT" "$dir/ok.csv"
status_json 0 "$j.ok"
expect_summary "$(all_success 3)"

# refused (a plan the account lacks): 1, with the error
gen_devices "$dir/refused.csv" 2 200
t 1 tsesim run --journal "$j.refused" --account "$ACCOUNT" --plan NO_SUCH_PLAN "$dir/refused.csv"
status_json 1 "$j.refused"
expect_row 2 state refused
expect_row 3 state refused
expect_row 2 requestId null
row 2 error | grep -q . || fail "line 2: refused without an error"
expect_summary "devices 2 success 0 failed 0 unknown 0 refused 2 pending 0 invalid 0"

# queued (the credentials refused before sending): 3
gen_devices "$dir/queued.csv" 2 300
t 4 env TSESIM_PASSWORD=wrong "$TSESIM" run --journal "$j.queued" --account "$ACCOUNT" "$dir/queued.csv"
status_json 3 "$j.queued"
expect_row 2 state queued
expect_row 3 requestId null
expect_summary "devices 2 success 0 failed 0 unknown 0 refused 0 pending 2 invalid 0"

# unknown (the connection closed, the download dropped): 3
gen_devices "$dir/unknown.csv" 2 400
faults '{"faults":[{"kind":"close","count":1,"endpoint":"download","mode":"dropped"}]}'
t 3 tsesim run --journal "$j.unknown" --account "$ACCOUNT" --wait 1 "$dir/unknown.csv"
faults '{}'
status_json 3 "$j.unknown"
expect_row 2 state unknown
expect_row 2 requestId null
expect_row 3 state unknown
expect_summary "devices 2 success 0 failed 0 unknown 2 refused 0 pending 0 invalid 0"

# submitted, then warning: callbacks held back (listener_down), then a
# Warning forged at `tsesim listen` with the journal's listener credentials
gen_devices "$dir/sub.csv" 2 500
faults '{"listener_down":true}'
t 3 env TSESIM_LISTENER_USERNAME=status-user TSESIM_LISTENER_PASSWORD=status-pass \
  "$TSESIM" run --journal "$j.sub" --account "$ACCOUNT" --wait 1 "$dir/sub.csv"
status_json 3 "$j.sub"
expect_row 2 state submitted
expect_row 2 status null
expect_row 2 callbacks 0
row 2 requestId | grep -qE "$uuid" || fail "line 2: submitted without a requestId"
rid=$(row 2 requestId)
eid=$(row 2 eid)
bg listen tsesim listen --journal "$j.sub"
listen=$bgpid
wait_until "listen prints 'listening on URL'" has_listening listen
body=$(printf '{"requestId":"%s","deviceIds":[{"id":"%s","kind":"Eid"}],"status":"Warning","faultResponse":{"faultcode":"WARNING.Device.Timeout","faultstring":"forged"},"callbackCount":1,"maxCallbackThreshold":4,"username":"status-user","password":"status-pass"}' "$rid" "$eid")
c=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$body" "$(listening_url listen)")
[ "$c" = 200 ] || fail "the forged Warning was answered $c"
kill -TERM "$listen"
bg_wait "$listen" 0 listen
status_json 3 "$j.sub"
expect_row 2 state warning
expect_row 2 status Warning
expect_row 2 fault WARNING.Device.Timeout
expect_row 2 callbacks 1
expect_row 3 state submitted
expect_summary "devices 2 success 0 failed 0 unknown 0 refused 0 pending 2 invalid 0"
faults '{}'

echo "status: unmatched and the summary; --json rows checked by cli_json in every state; exits 0, 1, 2 and 3 by run's rules"
