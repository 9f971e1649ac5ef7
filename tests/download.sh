#!/bin/sh
# examples/download against tsesim-sim:
# - a device file of 25,000 rows goes as 3 chunks, each accepted once, with
#   a line per chunk change, into the default journal (FILE.journal);
# - run again, the journal resumes the job: nothing more is sent;
# - examples/devices.csv: its rejected rows are printed as FILE:LINE: reason
#   and the rest is accepted;
# - a wrong password is refused (exit 1, TSESIM_E_AUTH), nothing sent.
set -eu
. "$top_srcdir/tests/sim_start.sh"
sim_start download
fail() { echo "download: $1" >&2; exit 1; }
run() { ${RUN_EXAMPLE:-} "$top_builddir/examples/download" "$@"; }

# The simulator's counters, by name: downloads.accepted, downloads.eids_repeated, ...
stats() { curl -sS "${base%/api}/_sim/stats" >"$dir/stats.json"; }
stat_of() {
  v=$(sed -n "s/.*\"${1%%.*}\":{\([^}]*\)}.*/\1/p" "$dir/stats.json" |
    tr ',' '\n' | sed -n "s/^\"${1#*.}\":\([0-9]*\)\$/\1/p")
  [ -n "$v" ] || fail "no $1 in the stats: $(cat "$dir/stats.json")"
  echo "$v"
}
expect() { # KEY VALUE...
  stats
  while [ $# -gt 0 ]; do
    [ "$(stat_of "$1")" = "$2" ] || fail "$1 is $(stat_of "$1"), expected $2 ($when)"
    shift 2
  done
}

# 25,000 valid devices: EID "89049032" + 22 digits of the row + MOD 97-10
# check digits; ICCID and IMEI with their Luhn digit.
awk 'function luhn(s,   i, d, sum, dbl) {
       sum = 0; dbl = 1
       for (i = length(s); i > 0; i--) {
         d = substr(s, i, 1) + 0
         if (dbl) { d *= 2; if (d > 9) d -= 9 }
         sum += d; dbl = !dbl
       }
       return s ((10 - sum % 10) % 10)
     }
     function eid(s,   i, r) {
       r = 0
       for (i = 1; i <= length(s); i++) r = (r * 10 + substr(s, i, 1)) % 97
       return s sprintf("%02d", 98 - (r * 100) % 97)
     }
     BEGIN {
       print "eid,iccid,imei"
       for (i = 1; i <= 25000; i++)
         print eid("89049032" sprintf("%022d", i)) "," luhn("8901410" sprintf("%012d", i)) "," \
               luhn("35209900" sprintf("%06d", i))
     }' >"$dir/devices.csv"

when="first run"
status=0
run "$base" "$dir/devices.csv" >"$dir/out1" 2>"$dir/err1" || status=$?
[ "$status" -eq 0 ] || { cat "$dir/err1" >&2; fail "exit $status"; }
[ "$(tail -n 1 "$dir/out1")" = "devices 25000 accepted 25000 unknown 0 refused 0 queued 0 rejected 0" ] ||
  { cat "$dir/out1" "$dir/err1" >&2; fail "unexpected summary"; }
for c in 0 1 2; do
  [ "$(grep -c "^download: chunk $c of 3 sending " "$dir/err1")" -eq 1 ] ||
    { cat "$dir/err1" >&2; fail "not one 'sending' line for chunk $c"; }
  [ "$(grep -cE "^download: chunk $c of 3 accepted: requestId [0-9a-f-]{36} " "$dir/err1")" -eq 1 ] ||
    { cat "$dir/err1" >&2; fail "not one 'accepted' line for chunk $c"; }
done
[ "$(grep -c '^download: chunk ' "$dir/err1")" -eq 6 ] || { cat "$dir/err1" >&2; fail "not 6 chunk lines"; }
grep -q 'accepted: .*(25000 of 25000 devices accepted)$' "$dir/err1" || fail "no line with every device accepted"
[ -f "$dir/devices.csv.journal" ] || fail "no journal at devices.csv.journal"
expect downloads.received 3 downloads.accepted 3 downloads.devices_accepted 25000 \
  downloads.eids 25000 downloads.eids_repeated 0

when="second run"
status=0
run "$base" "$dir/devices.csv" >"$dir/out2" 2>"$dir/err2" || status=$?
[ "$status" -eq 0 ] || { cat "$dir/err2" >&2; fail "exit $status"; }
[ "$(tail -n 1 "$dir/out2")" = "devices 25000 accepted 25000 unknown 0 refused 0 queued 0 rejected 0" ] ||
  { cat "$dir/out2" "$dir/err2" >&2; fail "unexpected summary on the second run"; }
! grep -q '^download: chunk ' "$dir/err2" || { cat "$dir/err2" >&2; fail "the second run changed a chunk"; }
expect downloads.received 3 downloads.accepted 3 downloads.devices_accepted 25000 \
  downloads.eids_repeated 0

when="examples/devices.csv"
csv=$top_srcdir/examples/devices.csv
status=0
run --journal "$dir/small.journal" "$base" "$csv" >"$dir/out3" 2>"$dir/err3" || status=$?
[ "$status" -eq 0 ] || { cat "$dir/err3" >&2; fail "exit $status"; }
[ "$(tail -n 1 "$dir/out3")" = "devices 7 accepted 7 unknown 0 refused 0 queued 0 rejected 4" ] ||
  { cat "$dir/out3" "$dir/err3" >&2; fail "devices.csv: unexpected summary"; }
[ "$(grep -E "^$csv:[0-9]+: " "$dir/err3" | cut -d: -f2 | tr '\n' ' ')" = "5 6 7 8 " ] ||
  { cat "$dir/err3" >&2; fail "devices.csv: the rejected rows are not lines 5 to 8"; }
grep -q "^$csv:7: eid \"8904903211O777412154728038528066\": not a digit at position 11\$" "$dir/err3" ||
  { cat "$dir/err3" >&2; fail "devices.csv: line 7's reason"; }
expect downloads.received 4 downloads.accepted 4 downloads.devices_accepted 25007 \
  downloads.eids_repeated 0

when="wrong password"
status=0
TSESIM_PASSWORD=wrong run --journal "$dir/wrong.journal" "$base" "$csv" >/dev/null 2>"$dir/err4" || status=$?
[ "$status" -eq 1 ] || { cat "$dir/err4" >&2; fail "wrong password gave exit $status"; }
grep -q "TSESIM_E_AUTH" "$dir/err4" || { cat "$dir/err4" >&2; fail "no TSESIM_E_AUTH"; }
expect downloads.received 4 logins.refused 1

echo "download: 25,000 devices in 3 chunks, each accepted once; the second run sent nothing; rejected rows by line; a wrong password refused"
