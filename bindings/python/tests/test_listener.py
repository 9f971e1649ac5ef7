"""The callback listener with Python hooks: a round trip through
tools/tsesim-sim, hooks that raise, what a hook may not do, its options and
answers, and that its hooks are dropped once it stops."""

import gc
import logging
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest
import urllib.request
import weakref

from jobs_support import ACCOUNT, CREDENTIALS, DEVICES_CSV, SAMPLE_CALLBACK, Sim, post

import tsesim

with open(SAMPLE_CALLBACK, "rb") as _f:
    SAMPLE = _f.read()


class RoundTrip(unittest.TestCase):
    """ThingSpace (the simulator) -> the listener -> the journal -> on_callback."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tsesim-pylistener-")
        self.sim = Sim("--redelivery-interval", "1")

    def tearDown(self):
        self.sim.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_on_callback_sees_every_callback_with_its_result(self):
        seen = []
        lock = threading.Lock()
        threads = set()

        def on_callback(cb, result):
            with lock:
                seen.append((cb, result))
                threads.add(threading.get_ident())

        req = tsesim.Request(ACCOUNT)
        rows = tsesim.read_devices(DEVICES_CSV, req)
        with tsesim.Journal(os.path.join(self.tmp, "j.db")) as j:
            with tsesim.Listener(j.path, username="u", password="p",
                                 on_callback=on_callback) as listener, \
                    tsesim.Client(base_url=self.sim.base, **CREDENTIALS) as client:
                client.register_callback(ACCOUNT, listener.url, "u", "p")
                j.submit(client, "cb", req, rows=rows)
                done, counts = j.wait("cb", timeout=60)
                self.assertTrue(done, counts)
            # stopped: every callback answered 200 has been through on_callback
            devices = {d.line: d for d in j.devices("cb")}
        self.assertEqual(len(seen), 8)
        self.assertEqual(counts.callbacks, 8)
        self.assertEqual(len(threads), 1)  # the writer thread only
        self.assertNotIn(threading.get_ident(), threads)
        for cb, r in seen:
            self.assertIsInstance(cb, tsesim.Callback)
            self.assertIsInstance(r, tsesim.CallbackResult)
            self.assertEqual((r.repeat, r.job), (False, "cb"))
            self.assertEqual(cb.request_id, devices[r.line].request_id)
            self.assertEqual((cb.username, cb.password), ("u", "p"))
            self.assertIn(("eid", devices[r.line].eid), cb.device_ids)
        by_line = {}
        for cb, r in seen:
            by_line.setdefault(r.line, []).append((r.state, cb.status_code))
        self.assertEqual(sorted(by_line), [2, 3, 4, 9, 10, 11, 12])
        self.assertEqual(by_line[11], [("failed", "FAILED")])
        self.assertEqual(by_line[12], [("warning", "WARNING"), ("success", "SUCCESS")])
        self.assertEqual(by_line[2], [("success", "SUCCESS")])
        failed = [cb for cb, r in seen if r.line == 11][0]
        self.assertEqual(failed.fault_code, "REQUEST_FAILED.Device.NotReachable")


class Hooks(unittest.TestCase):
    """A listener without a journal answers 200 once on_callback returns."""

    def test_on_callback_that_raises_is_logged_and_answered_200(self):
        calls = []

        def on_callback(cb, result):
            calls.append((cb.request_id, result))
            raise ValueError("bug in the hook %d" % len(calls))

        ref = weakref.ref(on_callback)
        listener = tsesim.Listener(on_callback=on_callback)
        del on_callback
        with self.assertLogs("tsesim", "ERROR") as logs:
            for _ in range(20):
                status, body = post(listener.url, SAMPLE)
                self.assertEqual(status, 200, body)
        self.assertEqual(len(calls), 20)
        self.assertEqual(calls[0], ("d1f08526-5443-4054-9a29-4456490ea9f8",
                                    tsesim.CallbackResult(repeat=False, job=None, line=None,
                                                          state=None)))
        self.assertEqual(len(logs.records), 20)
        self.assertIn("on_callback raised", logs.output[0])
        self.assertIn("ValueError: bug in the hook 1", logs.output[0])
        # Kept while it runs, dropped once it has stopped: nothing leaks.
        gc.collect()
        self.assertIsNotNone(ref())
        listener.stop()
        self.assertEqual(listener.port, 0)
        listener.stop()  # twice is fine
        del listener, logs
        gc.collect()
        self.assertIsNone(ref())

    def test_log_fn_that_raises_is_logged(self):
        lines = []

        def log_fn(level, line):
            lines.append((level, line))
            raise RuntimeError("log bug")

        with self.assertLogs("tsesim", "ERROR") as logs:
            with tsesim.Listener(log_fn=log_fn, log_level=2) as listener:
                self.assertEqual(post(listener.url, SAMPLE)[0], 200)
                self.assertEqual(post(listener.url + "x", SAMPLE)[0], 404)
        self.assertTrue(lines)
        self.assertTrue(all(isinstance(l, str) and level in (0, 1, 2) for level, l in lines))
        self.assertIn("log_fn raised", logs.output[0])

    def test_a_hook_may_not_stop_its_own_listener(self):
        errors = []
        holder = []

        def on_callback(cb, result):
            try:
                holder[0].stop()
            except RuntimeError as e:
                errors.append(e)

        with tsesim.Listener(on_callback=on_callback) as listener:
            holder.append(listener)
            self.assertEqual(post(listener.url, SAMPLE)[0], 200)
            self.assertEqual(len(errors), 1)
            self.assertTrue(listener.running)
            self.assertEqual(post(listener.url, SAMPLE)[0], 200)
        self.assertFalse(listener.running)

    def test_a_listener_dropped_unstopped_is_stopped(self):
        def hook(cb, result):
            pass

        ref = weakref.ref(hook)
        listener = tsesim.Listener(on_callback=hook)
        port = listener.port
        del listener, hook
        gc.collect()
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        self.assertIsNone(ref())


class Options(unittest.TestCase):
    def test_answers_and_credentials(self):
        with tsesim.Listener(path="/cb", username="u", password="p", max_body_bytes=4096) \
                as listener:
            self.assertTrue(listener.url.endswith(":%d/cb" % listener.port))
            self.assertEqual(post(listener.url, SAMPLE, "u", "p")[0], 200)
            self.assertEqual(post(listener.url, SAMPLE, "u", "wrong")[0], 401)
            self.assertEqual(post(listener.url, SAMPLE)[0], 401)
            self.assertEqual(post(listener.url, b"{")[0], 400)  # judged before the credentials
            self.assertEqual(post(listener.url, b" " * 5000)[0], 413)
            self.assertEqual(post("http://127.0.0.1:%d/other" % listener.port, SAMPLE)[0], 404)

    def test_a_journal_stores_callbacks(self):
        tmp = tempfile.mkdtemp(prefix="tsesim-pylistener-")
        try:
            path = os.path.join(tmp, "j.db")
            results = []
            with tsesim.Journal(path) as j:
                with tsesim.Listener(j, on_callback=lambda cb, r: results.append(r)) as l:
                    self.assertEqual(post(l.url, SAMPLE)[0], 200)
                    self.assertEqual(post(l.url, SAMPLE)[0], 200)
            # Unmatched (no job holds its device); the second repeats the first.
            self.assertEqual([r.repeat for r in results], [False, True])
            self.assertEqual({(r.job, r.line, r.state) for r in results}, {(None, None, None)})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_bad_options_name_the_option(self):
        with self.assertRaises(tsesim.InvalidInput) as cm:
            tsesim.Listener(path="no-slash")
        self.assertIn("path", cm.exception.message)
        with self.assertRaises(tsesim.InvalidInput) as cm:
            tsesim.Listener(username="u")
        self.assertIn("password", cm.exception.message)
        with self.assertRaises(tsesim.InvalidInput):
            tsesim.Listener(port=70000)
        with self.assertRaises(tsesim.InvalidInput):
            tsesim.Listener(timeout_s=-1)
        with self.assertRaises(TypeError):
            tsesim.Listener(on_callback="not callable")
        with self.assertRaises(tsesim.JournalError) as cm:
            tsesim.Listener("/nonexistent/dir/j.db")
        self.assertIn("/nonexistent/dir/j.db", cm.exception.message)
        with tsesim.Listener() as first:
            with self.assertRaises(tsesim.TransportError) as cm:
                tsesim.Listener(port=first.port)
            self.assertIn(str(first.port), cm.exception.message)

    def test_https(self):
        tmp = tempfile.mkdtemp(prefix="tsesim-pylistener-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        seen = []
        with tsesim.Listener(tls_cert_file=pathlib.Path(cert), tls_key_file=key,
                             on_callback=lambda cb, r: seen.append(cb.request_id)) as listener:
            self.assertTrue(listener.url.startswith("https://127.0.0.1:"), listener.url)
            context = ssl.create_default_context(cafile=cert)
            req = urllib.request.Request(listener.url, data=SAMPLE, method="POST")
            with urllib.request.urlopen(req, timeout=10, context=context) as r:
                self.assertEqual(r.status, 200)
            try:  # plain HTTP is not served
                status = post(listener.url.replace("https:", "http:"), SAMPLE)[0]
            except OSError:  # closed without an answer
                status = None
            self.assertNotEqual(status, 200)
        self.assertEqual(seen, ["d1f08526-5443-4054-9a29-4456490ea9f8"])
        with self.assertRaises(tsesim.TransportError) as cm:
            tsesim.Listener(tls_cert_file=os.path.join(tmp, "missing.pem"), tls_key_file=key)
        self.assertIn("missing.pem", cm.exception.message)

    def test_every_field_is_a_keyword(self):
        with tsesim.Listener(journal=None, address="127.0.0.1", port=0, path="/callbacks",
                             username=None, password=None, tls_cert_file=None,
                             tls_key_file=None, max_body_bytes=1 << 20, max_connections=16,
                             per_ip_connections=8, timeout_s=5, memory_budget=1 << 24,
                             on_callback=None, log_fn=None, log_level=0) as listener:
            self.assertEqual(post(listener.url, SAMPLE)[0], 200)


class Leaks(unittest.TestCase):
    """300 listeners started, called back through a hook that raises, and
    stopped keep the resident size flat, and leave no thread behind."""

    def test_flat(self):
        log = logging.getLogger("tsesim")
        handler = logging.NullHandler()
        log.addHandler(handler)
        log.propagate = False
        try:
            def hook(cb, result):
                raise ValueError("each time")

            def cycle(n):
                for _ in range(n):
                    with tsesim.Listener(on_callback=hook) as listener:
                        assert post(listener.url, SAMPLE)[0] == 200

            threads = len(os.listdir("/proc/self/task"))  # the process's threads, C ones too
            cycle(30)
            gc.collect()
            with open("/proc/self/statm") as f:
                before = int(f.read().split()[1])
            cycle(300)
            gc.collect()
            with open("/proc/self/statm") as f:
                grown = (int(f.read().split()[1]) - before) * os.sysconf("SC_PAGE_SIZE")
            self.assertLess(grown, 2 * 1024 * 1024, "grew %d bytes over 300 listeners" % grown)
            self.assertEqual(len(os.listdir("/proc/self/task")), threads)
        finally:
            log.removeHandler(handler)
            log.propagate = True


if __name__ == "__main__":
    unittest.main()
