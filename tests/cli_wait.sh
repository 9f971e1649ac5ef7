#!/bin/sh
# tsesim run --wait (CLI.md "run", step 4, exit 3), with callbacks that are
# slow (the simulator's listener_down: every delivery fails, and is tried
# again 2 s later):
# - --wait 1 passes before any callback: exit 3, every device pending;
# - `tsesim listen` on the journal takes the redelivered callbacks;
# - then the same command again (--wait 1 still) finds every device final: 0.
set -eu
. "$top_srcdir/tests/cli_lib.sh"
cli_init wait
sim_up --redelivery-interval 2
j=$dir/journal
gen_devices "$dir/w.csv" 4 1 0 1
set -- run --journal "$j" --account "$ACCOUNT" --chunk-size 2 --wait 1 "$dir/w.csv"

faults '{"listener_down":true}'
t 3 tsesim "$@"
expect_summary "devices 4 success 0 failed 0 unknown 0 refused 0 pending 4 invalid 0"
expect_stats downloads.accepted 2 callbacks.delivered 0
faults '{}'

bg listen tsesim listen --journal "$j"
listen=$bgpid
wait_until "listen prints 'listening on URL'" has_listening listen
wait_until "the 4 callbacks are delivered to listen" stat_ge callbacks.delivered 4
kill -TERM "$listen"
bg_wait "$listen" 0 listen

t 0 tsesim "$@"
expect_summary "$(all_success 4)"
expect_stats downloads.accepted 2 downloads.eids_repeated 0
echo "wait: --wait 1 before the callbacks exits 3; listen stores them; the same command then exits 0"
