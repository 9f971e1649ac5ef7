#!/bin/sh
# Secrets never reach stdout or stderr (CLI.md "Configuration", issue 12
# "Secrets"): the client secret, the M2M password and the listener password,
# whatever the command, the option (--verbose included, which the command
# may refuse) or the outcome (success, refused credentials, a journal of
# other listener credentials, an unreachable listener, forged callbacks).
# The wrong values given are not printed either.
set -eu
. "$top_srcdir/tests/cli_lib.sh"
cli_init secrets
client_secret=Cl13ntS3cr3tVqXz
password=Us3rPassw0rdKwJp
listener_password=L1st3nerPwdHtRb
wrong_password=Wr0ngPassw0rdYfGc
wrong_secret=Wr0ngS3cr3tDnMs
other_listener=0th3rL1st3nerPwdZk
sim_up --redelivery-interval 0.5 --client "sim-key:$client_secret" --user "sim-user:$password"
TSESIM_CLIENT_SECRET=$client_secret
TSESIM_PASSWORD=$password
TSESIM_LISTENER_USERNAME=listener-user
TSESIM_LISTENER_PASSWORD=$listener_password
export TSESIM_CLIENT_SECRET TSESIM_PASSWORD TSESIM_LISTENER_USERNAME TSESIM_LISTENER_PASSWORD
j=$dir/journal
gen_devices "$dir/d.csv" 4 1 1 1
: >"$dir/all"
keep() { cat "$dir/out" "$dir/err" >>"$dir/all"; }

# every command, with options
any() { # every outcome is fine here: only what is printed matters
  last_cmd="$*"
  tsesim_cmd "$@" >"$dir/out" 2>"$dir/err" || :
  keep
}
any tsesim run --verbose --journal "$j" --account "$ACCOUNT" "$dir/d.csv"
t 1 tsesim run --journal "$j" --account "$ACCOUNT" --plan "$PLAN" --chunk-size 1 --in-flight 2 \
  --wait 30 "$dir/d.csv"
keep
any tsesim run --journal "$j" --account "$ACCOUNT" --plan "$PLAN" --chunk-size 1 --in-flight 2 \
  --wait 30 --verbose "$dir/d.csv"
t 1 tsesim run --journal "$j" --account "$ACCOUNT" --plan "$PLAN" --chunk-size 1 "$dir/d.csv"
keep
t 2 env TSESIM_LISTENER_PASSWORD=$other_listener "$TSESIM" run --journal "$j" --account "$ACCOUNT" \
  --plan "$PLAN" --chunk-size 1 "$dir/d.csv"
keep
t 4 env TSESIM_PASSWORD=$wrong_password "$TSESIM" run --journal "$j.2" --account "$ACCOUNT" "$dir/d.csv"
keep
t 4 env TSESIM_CLIENT_SECRET=$wrong_secret "$TSESIM" run --journal "$j.2" --account "$ACCOUNT" "$dir/d.csv"
keep
any tsesim run --journal "$j.3" --account "$ACCOUNT" --listen 127.0.0.1:1 "$dir/d.csv"
any tsesim validate "$dir/d.csv"
t 1 tsesim status --journal "$j" --json
keep
any tsesim status --journal "$j" --failed
any tsesim --help
any tsesim run --help

# listen, with forged callbacks carrying right and wrong passwords
bg listen tsesim listen --journal "$j"
listen=$bgpid
wait_until "listen prints 'listening on URL'" has_listening listen
url=$(listening_url listen)
for p in "$listener_password" "$other_listener"; do
  curl -sS -o /dev/null -H 'Content-Type: application/json' --data-binary \
    "{\"requestId\":\"00000000-0000-4000-8000-000000000001\",\"deviceIds\":[{\"id\":\"89049032999999999999999999999922\",\"kind\":\"Eid\"}],\"status\":\"SUCCESS\",\"username\":\"listener-user\",\"password\":\"$p\"}" \
    "$url" || fail "cannot POST to $url"
done
kill -TERM "$listen"
bg_wait "$listen" 0 listen
keep

last_cmd=
for s in "$client_secret" "$password" "$listener_password" "$wrong_password" "$wrong_secret" "$other_listener"; do
  if grep -qF -- "$s" "$dir/all"; then
    grep -nF -- "$s" "$dir/all" >&2
    fail "a secret was printed: $s"
  fi
done
[ -s "$dir/all" ] || fail "nothing was printed at all"
echo "secrets: no secret on stdout or stderr of run, listen, status and validate, whatever the options and outcome"
