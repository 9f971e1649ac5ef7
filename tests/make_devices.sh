#!/bin/sh
# tsesim-sim --make-devices writes the device file it promises (tsesim-sim(1),
# GENERATING DEVICES):
# - tsesim validate rejects exactly the --bad-rows rows, each for a check
#   digit or a length, and accepts every other;
# - the eids are distinct; exactly --failing valid imeis end in 13 and
#   --warning in 77 (the simulator's Failed and Warning rule), no other;
# - the same seed gives the same bytes, another seed other rows;
# - bad usage exits 2 and names the option.
set -eu
sim=$top_builddir/tools/tsesim-sim
tsesim=$top_builddir/tools/tsesim
dir=$(mktemp -d "$top_builddir/tests/tmp-make-devices-XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "make_devices: $1" >&2; exit 1; }

${RUN_EXAMPLE:-} "$sim" --make-devices 3000 --bad-rows 12 --failing 7 --warning 4 --seed 42 \
  >"$dir/a.csv" 2>"$dir/a.err" || fail "exit status $?: $(cat "$dir/a.err")"
grep -qx 'tsesim-sim: made 3000 rows: 2988 valid (7 to fail, 4 to warn), 12 bad (seed 42)' \
  "$dir/a.err" || fail "stderr: $(cat "$dir/a.err")"
[ "$(head -n 1 "$dir/a.csv")" = "eid,iccid,imei" ] || fail "header: $(head -n 1 "$dir/a.csv")"
[ "$(wc -l <"$dir/a.csv")" -eq 3001 ] || fail "$(wc -l <"$dir/a.csv") lines, expected 3001"

# What tsesim validate says: 12 rows rejected, the five faults in turn.
status=0
"$tsesim" validate "$dir/a.csv" >"$dir/v.out" 2>"$dir/v.err" || status=$?
[ "$status" -eq 1 ] || fail "tsesim validate exit status $status, expected 1: $(cat "$dir/v.err")"
tail -n 1 "$dir/v.err" | grep -qx "$dir/a.csv: 2988 devices valid, 12 rows rejected" ||
  fail "validate: $(tail -n 1 "$dir/v.err")"
[ "$(grep -c "^$dir/a.csv:[0-9]*: " "$dir/v.err")" -eq 12 ] || fail "not 12 bad rows: $(cat "$dir/v.err")"
for why in 'imei: check digit [0-9] does not match' 'iccid: check digit [0-9] does not match' \
  'eid: check digits [0-9]* do not match' 'imei "[0-9]*": 14 digits' 'iccid "[0-9]*": 17 digits'; do
  n=$(grep -c "^$dir/a.csv:[0-9]*: .*$why" "$dir/v.err" || true)
  # 12 rows over 5 faults in turn: 3, 3, 2, 2, 2
  [ "$n" -ge 2 ] && [ "$n" -le 3 ] || fail "$n rows rejected for '$why': $(cat "$dir/v.err")"
done
# the bad rows are spread, not bunched at one end
first=$(sed -n "s|^$dir/a.csv:\([0-9]*\): .*|\1|p" "$dir/v.err" | sort -n | head -n 1)
last=$(sed -n "s|^$dir/a.csv:\([0-9]*\): .*|\1|p" "$dir/v.err" | sort -n | tail -n 1)
[ "$first" -lt 1000 ] && [ "$last" -gt 2000 ] || fail "bad rows from line $first to $last"

# The valid rows: distinct eids, and the outcome digits of the imeis.
bad_lines=$(sed -n "s|^$dir/a.csv:\([0-9]*\): .*|\1|p" "$dir/v.err" | tr '\n' ' ')
awk -F, -v bad=" $bad_lines" '
  NR == 1 { next }
  index(bad, " " NR " ") { next }
  { if (seen[$1]++) { print "eid repeats: " $1; exit 1 }
    t = substr($3, 14, 2); if (t == "13") f++; else if (t == "77") w++ }
  END { printf "%d %d\n", f, w }' "$dir/a.csv" >"$dir/fw" || fail "$(cat "$dir/fw")"
[ "$(cat "$dir/fw")" = "7 4" ] || fail "failing and warning imeis: $(cat "$dir/fw"), expected 7 4"
all=$(cut -d, -f1 "$dir/a.csv" | sed 1d | sort -u | wc -l)
[ "$all" -eq 3000 ] || fail "$all distinct eids in 3000 rows"

# Deterministic: the same seed, the same bytes; another seed, other rows.
"$sim" --make-devices 3000 --bad-rows 12 --failing 7 --warning 4 --seed 42 >"$dir/b.csv" 2>/dev/null
cmp -s "$dir/a.csv" "$dir/b.csv" || fail "the same seed gave another file"
"$sim" --make-devices 3000 --bad-rows 12 --failing 7 --warning 4 --seed 43 >"$dir/c.csv" 2>/dev/null
[ "$(sed -n 2p "$dir/a.csv")" != "$(sed -n 2p "$dir/c.csv")" ] || fail "seed 43 gave seed 42's rows"

# A file without bad rows validates whole (exit 0).
"$sim" --make-devices 500 --failing 5 --warning 5 >"$dir/d.csv" 2>/dev/null
"$tsesim" validate "$dir/d.csv" 2>"$dir/d.err" || fail "500 valid rows: exit $?: $(cat "$dir/d.err")"
grep -qx "$dir/d.csv: 500 devices valid, 0 rows rejected" "$dir/d.err" || fail "$(cat "$dir/d.err")"

# Bad usage: exit 2, the option named.
usage() { # expected-message args...
  want=$1
  shift
  status=0
  "$sim" "$@" >/dev/null 2>"$dir/u.err" || status=$?
  [ "$status" -eq 2 ] || fail "$*: exit status $status, expected 2"
  grep -qF -- "$want" "$dir/u.err" || fail "$*: '$(cat "$dir/u.err")' does not say '$want'"
}
usage "--bad-rows goes with --make-devices" --bad-rows 3
usage "--make-devices: at least 1 row" --make-devices 0
usage "--failing: 'x' is not a whole number" --make-devices 10 --failing x
usage "is more than the 10 rows" --make-devices 10 --bad-rows 5 --failing 5 --warning 1
usage "--make-devices takes only" --make-devices 10 --port 0
echo "make_devices: 12 bad rows rejected, distinct eids, 7 failing and 4 warning imeis, seeded"
