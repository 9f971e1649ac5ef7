#!/bin/sh
# tsesim listen --journal DB (CLI.md "listen" and "The listener (HTTP)"),
# with callbacks forged by curl:
# - it prints `listening on URL` to stderr, on the port run recorded and registered;
# - 401 for a wrong password, a wrong username, no credentials (nothing stored);
# - 200 for an unknown requestId, then counted as unmatched by status;
# - 200 for a Failed after a device's SUCCESS, which stays SUCCESS; a repeat is
#   stored once;
# - 400 for a body the parser refuses, 413 for 1 MiB + 1 bytes (1 MiB is read);
# - GET /healthz 200, any method on another path 404, GET or PUT on the path 405;
# - a run or a second listen on the journal it holds exits 2;
# - SIGTERM: it exits 0;
# - resuming with listener credentials other than the journal's: exit 2.
set -eu
. "$top_srcdir/tests/cli_lib.sh"
cli_init listen
sim_up --redelivery-interval 0.5
j=$dir/journal
TSESIM_LISTENER_USERNAME='listen-user'
TSESIM_LISTENER_PASSWORD='listen-pass-1234'
export TSESIM_LISTENER_USERNAME TSESIM_LISTENER_PASSWORD
gen_devices "$dir/d.csv" 3 1
t 0 tsesim run --journal "$j" --account "$ACCOUNT" "$dir/d.csv"
expect_summary "$(all_success 3)"
registered=$(registered_url)

t 2 tsesim listen
t 2 tsesim listen --journal "$dir/no-such-journal"
expect_err "$dir/no-such-journal"
[ ! -e "$dir/no-such-journal" ] || fail "listen created a journal"

bg listen tsesim listen --journal "$j"
listen=$bgpid
wait_until "listen prints 'listening on URL'" has_listening listen
url=$(listening_url listen)
[ "$url" = "$registered" ] || fail "listen serves $url, run registered $registered"
hostport=${url#http://}
hostport=${hostport%%/*}
root=http://$hostport

# code [curl options] URL: the HTTP status of the answer
code() { curl -sS -o "$dir/answer" -w '%{http_code}' "$@" || echo "curl-failed"; }
# post BODY [URL]: a callback POSTed as ThingSpace does
post() { code -H 'Content-Type: application/json' --data-binary "$1" "${2:-$url}"; }
expect_code() { # WANT WHAT CODE
  [ "$3" = "$1" ] || fail "$2: answered $3, expected $1 ($(cat "$dir/answer" 2>/dev/null))"
}
callback() { # REQUESTID EID STATUS [CREDENTIALS]
  fault=
  [ "$3" != Failed ] || fault=',"faultResponse":{"faultcode":"REQUEST_FAILED.Device.NotReachable","faultstring":"forged"}'
  printf '{"requestId":"%s","deviceIds":[{"id":"%s","kind":"Eid"}],"status":"%s"%s,"callbackCount":1,"maxCallbackThreshold":4%s}' \
    "$1" "$2" "$3" "$fault" "${4-,\"username\":\"listen-user\",\"password\":\"listen-pass-1234\"}"
}
status_json() {
  t 0 tsesim status --journal "$j" --json
  cp "$dir/out" "$dir/status.json"
  last_cmd="cli_json status (the stdout of tsesim status --json)"
  "$CLI_JSON" status "$dir/status.json" || fail "status --json broke the contract"
}
# listen holds the journal: status reads it
status_json
rid=$("$CLI_JSON" status "$dir/status.json" 2 requestId)
eid=$("$CLI_JSON" status "$dir/status.json" 2 eid)
[ "$("$CLI_JSON" status "$dir/status.json" 2 callbacks)" = 1 ] || fail "line 2 has not 1 callback"
[ "$(sed -n 's/^unmatched //p' "$dir/status.json")" = 0 ] || fail "unmatched callbacks before any was forged"

last_cmd="curl (forged callbacks at $url)"
stranger=89049032999999999999999999999922
unknown_rid=00000000-0000-4000-8000-000000000001
expect_code 401 "a wrong password" "$(post "$(callback "$rid" "$eid" Failed ',"username":"listen-user","password":"wrong"')")"
expect_code 401 "a wrong username" "$(post "$(callback "$rid" "$eid" Failed ',"username":"wrong","password":"listen-pass-1234"')")"
expect_code 401 "no credentials" "$(post "$(callback "$rid" "$eid" Failed '')")"
expect_code 200 "an unknown requestId" "$(post "$(callback "$unknown_rid" "$stranger" SUCCESS)")"
expect_code 200 "a Failed after SUCCESS" "$(post "$(callback "$rid" "$eid" Failed)")"
expect_code 200 "the same Failed again" "$(post "$(callback "$rid" "$eid" Failed)")"
expect_code 400 "a body that is not a callback" "$(post '{"requestId":17}')"
expect_code 400 "a body that is not JSON" "$(post 'not json')"
head -c 1048577 /dev/zero | tr '\0' ' ' >"$dir/big"
expect_code 413 "1 MiB + 1 bytes" "$(code -H 'Content-Type: application/json' --data-binary "@$dir/big" "$url")"
head -c 1048576 /dev/zero | tr '\0' ' ' >"$dir/big"
expect_code 400 "1 MiB of blanks" "$(code -H 'Content-Type: application/json' --data-binary "@$dir/big" "$url")"
expect_code 200 "GET /healthz" "$(code "$root/healthz")"
expect_code 404 "GET /other" "$(code "$root/other")"
expect_code 404 "POST /other" "$(post "$(callback "$rid" "$eid" SUCCESS)" "$root/other")"
expect_code 404 "a valid callback at /healthz/x" "$(post "$(callback "$rid" "$eid" SUCCESS)" "$root/healthz/x")"
expect_code 405 "GET on the path" "$(code "$url")"
expect_code 405 "PUT on the path" "$(code -X PUT -H 'Content-Type: application/json' --data-binary "$(callback "$rid" "$eid" SUCCESS)" "$url")"

status_json
[ "$(sed -n 's/^unmatched //p' "$dir/status.json")" = 1 ] || fail "not 1 unmatched callback"
[ "$("$CLI_JSON" status "$dir/status.json" 2 state)" = success ] || fail "a Failed after SUCCESS changed line 2"
[ "$("$CLI_JSON" status "$dir/status.json" 2 status)" = SUCCESS ] || fail "line 2's status is not SUCCESS"
[ "$("$CLI_JSON" status "$dir/status.json" 2 fault)" = null ] || fail "line 2's fault is not null"
[ "$("$CLI_JSON" status "$dir/status.json" 2 callbacks)" = 2 ] || fail "line 2 has not 2 callbacks (SUCCESS, Failed once)"
expect_summary "$(all_success 3)"

# the journal is in use
t 2 tsesim run --journal "$j" --account "$ACCOUNT" "$dir/d.csv"
t 2 tsesim listen --journal "$j"
kill -0 "$listen" || fail "listen died"

kill -TERM "$listen"
bg_wait "$listen" 0 listen

# resuming with the journal's listener credentials, or none: fine; others: exit 2
before=$(simstat requests.login)
t 2 env TSESIM_LISTENER_PASSWORD=another-pass "$TSESIM" run --journal "$j" --account "$ACCOUNT" "$dir/d.csv"
expect_err TSESIM_LISTENER_PASSWORD
t 2 env TSESIM_LISTENER_USERNAME=another-user "$TSESIM" run --journal "$j" --account "$ACCOUNT" "$dir/d.csv"
expect_err TSESIM_LISTENER_USERNAME
t 2 env -u TSESIM_LISTENER_USERNAME TSESIM_LISTENER_PASSWORD=another-pass "$TSESIM" run --journal "$j" \
  --account "$ACCOUNT" "$dir/d.csv"
expect_stats requests.login "$before"
t 0 tsesim run --journal "$j" --account "$ACCOUNT" "$dir/d.csv"
expect_summary "$(all_success 3)"
t 0 env -u TSESIM_LISTENER_USERNAME -u TSESIM_LISTENER_PASSWORD "$TSESIM" run --journal "$j" \
  --account "$ACCOUNT" "$dir/d.csv"
expect_summary "$(all_success 3)"
expect_stats downloads.accepted 1

echo "listen: listening on its recorded URL; 401, 200, 400, 413, 404, 405 as tsesim(1) says; unmatched counted; SIGTERM exits 0; other listener credentials on resume exit 2"
