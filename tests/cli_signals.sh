#!/bin/sh
# tsesim run interrupted (CLI.md "run", issue 12 "Signals"), against a slow
# simulator (--latency-ms through /_sim/faults):
# - kill -9 while a chunk is in flight, then the same command again: every
#   device final, no EID downloaded twice (the simulator's per-EID counts),
#   exit 1 as the file (a Failed device, an invalid row) dictates;
# - SIGTERM while chunks are being submitted: no new chunk starts, exit 3;
#   the same command again sends the rest and exits 0;
# - SIGINT while waiting for callbacks: exit 3; meanwhile a second run and a
#   listen on the same journal exit 2; the same command again finishes, 0.
set -eu
. "$top_srcdir/tests/cli_lib.sh"
cli_init signals
# Callbacks that fail (no listener between two runs, or listener_down) are
# tried again 2 s later, 4 times in all: the next run gets them.
sim_up --redelivery-interval 2
j=$dir/journal

# ---- kill -9 ----
gen_devices "$dir/valid.csv" 12 1 1
{
  cat "$dir/valid.csv"
  echo "89049032000000000000000000000000,89014100000000000012,352099000000113"
} >"$dir/k.csv"
set -- run --journal "$j.kill" --account "$ACCOUNT" --chunk-size 2 --in-flight 1 "$dir/k.csv"
faults '{"latency_ms":300}'
bg kill tsesim "$@"
wait_until "the third chunk reaches the simulator" stat_ge downloads.received 3
kill -9 "$bgpid"
bg_wait "$bgpid" 137 kill
faults '{}'
t 1 tsesim "$@"
expect_summary "devices 13 success 11 failed 1 unknown 0 refused 0 pending 0 invalid 1"
expect_stats downloads.eids 12 downloads.eids_repeated 0
expect_each_eid_once "$dir/valid.csv"

# ---- SIGTERM while submitting ----
gen_devices "$dir/t.csv" 10 100
set -- run --journal "$j.term" --account "$ACCOUNT" --chunk-size 2 --in-flight 1 "$dir/t.csv"
curl -sS -X DELETE "$simurl/_sim/stats" >/dev/null
faults '{"latency_ms":300}'
bg term tsesim "$@"
wait_until "the second chunk reaches the simulator" stat_ge downloads.received 2
kill -TERM "$bgpid"
bg_wait "$bgpid" 3 term
received=$(simstat downloads.received)
[ "$received" -le 3 ] || fail "after SIGTERM at the 2nd chunk of 5, $received chunks were sent"
tail -n 1 "$dir/out" | grep -qE '^devices 10 success [0-9]+ failed 0 unknown [0-9]+ refused 0 pending [1-9][0-9]* invalid 0$' ||
  fail "after SIGTERM: not a summary with devices pending"
faults '{}'
t 0 tsesim "$@"
expect_summary "$(all_success 10)"
expect_stats downloads.eids 10 downloads.eids_repeated 0

# ---- SIGINT while waiting; the journal in use ----
gen_devices "$dir/i.csv" 4 200
set -- run --journal "$j.int" --account "$ACCOUNT" --chunk-size 2 "$dir/i.csv"
curl -sS -X DELETE "$simurl/_sim/stats" >/dev/null
faults '{"listener_down":true}'
bg int tsesim "$@"
run=$bgpid
wait_until "both chunks are accepted" stat_ge downloads.accepted 2
t 2 tsesim "$@"
expect_err "$j.int"
t 2 tsesim listen --journal "$j.int"
alive "$run" || fail "the run in use died"
kill -INT "$run"
bg_wait "$run" 3 int
expect_summary "devices 4 success 0 failed 0 unknown 0 refused 0 pending 4 invalid 0"
faults '{}'
t 0 tsesim "$@"
expect_summary "$(all_success 4)"
expect_stats downloads.received 2 downloads.eids_repeated 0

echo "signals: kill -9 then the same command: all final, none downloaded twice; SIGTERM and SIGINT exit 3 and the same command finishes; a journal in use exits 2"
