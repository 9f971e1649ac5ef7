"""Every exception class of the package, each raised for real (NoMemory,
which cannot be forced from Python, by its class relations), with .code and
.message, and ApiError's further attributes."""

import unittest

import tsesim
from tsesim import _native

import shutil
import tempfile

from simulator import ACCOUNT, Simulator, closed_port, device, make_cert


def request(n=1, first=0):
    req = tsesim.Request(ACCOUNT)
    req.add_devices([device(first + i) for i in range(n)])
    return req


class TestClasses(unittest.TestCase):
    def test_hierarchy(self):
        for cls in (tsesim.InvalidInput, tsesim.LimitError, tsesim.ParseError,
                    tsesim.TransportError, tsesim.AuthError, tsesim.ApiError,
                    tsesim.UnknownOutcomeError, tsesim.NoMemory, tsesim.JournalError,
                    tsesim.Cancelled):
            self.assertTrue(issubclass(cls, tsesim.Error), cls)
        self.assertTrue(issubclass(tsesim.Error, Exception))
        self.assertTrue(issubclass(tsesim.NoMemory, MemoryError))
        e = tsesim.NoMemory("TSESIM_E_NOMEM", "out of memory")
        self.assertIsInstance(e, MemoryError)
        self.assertIsInstance(e, tsesim.Error)
        self.assertEqual((e.code, e.message), ("TSESIM_E_NOMEM", "out of memory"))
        with self.assertRaises(MemoryError):
            raise e

    def test_every_code_maps_to_its_class(self):
        want = {
            "TSESIM_E_INVAL": tsesim.InvalidInput,
            "TSESIM_E_NOMEM": tsesim.NoMemory,
            "TSESIM_E_LIMIT": tsesim.LimitError,
            "TSESIM_E_PARSE": tsesim.ParseError,
            "TSESIM_E_TRANSPORT": tsesim.TransportError,
            "TSESIM_E_TIMEOUT": tsesim.TransportError,
            "TSESIM_E_TLS": tsesim.TransportError,
            "TSESIM_E_AUTH": tsesim.AuthError,
            "TSESIM_E_HTTP": tsesim.ApiError,
            "TSESIM_E_API": tsesim.ApiError,
            "TSESIM_E_RATE_LIMITED": tsesim.ApiError,
            "TSESIM_E_UNKNOWN_OUTCOME": tsesim.UnknownOutcomeError,
            "TSESIM_E_JOURNAL": tsesim.JournalError,
            "TSESIM_E_CANCELLED": tsesim.Cancelled,
        }
        seen = set()
        for code in range(1, 64):
            name = _native.code_name(code)
            if name == "TSESIM_E_???":
                continue
            seen.add(name)
            e = _native.error_for(code)
            self.assertIs(type(e), want[name], name)
            self.assertEqual(e.code, name)
            self.assertTrue(e.message)  # the code's description when no text is given
        self.assertEqual(seen, set(want))  # a code added to the C library needs a class here
        e = _native.error_for(2, "x: out of memory")
        self.assertIsInstance(e, MemoryError)
        self.assertEqual(str(e), "TSESIM_E_NOMEM: x: out of memory")


class TestRaised(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Simulator()

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()

    def test_invalid_input(self):
        with self.assertRaises(tsesim.InvalidInput) as cm:
            tsesim.validate_id("eid", "8904903200000100000000000000004X")
        self.assertEqual(cm.exception.code, "TSESIM_E_INVAL")
        self.assertEqual(cm.exception.message,
                         'eid "8904903200000100000000000000004X": not a digit at position 32')

    def test_limit(self):
        with self.assertRaises(tsesim.LimitError) as cm:
            request(10001).to_json()
        self.assertEqual(cm.exception.code, "TSESIM_E_LIMIT")

    def test_parse(self):
        with self.assertRaises(tsesim.ParseError) as cm:
            tsesim.parse_callback(b'{"status":"SUCCESS"}')
        self.assertEqual(cm.exception.code, "TSESIM_E_PARSE")
        self.assertEqual(cm.exception.message, "requestId: missing")

    def test_transport(self):
        base = "http://127.0.0.1:%d/api" % closed_port()
        with tsesim.Client(**self.sim.client_args(base_url=base, max_attempts=1)) as client:
            with self.assertRaises(tsesim.TransportError) as cm:
                client.download(request())
        self.assertEqual(cm.exception.code, "TSESIM_E_TRANSPORT")
        self.assertTrue(cm.exception.message)

    def test_timeout(self):
        # timeout is in seconds: 0.3 s against answers held 2 s
        import time

        with Simulator("--latency-ms", "2000") as sim:
            with tsesim.Client(**sim.client_args(timeout=0.3, max_attempts=1)) as client:
                t0 = time.monotonic()
                with self.assertRaises(tsesim.TransportError) as cm:
                    client.login()
                took = time.monotonic() - t0
        self.assertEqual(cm.exception.code, "TSESIM_E_TIMEOUT")
        self.assertLess(took, 1.9)  # it did not wait for the answer

    def test_tls(self):
        tmp = tempfile.mkdtemp(prefix="tsesim-py-tls-")
        try:
            cert, key = make_cert(tmp)
            with Simulator("--tls-cert", cert, "--tls-key", key) as sim:
                self.assertTrue(sim.base.startswith("https://"))
                # a certificate the system does not trust
                with tsesim.Client(**sim.client_args(max_attempts=1)) as client:
                    with self.assertRaises(tsesim.TransportError) as cm:
                        client.login()
                self.assertEqual(cm.exception.code, "TSESIM_E_TLS")
                # trusted through ca_file
                with tsesim.Client(**sim.client_args(ca_file=cert)) as client:
                    client.login()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_auth(self):
        before = self.sim.stats()["logins"]["refused"]
        with tsesim.Client(**self.sim.client_args(password="wrong-pass")) as client:
            with self.assertRaises(tsesim.AuthError) as cm:
                client.download(request())
            self.assertEqual(cm.exception.code, "TSESIM_E_AUTH")
            # the client remembers: no second attempt with those credentials
            with self.assertRaises(tsesim.AuthError):
                client.login()
        self.assertEqual(self.sim.stats()["logins"]["refused"] - before, 1)
        self.assertNotIn("wrong-pass", cm.exception.message)

    def test_api_unknown_account(self):
        with tsesim.Client(**self.sim.client_args()) as client:
            with self.assertRaises(tsesim.ApiError) as cm:
                client.register_callback("9999999999-99999", "http://127.0.0.1:9/callbacks")
        e = cm.exception
        self.assertEqual(e.code, "TSESIM_E_API")
        self.assertEqual(e.http_status, 400)
        self.assertEqual(e.api_code, "REQUEST_FAILED.AccountNotFound")
        self.assertTrue(e.api_message)
        self.assertIn("REQUEST_FAILED.AccountNotFound", e.body)
        self.assertIsNone(e.retry_after)

    def test_api_server_error(self):
        with Simulator("--fault", "500:endpoint=download") as sim:
            with tsesim.Client(**sim.client_args()) as client:
                with self.assertRaises(tsesim.ApiError) as cm:
                    client.download(request())
        e = cm.exception
        self.assertEqual(e.code, "TSESIM_E_API")
        self.assertEqual(e.http_status, 500)
        self.assertEqual(e.api_code, "REQUEST_FAILED.UnexpectedError")

    def test_api_rate_limited(self):
        with Simulator("--fault", "429:endpoint=download") as sim:
            with tsesim.Client(**sim.client_args(max_attempts=1)) as client:
                with self.assertRaises(tsesim.ApiError) as cm:
                    client.download(request())
        e = cm.exception
        self.assertEqual(e.code, "TSESIM_E_RATE_LIMITED")
        self.assertEqual(e.http_status, 429)
        self.assertEqual(e.api_code, "REQUEST_FAILED.RateLimited")
        self.assertIsInstance(e.retry_after, int)

    def test_unknown_outcome(self):
        with Simulator("--fault", "close:endpoint=download") as sim:
            with tsesim.Client(**sim.client_args()) as client:
                with self.assertRaises(tsesim.UnknownOutcomeError) as cm:
                    client.download(request())
            # sent once, never again
            self.assertEqual(sim.stats()["downloads"]["received"], 1)
        self.assertEqual(cm.exception.code, "TSESIM_E_UNKNOWN_OUTCOME")


if __name__ == "__main__":
    unittest.main()
