"""Everything the C library allocates is freed by the package: 100,000
parse_callback cycles and 100,000 Request cycles (build, to_json, free) keep
the process's resident size flat (/proc/self/statm, after a warm-up)."""

import gc
import os
import unittest

import tsesim

from simulator import ACCOUNT, device

CYCLES = 100000
BOUND = 2 * 1024 * 1024  # bytes of growth allowed (allocator noise, not leaks)

CALLBACK = (
    b'{"requestId":"d1f08526-5443-4054-9a29-4456490ea9f8","deviceIds":['
    b'{"kind":"eid","id":"89049032000001000000000000000042"},'
    b'{"kind":"Iccid","id":"89014103211118510720"},{"kind":"IMEI","id":"352099001761481"}],'
    b'"deviceResponse":{"deviceProfileResponse":{"deviceIdentifierCollection":['
    b'{"kind":"eid","id":"89049032000001000000000000000042"}],"state":"ACTIVE",'
    b'"profileStatus":"ENABLE","profileRole":"LEAD"}},'
    b'"faultResponse":{"faultcode":"F","faultstring":"none"},"status":"Success",'
    b'"callbackCount":"2","maxCallbackThreshold":4,"username":"user","password":"pass"}'
)
E, I, M = device(7)


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def parse_cycle(n):
    for _ in range(n):
        cb = tsesim.parse_callback(CALLBACK)
        assert cb.profile.ids[0][0] == "eid"
    for _ in range(n // 10):  # the failing path frees too
        try:
            tsesim.parse_callback(b'{"requestId":"r","deviceIds":[{"kind":1}]}')
        except tsesim.ParseError:
            pass


def request_cycle(n):
    for _ in range(n):
        req = tsesim.Request(ACCOUNT, service_plan="M2M_4G")
        req.add_device(E, iccid=I, imei=M)
        req.add_devices([(E, None, M)])
        assert len(req.to_json()) > 100
    for _ in range(n // 10):
        req = tsesim.Request(ACCOUNT)
        try:
            req.add_device(E, imei=M[:-1])
        except tsesim.InvalidInput:
            pass
        try:
            req.to_json()
        except tsesim.InvalidInput:
            pass


class TestLeak(unittest.TestCase):
    def flat(self, cycle):
        cycle(CYCLES // 10)  # warm-up: the allocators' pools, ctypes' caches
        gc.collect()
        before = rss()
        cycle(CYCLES)
        gc.collect()
        grown = rss() - before
        self.assertLess(grown, BOUND, "RSS grew by %d bytes over %d cycles" % (grown, CYCLES))
        return grown

    def test_parse_callback(self):
        self.flat(parse_cycle)

    def test_request(self):
        self.flat(request_cycle)

    def test_the_check_can_fail(self):
        # 100,000 of what the package must never do (a string from the C
        # library not given back to tsesim_free) exceeds the bound.
        import ctypes
        from tsesim import _native

        to_json = _native.lib.tsesim_request_to_json
        req = tsesim.Request(ACCOUNT)
        req.add_device(E, iccid=I, imei=M)

        def leaky(n):
            out = ctypes.c_void_p()
            size = ctypes.c_size_t()
            for _ in range(n):
                assert to_json(ctypes.byref(out), ctypes.byref(size), req) == 0

        with self.assertRaises(AssertionError):
            self.flat(leaky)


if __name__ == "__main__":
    unittest.main()
