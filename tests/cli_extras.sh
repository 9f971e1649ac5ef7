#!/bin/sh
# What tsesim(1) adds to the contract (issue 12: "what operators expect"):
# - --version and --help: exit 0, on stdout;
# - status --failed: a line per failed or refused device before the summary;
# - unregister removes the account's listener, register puts the journal's
#   URL back; run --no-register registers nothing;
# - the --chunk-size advice line for a small chunk size on a larger job.
set -eu
. "$top_srcdir/tests/cli_lib.sh"
cli_init extras
sim_up --redelivery-interval 0.5
j=$dir/journal

t 0 tsesim --version
grep -q '^tsesim ' "$dir/out" || fail "--version does not print 'tsesim VERSION'"
t 0 tsesim --help
for c in validate run listen status register unregister; do
  grep -q "tsesim $c" "$dir/out" || fail "--help does not show $c"
done

# status --failed
csv=$top_srcdir/examples/devices.csv
t 1 tsesim run --journal "$j.ex" --account "$ACCOUNT" "$csv"
url=$(registered_url)
t 1 tsesim status --journal "$j.ex" --failed
grep -qE '^ +11 +89049032176031372159010928159017 +failed +Failed +REQUEST_FAILED\.Device\.NotReachable$' "$dir/out" ||
  fail "status --failed: no line for line 11"
[ "$(grep -cE '^ +[0-9]+ ' "$dir/out")" = 1 ] || fail "status --failed: not one device line"
expect_summary "devices 11 success 6 failed 1 unknown 0 refused 0 pending 0 invalid 4"
gen_devices "$dir/refused.csv" 2 100
t 1 tsesim run --journal "$j.refused" --account "$ACCOUNT" --plan NO_SUCH_PLAN "$dir/refused.csv"
t 1 tsesim status --journal "$j.refused" --failed
[ "$(grep -cE '^ +[23] +[0-9]{32} +refused ' "$dir/out")" = 2 ] || fail "status --failed: not lines 2 and 3 refused"

# unregister, register, --no-register
t 2 tsesim unregister
t 2 env -u TSESIM_PASSWORD "$TSESIM" unregister --account "$ACCOUNT"
expect_err TSESIM_PASSWORD
t 0 tsesim unregister --account "$ACCOUNT"
[ "$(registered_count)" = 0 ] || fail "unregister left a listener: $(cat "$dir/callbacks.json")"
t 0 tsesim register --journal "$j.ex" --account "$ACCOUNT"
[ "$(registered_url)" = "$url" ] || fail "register put $(registered_url), not the journal's $url"
t 0 tsesim unregister --account "$ACCOUNT"
gen_devices "$dir/noreg.csv" 2 200
t 3 tsesim run --journal "$j.noreg" --account "$ACCOUNT" --no-register --wait 1 "$dir/noreg.csv"
expect_summary "devices 2 success 0 failed 0 unknown 0 refused 0 pending 2 invalid 0"
[ "$(registered_count)" = 0 ] || fail "run --no-register registered a listener"
expect_stats callbacks.no_listener 2

# the advice line: 25 devices in chunks of 2; none for 4 devices
gen_devices "$dir/many.csv" 25 300
t 0 tsesim run --journal "$j.many" --account "$ACCOUNT" --chunk-size 2 "$dir/many.csv"
expect_err "advice: .*--chunk-size 2"
gen_devices "$dir/few.csv" 4 400
t 0 tsesim run --journal "$j.few" --account "$ACCOUNT" --chunk-size 2 "$dir/few.csv"
expect_no_err "advice"

echo "extras: --version, --help, status --failed, register, unregister, --no-register and the advice line"
