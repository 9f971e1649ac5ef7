#!/bin/sh
# The C++ example (examples/cpp/job.cc, built with -std=c++17 -Wall -Wextra
# -pedantic -Werror) does the whole job it promises against tsesim-sim:
# - examples/devices.csv: its rejected rows named by line, every progress
#   step of the one chunk, every good device final with its status (one
#   Failed, one SUCCESS after a Warning), on_callback called once per
#   callback on the listener's thread, the counts;
# - run again on the same journal: it resumes and sends nothing;
# - --throw-in-hook: the exception thrown in on_callback stays in C++: the
#   job still ends with every device final, and the exception is reported
#   after it, with exit status 1.
set -eu
. "$top_srcdir/tests/sim_start.sh"
# Under valgrind (RUN_EXAMPLE) the listener is slower: a longer wait, and
# fewer redeliveries while a callback is still being committed.
if [ -n "${RUN_EXAMPLE:-}" ]; then wait_s=900 redelivery=15; else wait_s=60 redelivery=1; fi
sim_start cpp --redelivery-interval "$redelivery"
csv=$top_srcdir/examples/devices.csv
job() { ${RUN_EXAMPLE:-} "$top_builddir/examples/cpp/job" "$@"; }
fail() { echo "cpp_example: $1" >&2; printf '%s\n' "$out" >&2; exit 1; }
expect() { printf '%s\n' "$out" | grep -qE -- "$1" || fail "missing: $1"; }
lacks() { ! printf '%s\n' "$out" | grep -qE -- "$1" || fail "unexpected: $1"; }
summary="^devices 11 success 6 failed 1 unknown 0 refused 0 pending 0 invalid 4$"

status=0
out=$(job --journal "$dir/job.db" "$base" "$csv" "$wait_s" 2>&1) || status=$?
[ "$status" -eq 0 ] || fail "exit status $status"
expect "^$csv:5: imei: check digit 4 does not match \(expected 3\)$"
expect "^listener http://127\.0\.0\.1:[0-9]+/callbacks registered$"
expect "^chunk 0 sending$"
expect "^chunk 0 accepted requestId [0-9a-f-]{36}$"
expect "^job cpp-job submitted: 7 devices$"
expect "^2 89049032526018159083016613186029 success SUCCESS 1$"
expect "^4 89049032625276018955597971147118 success SUCCESS 1$"
expect "^5 89049032366712768426846563212221 invalid - 0 imei: check digit 4 does not match \(expected 3\)$"
expect "^6 - invalid - 0 eid missing \(every device needs one\)$"
expect "^11 89049032176031372159010928159017 failed Failed 1 REQUEST_FAILED\.Device\.NotReachable$"
expect "^12 89049032312402344834782450400023 success SUCCESS 2$"
expect "^8 89049032948219935181909378657991 invalid - 0 2 cells, the header has 3$"
[ "$(printf '%s\n' "$out" | grep -cE '^[0-9]+ [^ ]+ (invalid|queued|unknown|refused|submitted|warning|success|failed) ')" -eq 11 ] ||
  fail "expected 11 device rows"
expect "^on_callback 8 callbacks, 1 Warning$"
expect "$summary"
lacks "threw"

# The same journal: nothing is sent again.
status=0
out=$(job --journal "$dir/job.db" "$base" "$csv" "$wait_s" 2>&1) ||
  status=$?
[ "$status" -eq 0 ] || fail "resumed: exit status $status"
lacks "^chunk "
expect "^job cpp-job submitted: 7 devices$"
expect "^on_callback 0 callbacks, 0 Warning$"
expect "$summary"

# An exception in a hook never crosses into C.
status=0
out=$(job --journal "$dir/throw.db" --throw-in-hook "$base" "$csv" "$wait_s" 2>&1) || status=$?
[ "$status" -eq 1 ] || fail "--throw-in-hook: exit status $status, not 1"
expect "^job: on_callback threw: thrown for request [0-9a-f-]{36}$"
expect "^on_callback 8 callbacks, [01] Warning$"
expect "$summary"
echo "cpp_example: 7 devices final, resumed without sending, a hook's exception kept in C++"
