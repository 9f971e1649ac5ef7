"""The journal, jobs, the tracker and device files, against tools/tsesim-sim.

A small job end to end (examples/devices.csv, as tests/roundtrip.sh expects
it), a stop callable, hooks that raise, settings, read_devices's sources, the
layout of the structs this part mirrors, and examples/python/job.py on
25,000 generated devices.
"""

import gc
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from jobs_support import ACCOUNT, CREDENTIALS, DEVICES_CSV, PACKAGE_DIR, SRCDIR, Sim, env
from test_layout import c_layouts, mismatches

import tsesim
from tsesim import _native

LISTENER_USER, LISTENER_PASS = "listener", "listener-secret"

# examples/devices.csv: lines 2-12, four rows rejected.
VALID_LINES = [2, 3, 4, 9, 10, 11, 12]
REJECTED = {
    5: "imei: check digit 4 does not match (expected 3)",
    8: "2 cells, the header has 3",
}


class TempDir(object):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tsesim-pyjobs-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)


class ReadDevices(TempDir, unittest.TestCase):
    def check_rows(self, rows, req):
        self.assertEqual(len(rows), 11)
        self.assertEqual(rows.rejected, 4)
        self.assertEqual(len(req), 7)
        self.assertEqual([r.line for r in rows], list(range(2, 13)))
        self.assertEqual([r.line for r in rows if r.error is None], VALID_LINES)
        self.assertEqual([r.device for r in rows if r.error is None], list(range(7)))
        for line, why in REJECTED.items():
            self.assertEqual(rows[line - 2].error, why)
            self.assertIsNone(rows[line - 2].device)
        self.assertEqual(
            rows[0],
            tsesim.Row(line=2, eid="89049032526018159083016613186029",
                       iccid="89014109139099603087", imei="352099002462816", error=None,
                       device=0))
        self.assertEqual(rows[2].iccid, None)  # line 4: an empty cell
        self.assertEqual(rows[-1].line, 12)
        self.assertEqual([r.line for r in rows[1:3]], [3, 4])
        with self.assertRaises(IndexError):
            rows[11]

    def test_path(self):
        req = tsesim.Request(ACCOUNT)
        with tsesim.read_devices(DEVICES_CSV, req) as rows:
            self.check_rows(rows, req)
        with self.assertRaises(ValueError):
            len(rows)  # closed

    def test_bytes_path_fd_and_file_objects(self):
        with open(DEVICES_CSV, "rb") as f:
            data = f.read()
        req = tsesim.Request(ACCOUNT)
        self.check_rows(tsesim.read_devices(os.fsencode(DEVICES_CSV), req), req)
        req = tsesim.Request(ACCOUNT)
        fd = os.open(DEVICES_CSV, os.O_RDONLY)
        try:
            self.check_rows(tsesim.read_devices(fd, req), req)
            self.assertEqual(os.read(fd, 1), b"")  # read to its end, not closed
        finally:
            os.close(fd)
        req = tsesim.Request(ACCOUNT)
        self.check_rows(tsesim.read_devices(io.BytesIO(data), req), req)
        with open(DEVICES_CSV, "rb") as f:
            req = tsesim.Request(ACCOUNT)
            self.check_rows(tsesim.read_devices(f, req), req)

    def test_rows_outlive_the_callers_request_reference(self):
        req = tsesim.Request(ACCOUNT)
        rows = tsesim.read_devices(DEVICES_CSV, req)
        del req  # the rows keep it: their valid cells are read from it
        self.assertEqual(rows[0].eid, "89049032526018159083016613186029")

    def test_not_a_device_file(self):
        req = tsesim.Request(ACCOUNT)
        req.add_device(eid="89049032526018159083016613186029", imei="352099002462816")
        with self.assertRaises(tsesim.InvalidInput) as cm:
            tsesim.read_devices(io.BytesIO(b"eid,color\n1,2\n"), req)
        self.assertIn("line 1", cm.exception.message)
        self.assertEqual(cm.exception.code, "TSESIM_E_INVAL")
        self.assertEqual(len(req), 1)  # as it was
        missing = self.path("missing.csv")
        with self.assertRaises(tsesim.InvalidInput) as cm:
            tsesim.read_devices(missing, req)
        self.assertIn(missing, cm.exception.message)
        with open(DEVICES_CSV) as text:
            with self.assertRaises(TypeError):
                tsesim.read_devices(text, req)
        with self.assertRaises(TypeError):
            tsesim.read_devices(3.5, req)
        with self.assertRaises(TypeError):
            tsesim.read_devices(DEVICES_CSV, "not a request")


class Settings(TempDir, unittest.TestCase):
    def test_set_get_remove_and_reopen(self):
        path = self.path("j.db")
        with tsesim.Journal(path) as j:
            self.assertIsNone(j.get("app.secret"))
            self.assertEqual(j.get("app.secret", "x"), "x")
            j.set("app.secret", "s3cr\u00e9t")
            j.set("app.other", "1")
            j.set("app.other", None)
            self.assertEqual(j.get("app.secret"), "s3cr\u00e9t")
            self.assertIsNone(j.get("app.other"))
            with self.assertRaises(tsesim.InvalidInput):
                j.set("", "v")
            with self.assertRaises(tsesim.InvalidInput):
                j.set("k" * 201, "v")
            with self.assertRaises(tsesim.InvalidInput):
                j.set("a\0b", "v")
        self.assertTrue(j.closed)
        with self.assertRaises(ValueError):
            j.get("app.secret")
        j.close()  # twice is fine
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with tsesim.Journal(path) as j:
            self.assertEqual(j.get("app.secret"), "s3cr\u00e9t")

    def test_journal_errors(self):
        with self.assertRaises(tsesim.JournalError) as cm:
            tsesim.Journal(self.path("no/such/dir/j.db"))
        self.assertEqual(cm.exception.code, "TSESIM_E_JOURNAL")
        with open(self.path("text"), "w") as f:
            f.write("this is not an SQLite database, and it is long enough to show it\n" * 20)
        with self.assertRaises(tsesim.JournalError):
            tsesim.Journal(self.path("text"))
        with tsesim.Journal(self.path("j.db")) as j:
            with self.assertRaises(tsesim.InvalidInput) as cm:
                j.count("nothing")
            self.assertTrue(cm.exception.message)


class SharedJournal(TempDir, unittest.TestCase):
    """One Journal used by several Python threads at once: its lock makes
    their C calls take turns (a journal is one SQLite connection)."""

    def test_threads(self):
        req = tsesim.Request(ACCOUNT)
        rows = tsesim.read_devices(DEVICES_CSV, req)
        failures = []
        with tsesim.Journal(self.path("shared.db")) as j:
            j.record("shared", req, rows=rows)

            def reader():
                try:
                    for _ in range(100):
                        assert j.count("shared").queued == 7
                        assert [d.line for d in j.devices("shared")] == list(range(2, 13))
                        assert rows[0].line == 2
                except Exception as e:  # reported below
                    failures.append(e)

            threads = [threading.Thread(target=reader) for _ in range(4)]
            for t in threads:
                t.start()
            for i in range(20):
                j.set("app.n", str(i))
            for t in threads:
                t.join()
            self.assertEqual(j.get("app.n"), "19")
        self.assertEqual(failures, [])


class Jobs(TempDir, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("--redelivery-interval", "1")

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()

    def client(self):
        return tsesim.Client(base_url=self.sim.base, **CREDENTIALS)

    def devices(self):
        req = tsesim.Request(ACCOUNT)
        return req, tsesim.read_devices(DEVICES_CSV, req)

    def test_small_job_end_to_end(self):
        req, rows = self.devices()
        path = self.path("job.db")
        reports = []
        sim = Sim("--redelivery-interval", "1")  # its own: the other tests send these devices too
        self.addCleanup(sim.close)
        with tsesim.Journal(path) as j, \
                tsesim.Listener(j, username=LISTENER_USER, password=LISTENER_PASS) as listener, \
                tsesim.Client(base_url=sim.base, **CREDENTIALS) as client:
            self.assertGreater(listener.port, 0)
            self.assertEqual(listener.url, "http://127.0.0.1:%d/callbacks" % listener.port)
            client.register_callback(ACCOUNT, listener.url, LISTENER_USER, LISTENER_PASS)
            self.assertIsNone(j.submit(client, "roundtrip", req, rows=rows,
                                       progress=reports.append))
            done, counts = j.wait("roundtrip", timeout=60)
            self.assertTrue(done, counts)
            devices = j.devices("roundtrip")
            self.assertEqual(j.count(), counts)  # the journal's only job
        # Progress: the first report, then chunk 0 sending and accepted.
        self.assertIsInstance(reports[0], tsesim.JobProgress)
        self.assertIsNone(reports[0].chunk)
        changes = [(p.chunk, p.state) for p in reports if p.chunk is not None]
        self.assertEqual(changes, [(0, "sending"), (0, "accepted")])
        last = [p for p in reports if p.chunk is not None][-1]
        self.assertEqual((last.devices, last.accepted, last.queued, last.chunks,
                          last.chunks_done), (7, 7, 0, 1, 1))
        self.assertGreater(last.bytes, 0)
        self.assertIsNone(last.error)
        request_id = last.request_id
        self.assertRegex(request_id, "^[0-9a-f-]{36}$")
        # Counts: every field, as tests/roundtrip.sh expects them.
        self.assertEqual(counts, tsesim.JobCounts(
            devices=11, queued=0, submitted=0, unknown=0, refused=0, warning=0, success=6,
            failed=1, invalid=4, callbacks=8, duplicates=0, unmatched=0))
        self.assertEqual(counts.pending, 0)
        self.assertEqual(counts.summary(),
                         "devices 11 success 6 failed 1 unknown 0 refused 0 pending 0 invalid 4")
        # Devices, in file order.
        self.assertEqual([d.line for d in devices], list(range(2, 13)))
        by_line = {d.line: d for d in devices}
        self.assertEqual(by_line[2], tsesim.DeviceStatus(
            line=2, eid="89049032526018159083016613186029", iccid="89014109139099603087",
            imei="352099002462816", state="success", request_id=request_id, status="SUCCESS",
            fault=None, error=None, callbacks=1))
        self.assertEqual((by_line[4].iccid, by_line[4].state), (None, "success"))
        self.assertEqual(by_line[5].state, "invalid")
        self.assertEqual(by_line[5].error, REJECTED[5])
        self.assertIsNone(by_line[5].request_id)
        self.assertEqual((by_line[10].imei, by_line[10].state), (None, "success"))
        self.assertEqual((by_line[11].state, by_line[11].status, by_line[11].fault),
                         ("failed", "Failed", "REQUEST_FAILED.Device.NotReachable"))
        self.assertEqual((by_line[12].state, by_line[12].callbacks), ("success", 2))
        self.assertEqual(sum(d.state == "invalid" for d in devices), 4)
        self.assertEqual(sim.stats()["downloads"]["eids_repeated"], 0,
                         "a device was downloaded twice")

    def test_stop_after_the_first_chunk(self):
        req, rows = self.devices()
        changes = []

        def progress(p):
            if p.chunk is not None:
                changes.append((p.chunk, p.state))

        def stop():
            return (0, "accepted") in changes

        with tsesim.Journal(self.path("stop.db")) as j, self.client() as client:
            with self.assertRaises(tsesim.Cancelled) as cm:
                j.submit(client, "stopped", req, rows=rows, chunk_size=2, in_flight=1,
                         progress=progress, stop=stop)
            self.assertEqual(cm.exception.code, "TSESIM_E_CANCELLED")
            self.assertIn("stopped by its stop_fn", cm.exception.message)
            self.assertEqual(changes, [(0, "sending"), (0, "accepted")])
            counts = j.count("stopped")
            self.assertEqual((counts.devices, counts.queued, counts.invalid), (11, 5, 4))
            self.assertEqual(counts.submitted + counts.success + counts.failed
                             + counts.warning, 2)
            states = [d.state for d in j.devices("stopped") if d.state != "invalid"]
            self.assertEqual(states[2:], ["queued"] * 5)
            # Run again (chunk size as recorded): only the queued chunks go.
            del changes[:]
            j.submit(client, "stopped", req, rows=rows, progress=progress)
            self.assertEqual([c for c in changes if c[1] == "sending"],
                             [(1, "sending"), (2, "sending"), (3, "sending")])
            self.assertEqual(j.count("stopped").queued, 0)
            # Another chunk size than recorded: refused before anything is sent.
            with self.assertRaises(tsesim.InvalidInput):
                j.submit(client, "stopped", req, rows=rows, chunk_size=3)

    def test_a_hook_that_raises_stops_the_job_and_is_raised(self):
        req, rows = self.devices()
        with tsesim.Journal(self.path("raise.db")) as j, self.client() as client:
            def progress(p):
                if p.state == "accepted":
                    raise ValueError("progress bug")

            with self.assertLogs("tsesim", "ERROR") as logs:
                with self.assertRaises(ValueError):
                    j.submit(client, "raising", req, rows=rows, chunk_size=2, in_flight=1,
                             progress=progress)
            self.assertIn("progress callable raised", logs.output[0])
            self.assertIn("ValueError: progress bug", logs.output[0])
            self.assertEqual(j.count("raising").queued, 5)  # stopped after chunk 0

            def interrupted():
                raise KeyboardInterrupt()

            with self.assertRaises(KeyboardInterrupt):
                j.submit(client, "raising", req, rows=rows, stop=interrupted)
            self.assertEqual(j.count("raising").queued, 5)  # asked before any contact
            j.submit(client, "raising", req, rows=rows)
            self.assertEqual(j.count("raising").queued, 0)

    def test_hooks_may_not_change_their_journal(self):
        req, rows = self.devices()
        seen = []
        with tsesim.Journal(self.path("busy.db")) as j, self.client() as client:
            def progress(p):
                seen.append(j.count("busy").devices)  # reading is fine
                j.set("x", "y")

            with self.assertLogs("tsesim", "ERROR"):
                with self.assertRaises(RuntimeError):
                    j.submit(client, "busy", req, rows=rows, progress=progress)
            self.assertEqual(seen, [11])
            self.assertIsNone(j.get("x"))

    def test_record_then_wait_timeout(self):
        req, rows = self.devices()
        with tsesim.Journal(self.path("rec.db")) as j:
            j.record("recorded", req, rows=rows, chunk_size=3)
            counts = j.count("recorded")
            self.assertEqual((counts.devices, counts.queued, counts.invalid), (11, 7, 4))
            # Queued devices are not waited for: nothing was acted on.
            self.assertEqual(j.wait("recorded", timeout=0), (True, counts))
            with self.assertRaises(tsesim.InvalidInput):
                j.record("recorded", req, rows=rows, chunk_size=4)
            with self.assertRaises(tsesim.InvalidInput):
                j.record("recorded", req, chunk_size=-1)
            with self.assertRaises(TypeError):
                j.record("recorded", req, rows="rows")

    def test_wait_times_out_while_callbacks_are_missing(self):
        req, rows = self.devices()
        with tsesim.Journal(self.path("nolistener.db")) as j, self.client() as client:
            client.register_callback(ACCOUNT, "http://127.0.0.1:9/nowhere")
            j.submit(client, "waiting", req, rows=rows)
            done, counts = j.wait("waiting", timeout=0.3)
            self.assertFalse(done)
            self.assertEqual(counts.submitted, 7)
            self.assertEqual(counts.pending, 7)


class Layout(unittest.TestCase):
    MINE = ("tsesim_row", "tsesim_job_progress", "tsesim_job_options", "tsesim_job_counts",
            "tsesim_device_status", "tsesim_callback_result", "tsesim_listener_options")

    def test_structs_match_the_compiler(self):
        layouts = c_layouts()
        mine = dict((name, _native.MIRRORED[name]) for name in self.MINE)
        for name in self.MINE:
            self.assertIn(name, layouts, "tests/py_layout.c does not print %s" % name)
        self.assertEqual(mismatches(dict((n, layouts[n]) for n in self.MINE), mine), [])


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Leaks(TempDir, unittest.TestCase):
    """What the journal, the tracker and the device reader allocate in C is
    freed: 2,000 cycles of each keep the resident size flat."""

    CYCLES = 2000
    BOUND = 2 * 1024 * 1024

    def cycle(self, path, n):
        with open(DEVICES_CSV, "rb") as f:
            data = f.read()
        for _ in range(n):
            req = tsesim.Request(ACCOUNT)
            rows = tsesim.read_devices(io.BytesIO(data), req)
            assert rows[3].error and rows.rejected == 4
            del rows, req
            try:
                tsesim.read_devices(io.BytesIO(b"eid\n\"open"), tsesim.Request(ACCOUNT))
            except tsesim.InvalidInput:
                pass
            with tsesim.Journal(path) as j:
                assert j.count("leak").invalid == 4
                assert len(j.devices("leak")) == 11
                assert j.get("app.key") == "value"
                assert j.wait("leak", timeout=0)[0]
                try:
                    j.count("no such job")
                except tsesim.InvalidInput:
                    pass

    def test_flat(self):
        path = self.path("leak.db")
        req = tsesim.Request(ACCOUNT)
        with tsesim.Journal(path) as j:
            j.record("leak", req, rows=tsesim.read_devices(DEVICES_CSV, req))
            j.set("app.key", "value")
        self.cycle(path, 200)  # warm-up: the allocator's and SQLite's caches
        gc.collect()
        before = rss()
        self.cycle(path, self.CYCLES)
        gc.collect()
        grown = rss() - before
        self.assertLess(grown, self.BOUND, "grew %d bytes over %d cycles" % (grown, self.CYCLES))


CTRL_C = r"""
import sys, tsesim
base, devices, path = sys.argv[1:]
req = tsesim.Request("%s")
rows = tsesim.read_devices(devices, req)
with tsesim.Journal(path) as j, tsesim.Client(base_url=base, client_id="sim-key",
        client_secret="sim-secret", username="sim-user", password="sim-pass") as client:
    def progress(p):
        if p.chunk == 0 and p.state == "accepted":
            print("accepted", flush=True)
    try:
        j.submit(client, "ctrl-c", req, rows=rows, chunk_size=1, in_flight=1, progress=progress)
        print("not interrupted")
    except KeyboardInterrupt:
        c = j.count("ctrl-c")
        print("interrupted queued %%d unknown %%d" %% (c.queued, c.unknown))
""" % ACCOUNT


class CtrlC(TempDir, unittest.TestCase):
    """SIGINT during a job, in C with no Python callable running: the job
    stops within about a second, chunks on the wire are recorded, nothing is
    left unknown, and submit raises KeyboardInterrupt."""

    def test_sigint_stops_the_job(self):
        sim = Sim("--latency-ms", "300")
        self.addCleanup(sim.close)
        environ = dict(os.environ)
        environ["PYTHONPATH"] = PACKAGE_DIR + os.pathsep + environ.get("PYTHONPATH", "")
        child = subprocess.Popen(
            [sys.executable, "-c", CTRL_C, sim.base, DEVICES_CSV, self.path("j.db")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ)
        # Chunk 0 accepted: chunk 1 is on the wire, 300 ms late, in C.
        self.assertEqual(child.stdout.readline(), b"accepted\n")
        time.sleep(0.1)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
        self.assertEqual(child.returncode, 0, err)
        words = out.decode().split()
        self.assertEqual(words[:2], ["interrupted", "queued"], out + err)
        self.assertGreater(int(words[2]), 0)
        self.assertLess(int(words[2]), 7)
        self.assertEqual(words[3:], ["unknown", "0"])


class Outcomes(TempDir, unittest.TestCase):
    """What submit raises for each way a chunk can end, and what the journal
    then holds (tsesim_job_submit(3), The result)."""

    def job(self, sim, name, account=ACCOUNT, **client_args):
        req = tsesim.Request(account)
        rows = tsesim.read_devices(DEVICES_CSV, req)
        args = dict(CREDENTIALS, **client_args)
        return req, rows, tsesim.Client(base_url=sim.base, **args)

    def test_unknown_is_never_resent_unless_asked(self):
        sim = Sim("--fault", "close:endpoint=download,count=1")
        self.addCleanup(sim.close)
        req, rows, client = self.job(sim, "unknown")
        with client, tsesim.Journal(self.path("u.db")) as j:
            with self.assertRaises(tsesim.UnknownOutcomeError) as cm:
                j.submit(client, "unknown", req, rows=rows)
            self.assertEqual(cm.exception.code, "TSESIM_E_UNKNOWN_OUTCOME")
            counts = j.count("unknown")
            self.assertEqual((counts.unknown, counts.queued), (7, 0))
            self.assertEqual(j.wait("unknown", timeout=0)[0], False)  # unknown is waited for
            with self.assertRaises(tsesim.UnknownOutcomeError):
                j.submit(client, "unknown", req, rows=rows)  # sends nothing
            self.assertEqual(sim.stats()["downloads"]["devices_accepted"], 0)
            j.submit(client, "unknown", req, rows=rows, resend_unknown=True)
            self.assertEqual(sim.stats()["downloads"]["devices_accepted"], 7)
            self.assertEqual(j.count("unknown").unknown, 0)

    def test_refused(self):
        sim = Sim()
        self.addCleanup(sim.close)
        req, rows, client = self.job(sim, "refused", account="0000999999-00001")
        with client, tsesim.Journal(self.path("r.db")) as j:
            with self.assertRaises(tsesim.ApiError) as cm:
                j.submit(client, "refused", req, rows=rows)
            e = cm.exception
            self.assertEqual((e.code, e.http_status), ("TSESIM_E_API", 400))
            self.assertIn("AccountNotFound", e.api_code)
            self.assertIn("1 refused", e.message)
            counts = j.count("refused")
            self.assertEqual((counts.refused, counts.invalid, counts.devices), (7, 4, 11))
            refused = [d for d in j.devices("refused") if d.state == "refused"]
            self.assertEqual(len(refused), 7)
            self.assertIn("AccountNotFound", refused[0].error)

    def test_rate_limited_goes_back_to_queued(self):
        sim = Sim("--fault", "429:endpoint=download,retry-after=0")
        self.addCleanup(sim.close)
        req, rows, client = self.job(sim, "limited", max_attempts=1)
        changes = []
        with client, tsesim.Journal(self.path("l.db")) as j:
            with self.assertRaises(tsesim.ApiError) as cm:
                j.submit(client, "limited", req, rows=rows,
                         progress=lambda p: changes.append((p.chunk, p.state, p.error)))
            self.assertEqual(cm.exception.code, "TSESIM_E_RATE_LIMITED")
            self.assertIn("still 429 after 1 attempts", cm.exception.message)
            self.assertEqual(j.count("limited").queued, 7)
            self.assertEqual([c[:2] for c in changes if c[0] is not None],
                             [(0, "sending"), (0, "queued")])
            self.assertTrue(changes[-1][2])  # why it went back


class ExampleJob(TempDir, unittest.TestCase):
    """examples/python/job.py, the whole job: on examples/devices.csv (run
    twice: the second run resumes and sends nothing), and on 25,000
    generated devices."""

    def run_example(self, sim, csv, journal):
        environ = dict(os.environ)
        environ.update(TSESIM_BASE_URL=sim.base, TSESIM_CLIENT_ID="sim-key",
                       TSESIM_CLIENT_SECRET="sim-secret", TSESIM_USERNAME="sim-user",
                       TSESIM_PASSWORD="sim-pass",
                       PYTHONPATH=PACKAGE_DIR + os.pathsep + environ.get("PYTHONPATH", ""))
        for name in ("TSESIM_LISTENER_USERNAME", "TSESIM_LISTENER_PASSWORD"):
            environ.pop(name, None)
        done = subprocess.run(
            [sys.executable, os.path.join(SRCDIR, "examples", "python", "job.py"),
             "--journal", journal, "--wait", "300", csv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ, timeout=600)
        return done.returncode, done.stdout.decode(), done.stderr.decode()

    def test_devices_csv_twice(self):
        sim = Sim("--redelivery-interval", "1")
        self.addCleanup(sim.close)
        journal = self.path("job.db")
        status, out, err = self.run_example(sim, DEVICES_CSV, journal)
        self.assertEqual(status, 1, out + err)  # invalid rows, a Failed device
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^listener http://127\.0\.0\.1:[0-9]+/callbacks registered$")
        self.assertEqual(lines[1], "job job submitted: 7 devices")
        self.assertIn("   11  89049032176031372159010928159017  89014101396245957118  "
                      "352099078666613  failed     Failed           1  "
                      "REQUEST_FAILED.Device.NotReachable", lines)
        self.assertEqual(lines[-2:], ["callbacks 8 duplicates 0 unmatched 0",
                                      "devices 11 success 6 failed 1 unknown 0 refused 0 "
                                      "pending 0 invalid 4"])
        self.assertIn("%s:5: imei: check digit 4 does not match (expected 3)" % DEVICES_CSV,
                      err.splitlines())
        with tsesim.Journal(journal) as j:  # the listener's credentials were kept
            user = j.get("app.listener.username")
        self.assertTrue(user)
        accepted = sim.stats()["downloads"]["devices_accepted"]
        status, again, err = self.run_example(sim, DEVICES_CSV, journal)
        self.assertEqual(status, 1, again + err)
        self.assertEqual(again.splitlines()[-1], lines[-1])
        self.assertEqual(sim.stats()["downloads"]["devices_accepted"], accepted)
        with tsesim.Journal(journal) as j:
            self.assertEqual(j.get("app.listener.username"), user)

    def test_25000_devices(self):
        csv = self.path("devices.csv")
        with open(csv, "wb") as f:
            subprocess.run([env("TSESIM_SIM"), "--make-devices", "25000", "--bad-rows", "5",
                            "--failing", "5", "--warning", "5"], stdout=f,
                           stderr=subprocess.DEVNULL, check=True)
        sim = Sim("--redelivery-interval", "1")
        self.addCleanup(sim.close)
        status, out, err = self.run_example(sim, csv, self.path("job.db"))
        stats = sim.stats()
        lines = out.splitlines()
        self.assertEqual(status, 1, out + err)  # 5 invalid rows, 5 failed
        self.assertEqual(lines[-1], "devices 25000 success 24990 failed 5 unknown 0 "
                                    "refused 0 pending 0 invalid 5", out + err)
        self.assertIn("job job submitted: 24995 devices", lines)
        self.assertRegex(out, r"(?m)^callbacks 25000 duplicates 0 unmatched 0$")
        self.assertFalse([l for l in lines if l.startswith("    2  ")])  # no table past 100
        self.assertEqual(sum(1 for l in err.splitlines() if l.startswith(csv + ":")), 5)
        self.assertEqual(stats["downloads"]["devices_accepted"], 24995)
        self.assertEqual(stats["downloads"]["eids_repeated"], 0)

if __name__ == "__main__":
    unittest.main()
