"""The download request: a typed list of devices for one account."""

import ctypes

from . import _native
from .errors import InvalidInput

__all__ = ["Request"]

_c_void_p = ctypes.c_void_p
_new = _native.declare(
    "tsesim_request_new_v2",
    ctypes.c_int,
    [ctypes.POINTER(_c_void_p), ctypes.c_char_p, ctypes.c_char_p],
)
_free = _native.declare("tsesim_request_free", None, [_c_void_p])
_set_plan = _native.declare(
    "tsesim_request_set_service_plan", ctypes.c_int, [_c_void_p, ctypes.c_char_p]
)
_set_verify = _native.declare(
    "tsesim_request_set_verify_checksums", ctypes.c_int, [_c_void_p, ctypes.c_int]
)
_add_device = _native.declare(
    "tsesim_request_add_device",
    ctypes.c_int,
    [_c_void_p, ctypes.POINTER(_native.DeviceId), ctypes.c_size_t],
)
_count = _native.declare("tsesim_request_device_count", ctypes.c_size_t, [_c_void_p])
_errmsg = _native.declare("tsesim_request_errmsg", ctypes.c_char_p, [_c_void_p])
_to_json = _native.declare(
    "tsesim_request_to_json",
    ctypes.c_int,
    [ctypes.POINTER(_c_void_p), ctypes.POINTER(ctypes.c_size_t), _c_void_p],
)

_add_devices = None


def _batch():
    # Declared on first use, so that importing the package does not need it.
    global _add_devices
    if _add_devices is None:
        _add_devices = _native.declare(
            "tsesim_request_add_devices",
            ctypes.c_int,
            [_c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p],
        )
    return _add_devices


class Request:
    """A download request for account_name (1-64 bytes of UTF-8 without control
    characters), with an optional service plan. Check digits are verified unless
    verify_checksums is false (lengths and digits are checked always).

    Raises InvalidInput for a bad account name or plan."""

    __slots__ = ("_handle", "_account_name", "_service_plan", "_verify", "__weakref__")

    def __init__(self, account_name, service_plan=None, verify_checksums=True):
        self._handle = None
        name = _native.encode(account_name, "accountName")
        if name is None:
            raise InvalidInput("TSESIM_E_INVAL", "accountName: missing (None)")
        out = _c_void_p()
        buf = _native.errbuf()
        code = _new(ctypes.byref(out), name, buf)
        if code != 0:
            _native.raise_for(code, buf.value)
        self._handle = out
        self._account_name = account_name
        self._service_plan = None
        self._verify = True
        if service_plan is not None:
            self.service_plan = service_plan
        if not verify_checksums:
            self.verify_checksums = False

    def __del__(self, _free=_free):
        h = getattr(self, "_handle", None)
        if h:
            self._handle = None
            _free(h)

    @property
    def _as_parameter_(self):
        # Lets a Request be passed where the C API takes a tsesim_request *.
        return self._handle

    @property
    def account_name(self):
        return self._account_name

    @property
    def service_plan(self):
        """The service plan (str), or None. Set it to change it; None removes it."""
        return self._service_plan

    @service_plan.setter
    def service_plan(self, value):
        code = _set_plan(self._handle, _native.encode(value, "servicePlan"))
        if code != 0:
            _native.raise_for(code, self._message("servicePlan: invalid"))
        self._service_plan = value

    @property
    def verify_checksums(self):
        """Whether devices added from now on have their check digits verified."""
        return self._verify

    @verify_checksums.setter
    def verify_checksums(self, value):
        value = bool(value)
        code = _set_verify(self._handle, 1 if value else 0)
        if code != 0:
            _native.raise_for(code, self._message(None))
        self._verify = value

    def _message(self, default):
        m = _errmsg(self._handle)
        return _native.text(m) if m else default

    def __len__(self):
        return _count(self._handle)

    def __repr__(self):
        return "<tsesim.Request account_name=%r devices=%d>" % (self._account_name, len(self))

    def add_device(self, eid, iccid=None, imei=None):
        """Adds one device: its eid and at least one of iccid and imei (str).
        Raises InvalidInput naming the device and field; nothing is added then."""
        ids = (_native.DeviceId * 3)()
        n = 0
        for kind, value, name in ((1, eid, "eid"), (2, iccid, "iccid"), (3, imei, "imei")):
            if value is None:
                continue
            ids[n].kind = kind
            ids[n].id = _native.encode(value, name)
            n += 1
        code = _add_device(self._handle, ids, n)
        if code != 0:
            _native.raise_for(code, self._message(None))

    def add_devices(self, rows):
        """Adds many devices at once: rows is an iterable of (eid, iccid, imei)
        tuples of str, None for an absent identifier. Each is checked as
        add_device checks one. All or nothing: on any failure nothing is added
        and InvalidInput says which device and field
        (``device N (record R): imei: ...``, R counting rows from 1).

        One call into the C library for all of them."""
        if not isinstance(rows, (list, tuple)):
            rows = list(rows)
        n = len(rows)
        if n == 0:
            return
        try:
            # The fast path: every cell a str.
            data = "\n".join(map(",".join, rows))
        except TypeError:
            base = len(self)
            data = "\n".join(_record(i, row, base) for i, row in enumerate(rows))
        # A separator inside a cell, or a row of other than 3 cells, would
        # shift the records: find it and say where.
        if data.count(",") != 2 * n or data.count("\n") != n - 1:
            base = len(self)
            for i, row in enumerate(rows):
                _record(i, row, base)
            raise InvalidInput("TSESIM_E_INVAL", "rows: a cell holds a comma or a line break")
        buf = data.encode("utf-8")
        err = _native.errbuf()
        code = _batch()(self._handle, buf, len(buf), err)
        if code != 0:
            _native.raise_for(code, err.value)

    def to_json(self):
        """The compact JSON body of the download (bytes). Raises LimitError over
        10,000 devices and InvalidInput when there is none."""
        out = _c_void_p()
        out_len = ctypes.c_size_t()
        code = _to_json(ctypes.byref(out), ctypes.byref(out_len), self._handle)
        if code != 0:
            n = len(self)
            if code == 3:
                msg = "the request holds %d devices, more than %d in one body" % (
                    n,
                    _native.MAX_DEVICES_PER_REQUEST,
                )
            elif code == 1 and n == 0:
                msg = "the request holds no device"
            else:
                msg = None
            _native.raise_for(code, msg)
        return _native.take_bytes(out, out_len.value)


def _record(i, row, base):
    """One row as a record "eid,iccid,imei", or the error that says why it cannot be."""
    try:
        cells = tuple(row)
    except TypeError:
        raise TypeError("rows[%d]: expected an (eid, iccid, imei) tuple, got %s"
                        % (i, type(row).__name__)) from None
    if len(cells) != 3:
        raise InvalidInput(
            "TSESIM_E_INVAL",
            "device %d (record %d): %d cells, expected 3 (eid, iccid, imei)"
            % (base + i, i + 1, len(cells)),
        )
    out = []
    for name, cell in zip(("eid", "iccid", "imei"), cells):
        if cell is None:
            out.append("")
            continue
        if not isinstance(cell, str):
            raise TypeError("rows[%d]: %s: expected str or None, got %s"
                            % (i, name, type(cell).__name__))
        if "," in cell or "\n" in cell or "\r" in cell:
            raise InvalidInput(
                "TSESIM_E_INVAL",
                "device %d (record %d): %s: %r holds a comma or a line break" % (base + i, i + 1, name, cell),
            )
        out.append(cell)
    return ",".join(out)
