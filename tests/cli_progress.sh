#!/bin/sh
# tsesim run's progress on stderr (CLI.md "run", issue 12 "Progress"):
# - under a pseudo-terminal (script(1) from util-linux): one line rewritten in
#   place (carriage returns, at least two states of it on one line) that
#   names the devices submitted out of the total, callbacks, final and the
#   ETA, and ends with a newline: the summary is a line of its own;
# - not a terminal: no carriage return, one line per chunk outcome;
# - --quiet: no progress, the summary stays.
set -eu
. "$top_srcdir/tests/cli_lib.sh"
cli_init progress
sim_up --redelivery-interval 1
# 4 chunks of 2, one at a time, 250 ms each: a run of about a second
faults '{"latency_ms":250}'
gen_devices "$dir/p.csv" 8 1
opts="--account $ACCOUNT --chunk-size 2 --in-flight 1"

# ---- a terminal ----
t 0 script -qefc "$TSESIM run --journal $dir/j.tty $opts $dir/p.csv" /dev/null
tr -d '\n' <"$dir/out" | grep -q . || fail "nothing written to the terminal"
# the terminal turns each \n into \r\n: take that \r off each line
sed 's/\r$//' "$dir/out" >"$dir/tty"
[ "$(tail -n 1 "$dir/tty")" = "$(all_success 8)" ] ||
  fail "the last line on the terminal is not the summary alone (the progress line did not end with a newline?)"
# the progress line: the one with carriage returns inside
cr=$(printf '\r')
grep "$cr" "$dir/tty" >"$dir/progress" || fail "no line rewritten in place (no carriage return)"
[ "$(wc -l <"$dir/progress")" -eq 1 ] || fail "more than one line rewritten in place"
frames=$(tr "$cr" '\n' <"$dir/progress" | grep -c 'submitted') || :
[ "$frames" -ge 2 ] || fail "the progress line was written $frames times, not rewritten"
last=$(tr "$cr" '\n' <"$dir/progress" | grep 'submitted' | tail -n 1)
for w in submitted 8/8 callbacks final ETA; do
  printf '%s\n' "$last" | grep -q -- "$w" || fail "the last state of the progress line lacks '$w': $last"
done

faults '{}'

# ---- not a terminal ----
t 0 tsesim run --journal "$dir/j.file" $opts "$dir/p.csv"
expect_summary "$(all_success 8)"
! grep -q "$cr" "$dir/err" || fail "a carriage return in stderr, which is not a terminal"
for k in 1 2 3 4; do
  [ "$(grep -cE "chunk $k/4 accepted" "$dir/err")" = 1 ] || fail "not one line for chunk $k's outcome"
done

# ---- --quiet ----
t 0 tsesim run --journal "$dir/j.quiet" $opts --quiet "$dir/p.csv"
expect_summary "$(all_success 8)"
expect_no_err "chunk|progress|submitted"

echo "progress: rewritten in place on a terminal and ended by a newline; a line per chunk otherwise; none with --quiet"
