"""The package's core against the in-tree library: versions, validate_id,
Request (one device, many, JSON), Client (download, callback registration,
login, logout, close) against tools/tsesim-sim over loopback."""

import json
import logging
import os
import re
import subprocess
import sys
import unittest

import tsesim
from tsesim import _native

from simulator import ACCOUNT, PLAN, Simulator, device, luhn, eid as make_eid

E1, I1, M1 = device(1)
E2, I2, M2 = device(2)
E3, I3, M3 = device(3)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def body(req):
    return json.loads(req.to_json())


def dev(*pairs):
    return {"deviceIds": [{"kind": k, "id": i} for k, i in pairs]}


class TestVersion(unittest.TestCase):
    def test_versions_match_the_c_library(self):
        self.assertEqual(tsesim.__version__, "0.2.0")
        self.assertEqual(tsesim.library_version(), tsesim.__version__)
        self.assertEqual(_native.LIBRARY_VERSION_NUM, 0x000200)

    def test_loaded_from_tsesim_library(self):
        self.assertEqual(_native.lib._name, os.environ["TSESIM_LIBRARY"])

    def _import_with(self, env):
        e = dict(os.environ)
        e.update(env)
        return subprocess.run([sys.executable, "-c", "import tsesim"], env=e,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def test_tsesim_library_that_does_not_load_names_itself(self):
        done = self._import_with({"TSESIM_LIBRARY": "/nonexistent/libtsesim.so.0"})
        self.assertNotEqual(done.returncode, 0)
        err = done.stderr.decode()
        self.assertIn("ImportError", err)
        self.assertIn("TSESIM_LIBRARY=/nonexistent/libtsesim.so.0", err)

    def test_version_mismatch_names_both_versions(self):
        # The check itself, with the library's number faked: major 1.
        real = _native.LIBRARY_VERSION_NUM
        try:
            _native.LIBRARY_VERSION_NUM = 0x010000
            with self.assertRaises(ImportError) as cm:
                _native._check_version()
            self.assertIn("1.0.0", str(cm.exception))
            self.assertIn("0.2.0", str(cm.exception))
            _native.LIBRARY_VERSION_NUM = 0x000100  # older than the package
            with self.assertRaises(ImportError):
                _native._check_version()
            _native.LIBRARY_VERSION_NUM = 0x000305  # a later 0.x
            _native._check_version()
        finally:
            _native.LIBRARY_VERSION_NUM = real

    def test_declare_refuses_a_second_signature(self):
        import ctypes

        _native.declare("tsesim_version", ctypes.c_uint, [])  # the same: fine
        with self.assertRaises(RuntimeError):
            _native.declare("tsesim_version", ctypes.c_int, [])


class TestValidateId(unittest.TestCase):
    def test_valid(self):
        for kind, value in (("eid", E1), ("iccid", I1), ("imei", M1), ("mdn", "5555550100"),
                            ("iccid", luhn("890141032111185107"))):
            self.assertIsNone(tsesim.validate_id(kind, value), (kind, value))

    def test_invalid_names_why(self):
        cases = [
            ("imei", "35209900176148X", 'imei "35209900176148X": not a digit at position 15'),
            ("imei", M1[:-1] + str((int(M1[-1]) + 1) % 10),
             "imei: check digit %d does not match (expected %s)" % ((int(M1[-1]) + 1) % 10, M1[-1])),
            ("eid", E1[:31], 'eid "%s": 31 digits, expected 32' % E1[:31]),
            ("iccid", "1" * 18, 'iccid "%s": 18 digits, expected 19 or 20' % ("1" * 18)),
            ("mdn", "", "mdn: empty"),
        ]
        for kind, value, msg in cases:
            with self.assertRaises(tsesim.InvalidInput) as cm:
                tsesim.validate_id(kind, value)
            self.assertEqual(cm.exception.code, "TSESIM_E_INVAL")
            self.assertEqual(cm.exception.message, msg)

    def test_unknown_kind(self):
        with self.assertRaises(tsesim.InvalidInput) as cm:
            tsesim.validate_id("msisdn", "5555550100")
        self.assertIn("msisdn", cm.exception.message)

    def test_nul_inside(self):
        with self.assertRaises(tsesim.InvalidInput):
            tsesim.validate_id("imei", M1 + "\0")


class TestRequest(unittest.TestCase):
    def test_body(self):
        req = tsesim.Request(ACCOUNT)
        self.assertEqual(len(req), 0)
        req.add_device(eid=E1, iccid=I1, imei=M1)
        req.add_device(E2, imei=M2)
        req.add_device(eid=E3, iccid=I3)
        self.assertEqual(len(req), 3)
        raw = req.to_json()
        self.assertIsInstance(raw, bytes)
        self.assertNotIn(b" ", raw)  # compact
        self.assertEqual(json.loads(raw), {
            "accountName": ACCOUNT,
            "devices": [dev(("eid", E1), ("iccid", I1), ("imei", M1)),
                        dev(("eid", E2), ("imei", M2)), dev(("eid", E3), ("iccid", I3))],
        })
        self.assertEqual(req.to_json(), raw)  # does not change the request

    def test_service_plan(self):
        req = tsesim.Request(ACCOUNT, service_plan=PLAN)
        self.assertEqual(req.service_plan, PLAN)
        req.add_device(E1, imei=M1)
        self.assertEqual(body(req)["servicePlan"], PLAN)
        req.service_plan = None
        self.assertNotIn("servicePlan", body(req))
        with self.assertRaises(tsesim.InvalidInput) as cm:
            req.service_plan = "bad\tplan"
        self.assertIn("servicePlan", cm.exception.message)
        self.assertIsNone(req.service_plan)

    def test_bad_account_name(self):
        for name in ("", "a\tb", "x" * 65):
            with self.assertRaises(tsesim.InvalidInput) as cm:
                tsesim.Request(name)
            self.assertIn("accountName", cm.exception.message)

    def test_invalid_device_adds_nothing(self):
        req = tsesim.Request(ACCOUNT)
        req.add_device(E1, imei=M1)
        bad = M2[:-1] + str((int(M2[-1]) + 1) % 10)
        with self.assertRaises(tsesim.InvalidInput) as cm:
            req.add_device(E2, iccid=I2, imei=bad)
        self.assertEqual(cm.exception.message,
                         "device 1: imei: check digit %s does not match (expected %s)"
                         % (bad[-1], M2[-1]))
        with self.assertRaises(tsesim.InvalidInput) as cm:
            req.add_device(E2)
        self.assertEqual(cm.exception.message,
                         "device 1: iccid or imei missing (every device needs one besides its eid)")
        with self.assertRaises(tsesim.InvalidInput) as cm:
            req.add_device(None, iccid=I2)
        self.assertIn("eid missing", cm.exception.message)
        self.assertEqual(len(req), 1)

    def test_verify_checksums_off(self):
        bad = M1[:-1] + str((int(M1[-1]) + 1) % 10)
        req = tsesim.Request(ACCOUNT, verify_checksums=False)
        self.assertFalse(req.verify_checksums)
        req.add_device(E1, imei=bad)
        self.assertEqual(body(req)["devices"], [dev(("eid", E1), ("imei", bad))])
        with self.assertRaises(tsesim.InvalidInput):  # lengths and digits still
            req.add_device(E2, imei=M2[:-1])
        req.verify_checksums = True
        with self.assertRaises(tsesim.InvalidInput):
            req.add_device(E2, imei=bad)

    def test_empty_request_to_json(self):
        with self.assertRaises(tsesim.InvalidInput) as cm:
            tsesim.Request(ACCOUNT).to_json()
        self.assertEqual(cm.exception.message, "the request holds no device")

    def test_add_devices_same_as_add_device(self):
        rows = [device(i) for i in range(50)]
        rows[7] = (rows[7][0], None, rows[7][2])
        rows[8] = (rows[8][0], rows[8][1], None)
        one = tsesim.Request(ACCOUNT)
        for e, i, m in rows:
            one.add_device(e, iccid=i, imei=m)
        many = tsesim.Request(ACCOUNT)
        many.add_devices(rows)
        self.assertEqual(len(many), 50)
        self.assertEqual(many.to_json(), one.to_json())
        many.add_devices(iter([device(60), device(61)]))  # any iterable; appends
        self.assertEqual(len(many), 52)
        self.assertEqual(body(many)["devices"][51], dev(*zip(("eid", "iccid", "imei"), device(61))))
        many.add_devices([])
        self.assertEqual(len(many), 52)

    def test_add_devices_all_or_nothing(self):
        req = tsesim.Request(ACCOUNT)
        req.add_device(*device(0))
        rows = [device(i) for i in range(1, 6)]
        e, i, m = rows[2]
        bad = m[:-1] + str((int(m[-1]) + 1) % 10)
        rows[2] = (e, i, bad)
        with self.assertRaises(tsesim.InvalidInput) as cm:
            req.add_devices(rows)
        self.assertEqual(cm.exception.message,
                         "device 3 (record 3): imei: check digit %s does not match (expected %s)"
                         % (bad[-1], m[-1]))
        self.assertEqual(len(req), 1)
        self.assertEqual(len(body(req)["devices"]), 1)

    def test_add_devices_bad_rows(self):
        req = tsesim.Request(ACCOUNT)
        with self.assertRaises(tsesim.InvalidInput) as cm:
            req.add_devices([device(1), (E2 + "," + I2, M2, None)])
        self.assertIn("device 1 (record 2)", cm.exception.message)
        with self.assertRaises(tsesim.InvalidInput) as cm:
            req.add_devices([device(1), (E2, I2 + "\n" + E3, M3)])
        self.assertIn("device 1 (record 2)", cm.exception.message)
        with self.assertRaises(tsesim.InvalidInput) as cm:
            req.add_devices([device(1), (E2, I2)])
        self.assertIn("2 cells, expected 3", cm.exception.message)
        with self.assertRaises(TypeError):
            req.add_devices([device(1), (E2, 8901410, M2)])
        with self.assertRaises(TypeError):
            req.add_devices([device(1), 5])
        self.assertEqual(len(req), 0)

    def test_limit(self):
        req = tsesim.Request(ACCOUNT)
        req.add_devices([device(i) for i in range(10000)])
        self.assertEqual(len(json.loads(req.to_json())["devices"]), 10000)
        req.add_device(*device(10000))
        with self.assertRaises(tsesim.LimitError) as cm:
            req.to_json()
        self.assertEqual(cm.exception.code, "TSESIM_E_LIMIT")
        self.assertIn("10001", cm.exception.message)


class TestClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Simulator()

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()

    def test_download(self):
        req = tsesim.Request(ACCOUNT, service_plan=PLAN)
        req.add_devices([device(100 + i) for i in range(25)])
        before = self.sim.stats()["downloads"]
        with tsesim.Client(**self.sim.client_args(timeout=30)) as client:
            request_id = client.download(req)
        self.assertIsInstance(request_id, str)
        self.assertRegex(request_id, UUID)
        after = self.sim.stats()["downloads"]
        self.assertEqual(after["accepted"] - before["accepted"], 1)
        self.assertEqual(after["devices_accepted"] - before["devices_accepted"], 25)
        self.assertTrue(client.closed)
        with self.assertRaises(ValueError):
            client.download(req)
        client.close()  # idempotent

    def test_register_and_unregister_callback(self):
        with tsesim.Client(**self.sim.client_args()) as client:
            client.register_callback(ACCOUNT, "http://127.0.0.1:9/callbacks",
                                     username="u", password="p")
            client.unregister_callback(ACCOUNT)
            # now there is none to remove
            with self.assertRaises(tsesim.ApiError) as cm:
                client.unregister_callback(ACCOUNT)
            self.assertEqual(cm.exception.http_status, 404)
            self.assertEqual(cm.exception.api_code, "REQUEST_FAILED.Callback.NotFound")

    def test_login_logout(self):
        before = self.sim.stats()
        with tsesim.Client(**self.sim.client_args()) as client:
            client.login()
            client.logout()
        after = self.sim.stats()
        self.assertEqual(after["logins"]["ok"] - before["logins"]["ok"], 1)
        self.assertEqual(after["requests"]["logout"] - before["requests"]["logout"], 1)

    def test_log_callable(self):
        lines = []
        with tsesim.Client(**self.sim.client_args(log=lambda level, line: lines.append((level, line)),
                                                  log_level=3)) as client:
            client.login()
        self.assertTrue(lines)
        self.assertTrue(all(isinstance(l, int) and isinstance(s, str) for l, s in lines))
        for _, s in lines:
            self.assertNotIn("sim-secret", s)
            self.assertNotIn("sim-pass", s)

    def test_log_callable_that_raises_is_logged(self):
        def boom(level, line):
            raise RuntimeError("boom in log")

        with self.assertLogs("tsesim", level="ERROR") as logs:
            with tsesim.Client(**self.sim.client_args(log=boom, log_level=3)) as client:
                client.login()  # goes on regardless
        self.assertTrue(logs.records)
        exc = logs.records[0].exc_info[1]
        self.assertIsInstance(exc, RuntimeError)
        self.assertEqual(str(exc), "boom in log")

    def test_bad_options(self):
        with self.assertRaises(tsesim.InvalidInput) as cm:
            tsesim.Client(base_url="http://example.com/api", access_token="t", session_token="s")
        self.assertIn("base_url", cm.exception.message)
        with self.assertRaises(tsesim.InvalidInput) as cm:
            tsesim.Client(**self.sim.client_args(password=None))
        self.assertIn("username", cm.exception.message)
        with self.assertRaises(tsesim.InvalidInput) as cm:
            tsesim.Client(**self.sim.client_args(timeout=0))
        self.assertIn("timeout", cm.exception.message)
        with self.assertRaises(tsesim.InvalidInput):
            tsesim.Client(**self.sim.client_args(timeout="soon"))


if __name__ == "__main__":
    unittest.main()
