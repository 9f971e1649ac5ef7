#!/bin/sh
# tsesim run matches callbacks as CLI.md "The listener (HTTP)" says, against
# a simulator that answers the download 500 ms after its callbacks leave
# (--answer-latency-ms), delivers every callback twice (--callback-duplicate)
# and a device's final callback before its Warning (--callback-reorder):
# - callbacks that come before the requestId is recorded are matched;
# - a repeat is stored once (callbacks counts distinct ones);
# - the first final status is kept: a Warning after SUCCESS changes nothing;
# - nothing is unmatched, every device final, exit 1 for the Failed one.
set -eu
. "$top_srcdir/tests/cli_lib.sh"
cli_init match
sim_up --redelivery-interval 0.5 --answer-latency-ms 500 --callback-duplicate --callback-reorder
j=$dir/journal
# line 2 fails, line 3 gets SUCCESS and then its Warning, lines 4-5 SUCCESS
gen_devices "$dir/m.csv" 4 1 1 1
t 1 tsesim run --journal "$j" --account "$ACCOUNT" --chunk-size 2 "$dir/m.csv"
expect_summary "devices 4 success 3 failed 1 unknown 0 refused 0 pending 0 invalid 0"
expect_stats downloads.accepted 2 downloads.eids_repeated 0

t 1 tsesim status --journal "$j" --json
cp "$dir/out" "$dir/status.json"
last_cmd="cli_json status (the stdout of tsesim status --json)"
"$CLI_JSON" status "$dir/status.json" || fail "status --json broke the contract"
[ "$(sed -n 's/^unmatched //p' "$dir/status.json")" = 0 ] || fail "callbacks left unmatched"
[ "$("$CLI_JSON" status "$dir/status.json" rows state status callbacks | tr '\n' ';')" = \
  "2 failed Failed 1;3 success SUCCESS 2;4 success SUCCESS 1;5 success SUCCESS 1;" ] ||
  fail "states, statuses and callbacks: $("$CLI_JSON" status "$dir/status.json" rows state status callbacks | tr '\n' ';')"
[ "$("$CLI_JSON" status "$dir/status.json" 2 requestId)" = "$("$CLI_JSON" status "$dir/status.json" 3 requestId)" ] ||
  fail "lines 2 and 3 share a chunk, not a requestId"
[ "$("$CLI_JSON" status "$dir/status.json" 2 requestId)" != "$("$CLI_JSON" status "$dir/status.json" 4 requestId)" ] ||
  fail "lines 2 and 4 are in two chunks, yet share a requestId"
echo "match: early, duplicated and reordered callbacks matched; repeats stored once; the first final status kept"
