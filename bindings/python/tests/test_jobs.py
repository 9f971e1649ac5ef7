"""The journal, jobs, the tracker and device files, against tools/tsesim-sim.

A small job end to end (examples/devices.csv, as tests/roundtrip.sh expects
it), a stop callable, hooks that raise, settings, read_devices's sources, the
layout of the structs this part mirrors, and examples/python/job.py on
25,000 generated devices.
"""

import io
import os
import shutil
import subprocess
import sys
import tempfile
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


class ExampleJob(TempDir, unittest.TestCase):
    """examples/python/job.py, the whole job, on 25,000 generated devices."""

    def test_25000_devices(self):
        csv = self.path("devices.csv")
        with open(csv, "wb") as f:
            subprocess.run([env("TSESIM_SIM"), "--make-devices", "25000", "--bad-rows", "5",
                            "--failing", "5", "--warning", "5"], stdout=f,
                           stderr=subprocess.DEVNULL, check=True)
        sim = Sim("--redelivery-interval", "1")
        try:
            environ = dict(os.environ)
            environ.update(TSESIM_BASE_URL=sim.base, TSESIM_CLIENT_ID="sim-key",
                           TSESIM_CLIENT_SECRET="sim-secret", TSESIM_USERNAME="sim-user",
                           TSESIM_PASSWORD="sim-pass",
                           PYTHONPATH=PACKAGE_DIR + os.pathsep + environ.get("PYTHONPATH", ""))
            done = subprocess.run(
                [sys.executable, os.path.join(SRCDIR, "examples", "python", "job.py"),
                 "--journal", self.path("job.db"), "--wait", "300", csv],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ, timeout=600)
            out = done.stdout.decode()
            err = done.stderr.decode()
            stats = sim.stats()
        finally:
            sim.close()
        lines = out.splitlines()
        self.assertEqual(done.returncode, 1, out + err)  # 5 invalid rows, 5 failed
        self.assertEqual(lines[-1], "devices 25000 success 24990 failed 5 unknown 0 "
                                    "refused 0 pending 0 invalid 5", out + err)
        self.assertIn("job job submitted: 24995 devices", lines)
        self.assertRegex(out, r"(?m)^callbacks 25000 duplicates 0 unmatched 0$")
        self.assertEqual(sum(1 for l in err.splitlines() if l.startswith(csv + ":")), 5)
        self.assertEqual(stats["downloads"]["devices_accepted"], 24995)
        self.assertEqual(stats["downloads"]["eids_repeated"], 0)


if __name__ == "__main__":
    unittest.main()
