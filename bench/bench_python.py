#!/usr/bin/env python3
"""bench_python.py - the Python package against pure Python (issue 13).

A. 10,000 devices built and serialized through the package:
   tsesim.Request + add_devices(rows) + to_json(), which checks every
   identifier and makes the body in C; against the same rows made into a
   list of dicts in the ThingSpace body's shape and serialized by the
   standard library's json.dumps (compact separators) and encoded, which
   checks nothing. Both give the same bytes (checked before timing). Rounds
   interleave the two (alternating which goes first, a gc.collect() before
   each); the bound is on the median of each round's ratio, package/stdlib:
   at most 1.0, so that the package is no slower than pure Python. Printed
   for all three identifiers (bounded) and for rows with absent ones
   (bounded too: None takes another path in add_devices).
B. One single-device download's latency through the package
   (Client.download) against the C client's (bench/bench_download, the same
   calls from C), both warm, against one tools/tsesim-sim, interleaved in
   rounds: printed, not bounded.

Usage: bench_python.py PATH-TO-tsesim-sim PATH-TO-bench_download
with TSESIM_LIBRARY naming the library and the package on PYTHONPATH (make
bench sets both to the build tree's). Exits 1 when a bound fails, 2 when
the benchmark cannot run.
"""

import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import tsesim

N_DEVICES = 10000
ROUNDS = 41
LAT_ROUNDS = 30
LAT_PER_ROUND = 10
ACCOUNT = "0000123456-00001"
KINDS = ("eid", "iccid", "imei")

failures = 0


def die(what):
    print("bench_python: %s" % what, file=sys.stderr)
    sys.exit(2)


def ratio_line(what, ratio, bound):
    """Prints as bench.h's bench_ratio and counts a failed bound."""
    global failures
    ok = ratio <= bound
    print("  %-44s ratio %.3f  (bound <= %.2f)  %s" % (what, ratio, bound, "ok" if ok else "FAILED"))
    if not ok:
        failures += 1


# ---- identifiers, made here independently of the library ----

def luhn(payload):
    """payload and its Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = ord(ch) - 48
        if i % 2 == 0:  # the rightmost payload digit is doubled
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return payload + str((10 - total % 10) % 10)


def eid(payload30):
    """A 30-digit payload and its ISO 7064 MOD 97-10 check digits."""
    return payload30 + "%02d" % (98 - int(payload30) % 97 * 100 % 97)


def make_rows(n, absent):
    """n (eid, iccid, imei) rows of str; absent: some None (no imei in every
    third row, no iccid in every fifth that has an imei)."""
    rnd = random.Random(13)
    rows = []
    for i in range(n):
        e = eid("89%028d" % rnd.randrange(10**28))
        c = luhn("8901%015d" % rnd.randrange(10**15))
        m = luhn("35%012d" % rnd.randrange(10**12))
        if absent and i % 3 == 0:
            m = None
        elif absent and i % 5 == 0:
            c = None
        rows.append((e, c, m))
    return rows


# ---- A: build and serialize ----

def by_package(rows):
    req = tsesim.Request(ACCOUNT)
    req.add_devices(rows)
    return req.to_json()


def by_stdlib(rows):
    devices = [
        {"deviceIds": [{"kind": "eid", "id": e}, {"kind": "iccid", "id": c}, {"kind": "imei", "id": m}]}
        for e, c, m in rows
    ]
    return json.dumps({"devices": devices, "accountName": ACCOUNT}, separators=(",", ":")).encode()


def by_stdlib_absent(rows):
    devices = [
        {"deviceIds": [{"kind": k, "id": v} for k, v in zip(KINDS, row) if v is not None]}
        for row in rows
    ]
    return json.dumps({"devices": devices, "accountName": ACCOUNT}, separators=(",", ":")).encode()


def timed(fn, rows):
    gc.collect()
    t0 = time.perf_counter()
    fn(rows)
    return time.perf_counter() - t0


def bench_build(title, rows, stdlib):
    if by_package(rows) != stdlib(rows):
        die("%s: the package's body and json.dumps's differ" % title)
    for _ in range(3):  # warm both
        by_package(rows)
        stdlib(rows)
    tp, ts, pair = [], [], []
    for r in range(ROUNDS):
        if r % 2:
            s = timed(stdlib, rows)
        p = timed(by_package, rows)
        if not r % 2:
            s = timed(stdlib, rows)
        tp.append(p)
        ts.append(s)
        pair.append(p / s)
    mp, ms = statistics.median(tp), statistics.median(ts)
    print("%s, %d devices, %d interleaved rounds (%d-byte body)"
          % (title, len(rows), ROUNDS, len(by_package(rows))))
    print("  package: Request + add_devices + to_json   median %7.2f ms" % (mp * 1e3))
    print("  stdlib: dicts + json.dumps + encode        median %7.2f ms" % (ms * 1e3))
    print("  ratio of medians %.3f" % (mp / ms))
    ratio_line("package / json.dumps (median of rounds)", statistics.median(pair), 1.0)


# ---- B: one download's latency ----

def start_sim(sim, tmp):
    port_file = os.path.join(tmp, "port")
    proc = subprocess.Popen([sim, "--port", "0", "--port-file", port_file],
                            stdout=subprocess.DEVNULL)
    for _ in range(2000):
        if os.path.exists(port_file):
            with open(port_file) as f:
                return proc, "http://127.0.0.1:%s/api" % f.read().strip()
        if proc.poll() is not None:
            die("tsesim-sim exited at start")
        time.sleep(0.005)
    proc.terminate()
    die("tsesim-sim wrote no port file")


def p95(v):
    v = sorted(v)
    return v[int(0.95 * (len(v) - 1))]


def bench_latency(sim, helper_path):
    tmp = tempfile.mkdtemp(prefix="bench-python-")
    sim_proc, base = start_sim(sim, tmp)
    helper = None
    try:
        helper = subprocess.Popen([helper_path, base], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

        def c_round(n):
            helper.stdin.write("%d\n" % n)
            helper.stdin.flush()
            line = helper.stdout.readline()
            times = [float(x) for x in line.split()]
            if len(times) != n:
                die("bench_download stopped (see its message)")
            return times

        req = tsesim.Request(ACCOUNT)
        req.add_device(*make_rows(1, False)[0])
        with tsesim.Client(base_url=base, client_id="sim-key", client_secret="sim-secret",
                           username="sim-user", password="sim-pass") as client:
            def py_round(n):
                times = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    rid = client.download(req)
                    times.append(time.perf_counter() - t0)
                    if not rid:
                        die("a download without requestId")
                return times

            client.login()
            py_round(5)  # warm both: connection up, caches filled
            c_round(5)
            tpy, tc = [], []
            for r in range(LAT_ROUNDS):
                if r % 2:
                    tc += c_round(LAT_PER_ROUND)
                tpy += py_round(LAT_PER_ROUND)
                if not r % 2:
                    tc += c_round(LAT_PER_ROUND)
        mpy, mc = statistics.median(tpy), statistics.median(tc)
        print("one download of 1 device against tsesim-sim, warm clients, %d interleaved rounds of %d"
              % (LAT_ROUNDS, LAT_PER_ROUND))
        print("  package: Client.download                  median %7.1f us  p95 %7.1f us"
              % (mpy * 1e6, p95(tpy) * 1e6))
        print("  C client: tsesim_client_download          median %7.1f us  p95 %7.1f us"
              % (mc * 1e6, p95(tc) * 1e6))
        print("  ratio of medians %.3f (printed, not bounded)" % (mpy / mc))
    finally:
        if helper:
            helper.stdin.close()
            helper.wait()
        sim_proc.terminate()
        sim_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) != 3:
        die("usage: bench_python.py PATH-TO-tsesim-sim PATH-TO-bench_download")
    print("python %s, package %s, library %s"
          % (sys.version.split()[0], tsesim.__version__, tsesim.library_version()))
    bench_build("Python package: all three identifiers", make_rows(N_DEVICES, False), by_stdlib)
    bench_build("Python package: rows with absent identifiers (None)", make_rows(N_DEVICES, True),
                by_stdlib_absent)
    bench_latency(sys.argv[1], sys.argv[2])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
