"""Layout safety: every ctypes mirror of a C struct (tsesim._native.MIRRORED)
has the size, fields and offsets the C compiler gives the struct, as printed
by tests/py_layout (TSESIM_LAYOUT), and every struct printed is mirrored."""

import ctypes
import subprocess
import unittest

import tsesim  # noqa: F401  (imports every module: each registers its mirrors)
from tsesim import _native

from simulator import env


def c_layouts():
    """{struct: (size, {field: (offset, size)})} from tests/py_layout, fields
    in their order."""
    out = subprocess.run([env("TSESIM_LAYOUT")], stdout=subprocess.PIPE, check=True).stdout
    layouts = {}
    for line in out.decode("ascii").splitlines():
        name, size, *fields = line.split()
        if name in layouts:
            raise AssertionError("py_layout prints %s twice" % name)
        cells = {}
        for f in fields:
            field, _, where = f.partition("=")
            off, _, width = where.partition(":")
            cells[field] = (int(off), int(width))
        layouts[name] = (int(size), cells)
    return layouts


def mismatches(layouts, mirrored):
    """Every difference, as text; [] when the layouts agree."""
    errors = []
    for name in sorted(set(layouts) - set(mirrored)):
        errors.append("%s: printed by py_layout but not mirrored in _native.MIRRORED" % name)
    for name in sorted(set(mirrored) - set(layouts)):
        errors.append("%s: mirrored but py_layout does not print it (add its line)" % name)
    for name in sorted(set(layouts) & set(mirrored)):
        size, offsets = layouts[name]
        cls = mirrored[name]
        if ctypes.sizeof(cls) != size:
            errors.append("%s: sizeof %d in C, %d in ctypes (%s)"
                          % (name, size, ctypes.sizeof(cls), cls.__name__))
        names = [f[0] for f in cls._fields_]
        if names != list(offsets):
            errors.append("%s: fields in C %s, in ctypes %s" % (name, list(offsets), names))
        for field, (off, width) in offsets.items():
            got = getattr(cls, field, None)
            if got is None:
                continue
            if got.offset != off:
                errors.append("%s.%s: offset %d in C, %d in ctypes" % (name, field, off, got.offset))
            if got.size != width:
                errors.append("%s.%s: %d bytes in C, %d in ctypes" % (name, field, width, got.size))
    return errors


class TestLayout(unittest.TestCase):
    def test_every_mirror_matches_c(self):
        layouts = c_layouts()
        for name in ("tsesim_device_id", "tsesim_api_error", "tsesim_options",
                     "tsesim_profile_response", "tsesim_callback"):
            self.assertIn(name, layouts)
            self.assertIn(name, _native.MIRRORED)
        errors = mismatches(layouts, _native.MIRRORED)
        self.assertEqual(errors, [], "\n".join(["ctypes layouts differ from C:"] + errors))

    def test_a_wrong_mirror_fails(self):
        layouts = c_layouts()

        class WrongDeviceId(ctypes.Structure):  # kind 12 bytes wide: what follows moves
            _fields_ = [("kind", ctypes.c_char * 12), ("id", ctypes.c_char_p),
                        ("kind_name", ctypes.c_char_p)]

        class ShortCallback(ctypes.Structure):  # the last field left out
            _fields_ = _native.MIRRORED["tsesim_callback"]._fields_[:-1]

        mirrored = dict(_native.MIRRORED)
        mirrored["tsesim_device_id"] = WrongDeviceId
        errors = mismatches(layouts, mirrored)
        self.assertIn("tsesim_device_id: sizeof 24 in C, 32 in ctypes (WrongDeviceId)", errors)
        self.assertIn("tsesim_device_id.id: offset 8 in C, 16 in ctypes", errors)
        class WideOptions(ctypes.Structure):  # max_attempts 8 bytes: the padding hides it
            _fields_ = [(f, ctypes.c_ulong if f == "max_attempts" else t)
                        for f, t in _native.MIRRORED["tsesim_options"]._fields_]

        mirrored["tsesim_options"] = WideOptions
        self.assertEqual(mismatches(layouts, mirrored)[-1:],
                         ["tsesim_options.max_attempts: 4 bytes in C, 8 in ctypes"])
        mirrored["tsesim_options"] = _native.MIRRORED["tsesim_options"]
        mirrored["tsesim_callback"] = ShortCallback
        errors = mismatches(layouts, mirrored)
        self.assertTrue(any(e.startswith("tsesim_callback: fields in C") for e in errors), errors)
        del mirrored["tsesim_options"]
        errors = mismatches(layouts, mirrored)
        self.assertIn("tsesim_options: printed by py_layout but not mirrored in _native.MIRRORED",
                      errors)
        mirrored["tsesim_extra"] = WrongDeviceId
        self.assertIn("tsesim_extra: mirrored but py_layout does not print it (add its line)",
                      mismatches(layouts, mirrored))


if __name__ == "__main__":
    unittest.main()
