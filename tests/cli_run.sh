#!/bin/sh
# tsesim run against tsesim-sim, one case per exit status (CLI.md "run"):
# - 0: every device SUCCESS (a Warning first for one); run again, nothing is
#   sent; the journal is mode 0600; an IPv6 listener ([::1]:0);
# - 1: invalid rows and a Failed device (examples/devices.csv), a Failed
#   device alone, chunks refused (a plan the account lacks), never sent again;
# - 2: a missing variable (named), a bad option (named), an unreadable file,
#   a journal that holds another job (another file, account or plan): nothing sent;
# - 4: refused credentials: exactly one login (or token) attempt, nothing
#   downloaded; the same command with the right password then finishes;
# - 3: a chunk unknown (the connection closed, the download dropped): not sent
#   again, until --resend-unknown; ThingSpace unreachable;
# - a download processed though its answer was lost: its callbacks settle it, 0.
# The last stdout line is the summary line, with N = S+F+U+R+P+I.
set -eu
. "$top_srcdir/tests/cli_lib.sh"
cli_init run
sim_up --redelivery-interval 0.5
j=$dir/journal

# The simulator's request counters, all endpoints, as one line.
sent() { for k in token login logout callbacks download; do printf '%s ' "$(simstat requests.$k)"; done; }

# ---- exit 0 ----
gen_devices "$dir/ok.csv" 6 100 0 1
t 0 tsesim run --journal "$j.ok" --account "$ACCOUNT" --chunk-size 2 "$dir/ok.csv"
expect_summary "$(all_success 6)"
expect_stats downloads.accepted 3 downloads.devices_accepted 6 downloads.eids_repeated 0
[ "$(stat -c %a "$j.ok")" = 600 ] || fail "the journal's mode is $(stat -c %a "$j.ok"), not 600"
received=$(simstat downloads.received)
t 0 tsesim run --journal "$j.ok" --account "$ACCOUNT" --chunk-size 2 "$dir/ok.csv"
expect_summary "$(all_success 6)"
expect_stats downloads.received "$received"
expect_each_eid_once "$dir/ok.csv"

# an IPv6 listener: --listen [::1]:0, registered as http://[::1]:PORT/callbacks
gen_devices "$dir/v6.csv" 2 900
t 0 tsesim run --journal "$j.v6" --account "$ACCOUNT" --listen '[::1]:0' "$dir/v6.csv"
expect_summary "$(all_success 2)"
registered_url | grep -qE '^http://\[::1\]:[1-9][0-9]*/callbacks$' ||
  fail "--listen [::1]:0 registered $(registered_url)"

# ---- exit 1 ----
csv=$top_srcdir/examples/devices.csv
t 1 tsesim run --journal "$j.examples" --account "$ACCOUNT" --plan "$PLAN" "$csv"
expect_summary "devices 11 success 6 failed 1 unknown 0 refused 0 pending 0 invalid 4"
for l in 5 6 7 8; do expect_err "^$csv:$l: "; done
expect_stats downloads.devices_accepted 15

gen_devices "$dir/failed.csv" 4 200 1
t 1 tsesim run --journal "$j.failed" --account "$ACCOUNT" --chunk-size 2 "$dir/failed.csv"
expect_summary "devices 4 success 3 failed 1 unknown 0 refused 0 pending 0 invalid 0"

gen_devices "$dir/refused.csv" 4 300
received=$(simstat downloads.received)
t 1 tsesim run --journal "$j.refused" --account "$ACCOUNT" --plan NO_SUCH_PLAN --chunk-size 2 "$dir/refused.csv"
expect_summary "devices 4 success 0 failed 0 unknown 0 refused 4 pending 0 invalid 0"
expect_stats downloads.received $((received + 2)) downloads.accepted 7
t 1 tsesim run --journal "$j.refused" --account "$ACCOUNT" --plan NO_SUCH_PLAN --chunk-size 2 "$dir/refused.csv"
expect_summary "devices 4 success 0 failed 0 unknown 0 refused 4 pending 0 invalid 0"
expect_stats downloads.received $((received + 2))

# ---- exit 2 ----
before=$(sent)
for v in TSESIM_CLIENT_ID TSESIM_CLIENT_SECRET TSESIM_USERNAME TSESIM_PASSWORD; do
  t 2 env -u "$v" "$TSESIM" run --journal "$j.env" --account "$ACCOUNT" "$dir/ok.csv"
  expect_err "$v"
done
for opt in "--chunk-size 0" "--chunk-size 10001" "--chunk-size x" "--in-flight 0" "--wait x" \
  "--listen nonsense" "--no-such-option"; do
  # shellcheck disable=SC2086 # the option and its value are two words
  t 2 tsesim run --journal "$j.opt" --account "$ACCOUNT" $opt "$dir/ok.csv"
  expect_err "${opt%% *}"
done
t 2 tsesim run --account "$ACCOUNT" "$dir/ok.csv"
expect_err "--journal"
t 2 tsesim run --journal "$j.opt" "$dir/ok.csv"
expect_err "--account"
t 2 tsesim run --journal "$j.opt" --account "$ACCOUNT"
t 2 tsesim run --journal "$j.opt" --account "$ACCOUNT" "$dir/ok.csv" "$dir/ok.csv"
t 2 tsesim run --journal "$j.opt" --account "$ACCOUNT" "$dir/missing.csv"
expect_err "$dir/missing.csv"
t 2 tsesim run --journal "$j.opt" --account "$ACCOUNT" --tls-cert "$dir/missing.pem" \
  --tls-key "$dir/missing.key" "$dir/ok.csv"
t 2 tsesim run --journal "$dir/no/such/dir/journal" --account "$ACCOUNT" "$dir/ok.csv"
[ "$(sent)" = "$before" ] || fail "a usage or configuration error sent a request: $before -> $(sent)"

# a journal that holds another job: another file, account or plan
gen_devices "$dir/other.csv" 6 400
t 2 tsesim run --journal "$j.ok" --account "$ACCOUNT" --chunk-size 2 "$dir/other.csv"
expect_err "$j.ok"
head -n 6 "$dir/ok.csv" >"$dir/fewer.csv"
t 2 tsesim run --journal "$j.ok" --account "$ACCOUNT" --chunk-size 2 "$dir/fewer.csv"
t 2 tsesim run --journal "$j.ok" --account 0000654321-00001 --chunk-size 2 "$dir/ok.csv"
expect_err "$j.ok"
t 2 tsesim run --journal "$j.ok" --account "$ACCOUNT" --plan "$PLAN" --chunk-size 2 "$dir/ok.csv"
[ "$(sent)" = "$before" ] || fail "a journal of another job, yet requests were sent: $before -> $(sent)"
t 0 tsesim run --journal "$j.ok" --account "$ACCOUNT" --chunk-size 2 "$dir/ok.csv"
expect_summary "$(all_success 6)"

# ---- exit 4: refused credentials ----
gen_devices "$dir/auth.csv" 4 500
curl -sS -X DELETE "$simurl/_sim/stats" >/dev/null
t 4 env TSESIM_PASSWORD=wrong-pass "$TSESIM" run --journal "$j.auth" --account "$ACCOUNT" "$dir/auth.csv"
expect_err "TSESIM_PASSWORD|credentials|password"
expect_stats requests.login 1 logins.refused 1 logins.ok 0 downloads.received 0
t 4 env TSESIM_CLIENT_SECRET=wrong-secret "$TSESIM" run --journal "$j.auth" --account "$ACCOUNT" "$dir/auth.csv"
expect_stats tokens.refused 1 requests.login 1 downloads.received 0
t 0 tsesim run --journal "$j.auth" --account "$ACCOUNT" "$dir/auth.csv"
expect_summary "$(all_success 4)"
expect_stats logins.ok 1 downloads.accepted 1 downloads.eids_repeated 0

# ---- exit 3: unknown chunks, an unreachable ThingSpace ----
gen_devices "$dir/unknown.csv" 4 600
faults '{"faults":[{"kind":"close","count":1,"endpoint":"download","mode":"dropped"}]}'
t 3 tsesim run --journal "$j.unknown" --account "$ACCOUNT" --chunk-size 2 --wait 1 "$dir/unknown.csv"
expect_summary "devices 4 success 2 failed 0 unknown 2 refused 0 pending 0 invalid 0"
expect_stats downloads.received 3 downloads.accepted 2
faults '{}'
t 3 tsesim run --journal "$j.unknown" --account "$ACCOUNT" --chunk-size 2 --wait 1 "$dir/unknown.csv"
expect_summary "devices 4 success 2 failed 0 unknown 2 refused 0 pending 0 invalid 0"
expect_stats downloads.received 3
t 0 tsesim run --journal "$j.unknown" --account "$ACCOUNT" --chunk-size 2 --resend-unknown "$dir/unknown.csv"
expect_summary "$(all_success 4)"
expect_stats downloads.received 4 downloads.accepted 3 downloads.eids_repeated 0

# the download was processed, its answer lost: the callbacks, with a
# requestId the journal never recorded, settle the chunk; nothing is resent
gen_devices "$dir/lost.csv" 4 700 1
faults '{"faults":[{"kind":"close","count":1,"endpoint":"download","mode":"processed"}]}'
t 1 tsesim run --journal "$j.lost" --account "$ACCOUNT" --chunk-size 2 --wait 10 "$dir/lost.csv"
expect_summary "devices 4 success 3 failed 1 unknown 0 refused 0 pending 0 invalid 0"
expect_stats downloads.received 6 downloads.accepted 5 downloads.eids_repeated 0
faults '{}'

gen_devices "$dir/down.csv" 2 800
t 3 env TSESIM_BASE_URL=http://127.0.0.1:1/api "$TSESIM" run --journal "$j.down" --account "$ACCOUNT" \
  --wait 1 "$dir/down.csv"
expect_summary "devices 2 success 0 failed 0 unknown 0 refused 0 pending 2 invalid 0"

echo "run: exits 0, 1, 2, 3 and 4 as tsesim(1) says, with the summary line; nothing sent twice"
