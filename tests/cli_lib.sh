# Sourced by the tests of the tsesim command (tests/cli_*.sh):
#   . "$top_srcdir/tests/cli_lib.sh"; cli_init NAME
# gives a fresh scratch directory $dir (removed at exit with every process
# started here), helpers to run tsesim and check its exit status and output,
# a simulator on a free loopback port (sim_up), its counters (stat), and a
# device-file generator (gen_devices). Everything a failed expectation knows
# (the command, its stdout and stderr, the simulator's log) is printed.

# The command and the JSON reader, from the build tree.
TSESIM=$top_builddir/tools/tsesim
# TSESIM_RUNNER runs every tsesim under a tool (make check-valgrind-cli:
# tests/valgrind.sh, which fails the command on any error or leak); the
# time a command may take grows with it.
TSESIM_RUNNER=${TSESIM_RUNNER:-}
cli_timeout=60
[ -z "$TSESIM_RUNNER" ] || cli_timeout=300
CLI_JSON=$top_builddir/tests/cli_json
ACCOUNT=0000123456-00001
PLAN=M2M_4G

cli_init() {
  name=$1
  dir=$(mktemp -d "$top_builddir/tests/tmp-cli-$name-XXXXXX")
  bgpids=
  sim=
  last_cmd=
  trap 'cli_cleanup' EXIT
  # Nothing from the caller's environment leaks in.
  unset TSESIM_BASE_URL TSESIM_CLIENT_ID TSESIM_CLIENT_SECRET TSESIM_USERNAME TSESIM_PASSWORD \
    TSESIM_CA_FILE TSESIM_PROXY TSESIM_LISTENER_USERNAME TSESIM_LISTENER_PASSWORD
  [ -x "$TSESIM" ] || fail "no $TSESIM: the tsesim command is not built"
  [ -x "$CLI_JSON" ] || fail "no $CLI_JSON"
}

cli_cleanup() {
  for p in $bgpids $sim; do kill -9 "$p" 2>/dev/null || :; done
  for p in $bgpids $sim; do wait "$p" 2>/dev/null || :; done
  rm -rf "$dir"
}

# fail MESSAGE: the test fails, showing the last command and its output.
fail() {
  {
    echo "$name: FAIL: $1"
    if [ -n "$last_cmd" ]; then
      echo "--- command: $last_cmd"
      [ -f "$dir/out" ] && { echo "--- its stdout:"; cat "$dir/out"; }
      [ -f "$dir/err" ] && { echo "--- its stderr:"; cat "$dir/err"; }
    fi
    if [ -n "$sim" ] && [ -f "$dir/sim.log" ]; then
      echo "--- the simulator's log (last 30 lines):"
      tail -n 30 "$dir/sim.log"
    fi
  } >&2
  exit 1
}

# t STATUS CMD...: runs CMD (stdout to $dir/out, stderr to $dir/err) and
# expects that exit status. tsesim is spelled `tsesim` in CMD.
t() {
  want=$1
  shift
  last_cmd="$*"
  got=0
  tsesim_cmd "$@" >"$dir/out" 2>"$dir/err" || got=$?
  [ "$got" != 124 ] || [ "$want" = 124 ] || fail "no exit within $cli_timeout s (timeout), expected exit status $want"
  [ "$got" = "$want" ] || fail "exit status $got, expected $want"
}
# A command that hangs fails after $cli_timeout s (timeout's 124) instead of hanging
# the suite.
tsesim_cmd() {
  if [ "$1" = tsesim ]; then
    shift
    # shellcheck disable=SC2086 # TSESIM_RUNNER: a command and its options
    timeout --foreground -k 5 "$cli_timeout" $TSESIM_RUNNER "$TSESIM" "$@"
  else
    timeout --foreground -k 5 60 "$@"
  fi
}

# The last line of stdout is exactly this summary line.
expect_summary() {
  [ "$(tail -n 1 "$dir/out")" = "$1" ] || fail "the last line of stdout is not: $1"
}
# stderr (or FILE) has a line matching the extended regex.
expect_err() { grep -qE -e "$1" "${2:-$dir/err}" || fail "no line matching /$1/ in ${2:-its stderr}"; }
expect_no_err() { ! grep -qE -e "$1" "${2:-$dir/err}" || fail "a line matches /$1/ in ${2:-its stderr}"; }
# The exact last line of stderr.
expect_last_err() { [ "$(tail -n 1 "$dir/err")" = "$1" ] || fail "the last line of stderr is not: $1"; }

# ---- the simulator ----
# sim_up [tsesim-sim options]: starts it on a free loopback port (its log in
# $dir/sim.log), sets $simurl and $base, and points tsesim at it with the
# simulator's default credentials.
sim_up() {
  rm -f "$dir/sim.port"
  "$top_builddir/tools/tsesim-sim" --port 0 --port-file "$dir/sim.port" --log "$dir/sim.log" "$@" \
    >"$dir/sim.out" 2>&1 &
  sim=$!
  i=0
  while [ ! -s "$dir/sim.port" ]; do
    kill -0 "$sim" 2>/dev/null || { cat "$dir/sim.out" >&2; sim=; fail "tsesim-sim exited"; }
    i=$((i + 1))
    [ "$i" -lt 1000 ] || fail "tsesim-sim did not start"
    sleep 0.01
  done
  simurl="http://127.0.0.1:$(cat "$dir/sim.port")"
  base="$simurl/api"
  sim_env
}
sim_env() {
  TSESIM_BASE_URL=$base
  TSESIM_CLIENT_ID='sim-key'
  TSESIM_CLIENT_SECRET='sim-secret'
  TSESIM_USERNAME='sim-user'
  TSESIM_PASSWORD='sim-pass'
  export TSESIM_BASE_URL TSESIM_CLIENT_ID TSESIM_CLIENT_SECRET TSESIM_USERNAME TSESIM_PASSWORD
}

# simstat downloads.eids_repeated: one of the simulator's counters.
simstat() {
  curl -sS "$simurl/_sim/stats" >"$dir/stats.json" || fail "cannot read the simulator's stats"
  "$CLI_JSON" get "$dir/stats.json" "$1" || fail "no $1 in the simulator's stats"
}
# expect_stats KEY VALUE...: each counter has its value.
expect_stats() {
  while [ $# -gt 0 ]; do
    v=$(simstat "$1")
    [ "$v" = "$2" ] || fail "the simulator's $1 is $v, expected $2 ($(cat "$dir/stats.json"))"
    shift 2
  done
}
# eid_downloads EID: how many accepted downloads held the EID.
eid_downloads() {
  curl -sS "$simurl/_sim/eids/$1" >"$dir/eid.json" || fail "cannot read /_sim/eids/$1"
  "$CLI_JSON" get "$dir/eid.json" downloads
}
# expect_each_eid_once FILE: every EID of the valid rows FILE lists (the
# first column) was downloaded exactly once.
expect_each_eid_once() {
  for e in $(sed -n '2,$s/^\([0-9]\{32\}\),.*/\1/p' "$1"); do
    n=$(eid_downloads "$e")
    [ "$n" = 1 ] || fail "EID $e was downloaded $n times"
  done
}
# faults JSON: replaces the simulator's fault settings.
faults() {
  curl -sS -o "$dir/faults.out" -w '%{http_code}' -H 'Content-Type: application/json' -d "$1" \
    "$simurl/_sim/faults" >"$dir/faults.code" || fail "cannot set the faults $1"
  [ "$(cat "$dir/faults.code")" = 200 ] || fail "faults $1: $(cat "$dir/faults.out")"
}

# wait_until DESCRIPTION CMD...: polls CMD every 20 ms, for at most 15 s.
wait_until() {
  desc=$1
  shift
  i=0
  until "$@"; do
    i=$((i + 1))
    [ "$i" -lt 750 ] || fail "timed out waiting until $desc"
    sleep 0.02
  done
}
stat_ge() { [ "$(simstat "$1")" -ge "$2" ]; }

# ---- background commands ----
# bg NAME CMD...: starts tsesim in the background, its output in
# $dir/NAME.out and $dir/NAME.err; its pid in $bgpid.
# The command runs without timeout(1), so that its pid is the command's own
# (for kill -9); bg_wait bounds the wait instead.
bg() {
  bgname=$1
  shift
  # shellcheck disable=SC2086
  [ "$1" != tsesim ] || { shift; set -- $TSESIM_RUNNER "$TSESIM" "$@"; }
  "$@" >"$dir/$bgname.out" 2>"$dir/$bgname.err" &
  bgpid=$!
  bgpids="$bgpids $bgpid"
}
# alive PID: the process runs (a zombie, exited and not yet waited for, does not).
alive() { [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'; }
# bg_wait PID STATUS NAME: waits (at most $cli_timeout s) for a background command and
# expects its exit status; its output becomes $dir/out and $dir/err.
bg_wait() {
  i=0
  while alive "$1"; do
    i=$((i + 1))
    [ "$i" -lt $((cli_timeout * 25)) ] || { kill -9 "$1"; cp "$dir/$3.out" "$dir/out"; cp "$dir/$3.err" "$dir/err"; \
      last_cmd="(in the background) $3"; fail "$3 did not exit within $cli_timeout s"; }
    sleep 0.02
  done
  got=0
  wait "$1" || got=$?
  cp "$dir/$3.out" "$dir/out"
  cp "$dir/$3.err" "$dir/err"
  last_cmd="(in the background) $3"
  [ "$got" = "$2" ] || fail "exit status $got, expected $2"
}
# listening NAME: the URL a `tsesim listen` in the background printed.
listening_url() { sed -n 's/^listening on \(.*\)$/\1/p' "$dir/$1.err" | head -n 1; }
has_listening() { [ -n "$(listening_url "$1")" ]; }

# ---- device files ----
# gen_devices FILE N [START [FAILED [WARNED]]]: a header and N valid devices
# numbered from START (default 1), with EID, ICCID and IMEI check digits
# right. The first FAILED of them get an IMEI ending in 13 (the simulator
# fails them), the next WARNED one ending in 77 (a Warning, then SUCCESS);
# every other IMEI ends in 0 and a digit, so the simulator succeeds it.
gen_devices() {
  awk -v n="$2" -v start="${3:-1}" -v failed="${4:-0}" -v warned="${5:-0}" '
    function luhn(s,   i, d, sum, dbl) {
      sum = 0; dbl = 1
      for (i = length(s); i > 0; i--) {
        d = substr(s, i, 1) + 0
        if (dbl) { d *= 2; if (d > 9) d -= 9 }
        sum += d; dbl = !dbl
      }
      return (10 - sum % 10) % 10
    }
    function eid(s,   i, r) {
      r = 0
      for (i = 1; i <= length(s); i++) r = (r * 10 + substr(s, i, 1)) % 97
      return s sprintf("%02d", 98 - (r * 100) % 97)
    }
    # 14 digits ending in last, then the Luhn digit: vary one digit until
    # that digit is want (-1: any).
    function imei(i, last, want,   x, s) {
      for (x = 0; x < 10; x++) {
        s = "352099" x sprintf("%06d", i) last
        if (want < 0 || luhn(s) == want) return s luhn(s)
      }
    }
    BEGIN {
      print "eid,iccid,imei"
      for (k = 0; k < n; k++) {
        i = start + k
        if (k < failed) m = imei(i, 1, 3)
        else if (k < failed + warned) m = imei(i, 7, 7)
        else m = imei(i, 0, -1)
        s = "8901410" sprintf("%012d", i)
        print eid("89049032" sprintf("%022d", i)) "," s luhn(s) "," m
      }
    }' >"$1"
}
# The summary line of N devices that all ended SUCCESS.
all_success() { echo "devices $1 success $1 failed 0 unknown 0 refused 0 pending 0 invalid 0"; }

# registered_url: the listener URL the simulator holds for $ACCOUNT (what
# `run` registered), read through the API as a client would.
registered_url() {
  curl -sS -u sim-key:sim-secret -d grant_type=client_credentials "$base/ts/v1/oauth2/token" \
    >"$dir/token.json" || fail "no token from the simulator"
  tok=$("$CLI_JSON" get "$dir/token.json" access_token) || fail "no access_token"
  curl -sS -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    -d '{"username":"sim-user","password":"sim-pass"}' "$base/m2m/v1/session/login" \
    >"$dir/session.json" || fail "no session from the simulator"
  ses=$("$CLI_JSON" get "$dir/session.json" sessionToken) || fail "no sessionToken"
  curl -sS -H "Authorization: Bearer $tok" -H "VZ-M2M-Token: $ses" \
    "$base/m2m/v1/callbacks/$ACCOUNT" >"$dir/callbacks.json" || fail "cannot list the listeners"
  "$CLI_JSON" get "$dir/callbacks.json" 0.url
}
# registered_count: how many listeners the simulator holds for $ACCOUNT.
registered_count() {
  registered_url >/dev/null 2>&1 || :
  tr -cd '{' <"$dir/callbacks.json" | wc -c
}
