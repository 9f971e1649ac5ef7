#!/usr/bin/env python3
"""job.py - the whole Global eSIM download job from Python, results included.

    python3 job.py [--journal DB] [--account NAME] [--plan PLAN] [--job NAME]
                   [--chunk-size N] [--in-flight K] [--wait SECONDS] DEVICES.csv

Reads the device file (a header naming eid and iccid and/or imei; bad rows
go to stderr as FILE:LINE: reason and are never sent), starts the library's
callback listener on the journal, registers it with ThingSpace, submits the
devices as a job (chunks of up to 10,000, recorded in the journal before
they are sent), waits until every device is final, and prints the outcome.
Run it again with the same journal and it resumes the job: nothing that may
have been acted on is sent twice.

The environment, as tsesim(1) reads it:
  TSESIM_BASE_URL        default https://thingspace.verizon.com/api
  TSESIM_CLIENT_ID, TSESIM_CLIENT_SECRET   the OAuth client
  TSESIM_USERNAME, TSESIM_PASSWORD         the M2M user
  TSESIM_CA_FILE         a PEM bundle to verify ThingSpace with (optional)
  TSESIM_LISTENER_USERNAME, TSESIM_LISTENER_PASSWORD   what ThingSpace must
                         echo in every callback (default: random, kept in
                         the journal, so that a resumed job uses the same)

The listener binds 127.0.0.1 on a free port, which is right for a local
tools/tsesim-sim; against ThingSpace itself it must be reachable from
Verizon over public HTTPS: give --listen 0.0.0.0:PORT --public-url URL
(--tls-cert/--tls-key, or a reverse proxy in front).

stdout: one line per device (for up to 100 rows), then
  callbacks C duplicates D unmatched U
  devices N success S failed F unknown U refused R pending P invalid I
Exit status, as tsesim run's: 0 every device SUCCESS; 1 some rows invalid,
failed or refused; 2 usage, file or journal; 3 unfinished (run it again);
4 credentials refused.
"""

import argparse
import os
import secrets
import sys
import time

import tsesim

TABLE_MAX = 100


def env(name, default=None):
    return os.environ.get(name) or default


def listener_credentials(journal):
    """What ThingSpace echoes in every callback: the environment's, else the
    journal's (a resumed job), else new random ones, kept in the journal."""
    user = env("TSESIM_LISTENER_USERNAME")
    password = env("TSESIM_LISTENER_PASSWORD")
    kept = journal.get("app.listener.username"), journal.get("app.listener.password")
    if user and password:
        if kept[0] and kept != (user, password):
            raise SystemExit("job.py: TSESIM_LISTENER_USERNAME/PASSWORD differ from the "
                             "journal's: ThingSpace still echoes those")
    elif kept[0]:
        user, password = kept
    else:
        user, password = "tsesim-" + secrets.token_hex(8), secrets.token_urlsafe(24)
    journal.set("app.listener.username", user)
    journal.set("app.listener.password", password)
    return user, password


def main(argv):
    ap = argparse.ArgumentParser(description="Download eSIM profiles for a device file.")
    ap.add_argument("devices", help="the device file (CSV)")
    ap.add_argument("--journal", default="job.journal", help="the journal (SQLite) file")
    ap.add_argument("--account", default="0000123456-00001", help="the ThingSpace account")
    ap.add_argument("--plan", default=None, help="the service plan")
    ap.add_argument("--job", default="job", help="the job's name in the journal")
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--in-flight", type=int, default=None)
    ap.add_argument("--wait", type=float, default=3600, help="seconds to wait for callbacks")
    ap.add_argument("--listen", default="127.0.0.1:0", help="the listener's HOST:PORT")
    ap.add_argument("--public-url", default=None, help="the URL ThingSpace calls back")
    ap.add_argument("--tls-cert", default=None)
    ap.add_argument("--tls-key", default=None)
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    for name in ("TSESIM_CLIENT_ID", "TSESIM_CLIENT_SECRET", "TSESIM_USERNAME", "TSESIM_PASSWORD"):
        if not env(name):
            print("job.py: %s is not set" % name, file=sys.stderr)
            return 2

    # 1. The devices: valid rows go into the request, bad ones are reported.
    try:
        request = tsesim.Request(args.account, service_plan=args.plan)
        rows = tsesim.read_devices(args.devices, request)
    except tsesim.Error as e:
        where = "" if e.message.startswith(args.devices) else args.devices + ": "
        print("job.py: %s%s" % (where, e.message), file=sys.stderr)
        return 2
    for row in rows:
        if row.error:
            print("%s:%d: %s" % (args.devices, row.line, row.error), file=sys.stderr)

    try:
        with tsesim.Journal(args.journal) as journal:
            # 2. The listener: it stores each callback in the journal before it answers 200.
            user, password = listener_credentials(journal)
            with tsesim.Listener(journal, address=host.strip("[]") or None, port=int(port),
                                 username=user, password=password,
                                 tls_cert_file=args.tls_cert, tls_key_file=args.tls_key) \
                    as listener, \
                    tsesim.Client(base_url=env("TSESIM_BASE_URL"),
                                  client_id=env("TSESIM_CLIENT_ID"),
                                  client_secret=env("TSESIM_CLIENT_SECRET"),
                                  username=env("TSESIM_USERNAME"),
                                  password=env("TSESIM_PASSWORD"),
                                  ca_file=env("TSESIM_CA_FILE"),
                                  user_agent="job.py-example") as client:
                # 3. Register it, then submit the job, printing each chunk's outcome.
                url = args.public_url or listener.url
                client.register_callback(args.account, url, user, password)
                print("listener %s registered" % url, flush=True)
                return run(args, journal, client, request, rows)
    except tsesim.AuthError as e:
        print("job.py: credentials refused: %s" % e.message, file=sys.stderr)
        return 4
    except (tsesim.JournalError, tsesim.InvalidInput) as e:
        print("job.py: %s" % e, file=sys.stderr)
        return 2
    except tsesim.Error as e:  # registering the listener: ThingSpace unreachable, ...
        print("job.py: %s" % e, file=sys.stderr)
        return 3


def run(args, journal, client, request, rows):
    def progress(p):
        if p.chunk is not None and p.state != "sending":
            print("chunk %d %s%s (%d of %d devices accepted)"
                  % (p.chunk, p.state, ": " + p.error if p.error else "", p.accepted,
                     p.devices), file=sys.stderr)

    try:
        journal.submit(client, args.job, request, rows=rows, chunk_size=args.chunk_size,
                       in_flight=args.in_flight, progress=progress)
    except KeyboardInterrupt:  # Ctrl-C: the chunks on the wire were recorded first
        print("job.py: interrupted; run it again to send the rest", file=sys.stderr)
        return 3
    except (tsesim.AuthError, tsesim.JournalError, tsesim.InvalidInput, tsesim.NoMemory):
        raise
    except tsesim.Error as e:
        # Chunks left queued (run again), unknown or refused: the callbacks of the
        # accepted ones still come, and an unknown chunk may resolve by them.
        print("job.py: submit: %s" % e, file=sys.stderr)
    print("job %s submitted: %d devices" % (args.job, len(request)), flush=True)

    # 4. Wait until every submitted device is final, then report.
    started = time.monotonic()
    done, counts = journal.wait(args.job, timeout=args.wait)
    if not done:
        print("job.py: %d devices not final after %.0f s"
              % (counts.submitted + counts.warning + counts.unknown,
                 time.monotonic() - started), file=sys.stderr)
    if counts.devices <= TABLE_MAX:
        print("%5s  %-32s  %-20s  %-15s  %-9s  %-7s  %9s  %s"
              % ("LINE", "EID", "ICCID", "IMEI", "STATE", "STATUS", "CALLBACKS", "FAULT/ERROR"))
        for d in journal.devices(args.job):
            note = d.fault or d.error
            print("%5d  %-32s  %-20s  %-15s  %-9s  %-7s  %9d%s"
                  % (d.line, d.eid or "-", d.iccid or "-", d.imei or "-", d.state,
                     d.status or "-", d.callbacks, "  " + note if note else ""))
    print("callbacks %d duplicates %d unmatched %d"
          % (counts.callbacks, counts.duplicates, counts.unmatched))
    print(counts.summary())
    if counts.pending or counts.unknown or not done:
        return 3  # run it again: it goes on where it stopped
    if counts.invalid or counts.failed or counts.refused:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
