"""Parsing ThingSpace's callbacks into plain Python objects."""

import ctypes

from . import _native

__all__ = ["Callback", "Profile", "parse_callback", "callback_from_c"]

_text = _native.text


class ProfileResponseStruct(ctypes.Structure):
    _fields_ = [
        ("ids", ctypes.POINTER(_native.DeviceId)),
        ("n_ids", ctypes.c_size_t),
        ("state", ctypes.c_char_p),
        ("profile_status", ctypes.c_char_p),
        ("profile_role", ctypes.c_char_p),
        ("role", ctypes.c_int),
    ]


class CallbackStruct(ctypes.Structure):
    _fields_ = [
        ("request_id", ctypes.c_char_p),
        ("device_ids", ctypes.POINTER(_native.DeviceId)),
        ("n_device_ids", ctypes.c_size_t),
        ("profile", ctypes.POINTER(ProfileResponseStruct)),
        ("status", ctypes.c_char_p),
        ("status_code", ctypes.c_int),
        ("callback_count", ctypes.c_long),
        ("max_callback_threshold", ctypes.c_long),
        ("fault_code", ctypes.c_char_p),
        ("fault_string", ctypes.c_char_p),
        ("username", ctypes.c_char_p),
        ("password", ctypes.c_char_p),
    ]


_native.register("tsesim_profile_response", ProfileResponseStruct)
_native.register("tsesim_callback", CallbackStruct)

_parse = _native.declare(
    "tsesim_callback_parse",
    ctypes.c_int,
    [ctypes.POINTER(ctypes.POINTER(CallbackStruct)), ctypes.c_char_p, ctypes.c_size_t,
     ctypes.c_char_p],
)
_free = _native.declare("tsesim_callback_free", None, [ctypes.POINTER(CallbackStruct)])

# tsesim_id_kind, tsesim_status, tsesim_profile_role
_KINDS = {1: "eid", 2: "iccid", 3: "imei", 4: "mdn"}
_STATUS = {1: "SUCCESS", 2: "FAILED", 3: "WARNING"}
_ROLES = {1: "LEAD", 2: "LOCAL", 3: "DEFAULT"}


def _ids(array, n):
    out = []
    for i in range(n):
        d = array[i]
        out.append((_KINDS.get(d.kind, "other"), _text(d.id)))
    return out


class Profile:
    """deviceResponse.deviceProfileResponse of a callback.

    .ids: list of (kind, id), as Callback.device_ids;
    .state, .profile_status, .profile_role: str as received, or None;
    .role: "LEAD", "LOCAL", "DEFAULT", or "OTHER" (unknown or absent),
    matched case-insensitively."""

    __slots__ = ("ids", "state", "profile_status", "profile_role", "role")

    def __init__(self, ids=(), state=None, profile_status=None, profile_role=None, role="OTHER"):
        self.ids = list(ids)
        self.state = state
        self.profile_status = profile_status
        self.profile_role = profile_role
        self.role = role

    def __eq__(self, other):
        if not isinstance(other, Profile):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None

    def __repr__(self):
        return "Profile(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


class Callback:
    """One parsed callback, a plain Python object (nothing of it is held in C).

    .request_id: str;
    .status: str as received, or None; .status_code: "SUCCESS", "FAILED",
    "WARNING" (matched case-insensitively) or "OTHER";
    .device_ids: list of (kind, id): kind "eid", "iccid", "imei", "mdn", or
    "other" for a kind the library does not know;
    .callback_count, .max_callback_threshold: int, or None when absent;
    .fault_code, .fault_string: str, or None;
    .profile: a Profile, or None;
    .username, .password: the echoed listener credentials, or None (the
    password is left out of repr)."""

    __slots__ = (
        "request_id",
        "status",
        "status_code",
        "device_ids",
        "callback_count",
        "max_callback_threshold",
        "fault_code",
        "fault_string",
        "profile",
        "username",
        "password",
    )

    def __init__(self, request_id, status=None, status_code="OTHER", device_ids=(),
                 callback_count=None, max_callback_threshold=None, fault_code=None,
                 fault_string=None, profile=None, username=None, password=None):
        self.request_id = request_id
        self.status = status
        self.status_code = status_code
        self.device_ids = list(device_ids)
        self.callback_count = callback_count
        self.max_callback_threshold = max_callback_threshold
        self.fault_code = fault_code
        self.fault_string = fault_string
        self.profile = profile
        self.username = username
        self.password = password

    def __eq__(self, other):
        if not isinstance(other, Callback):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None

    def __repr__(self):
        parts = []
        for k in self.__slots__:
            v = getattr(self, k)
            if k == "password" and v is not None:
                v = "***"
            parts.append("%s=%r" % (k, v))
        return "Callback(%s)" % ", ".join(parts)


def callback_from_c(ptr):
    """Copies a tsesim_callback * (a POINTER(CallbackStruct), c_void_p or int)
    out into a Callback. The C callback is left as it is (the caller frees it)."""
    if not isinstance(ptr, ctypes.POINTER(CallbackStruct)):
        if isinstance(ptr, ctypes.c_void_p):
            ptr = ptr.value
        ptr = ctypes.cast(ptr, ctypes.POINTER(CallbackStruct))
    if not ptr:
        raise ValueError("callback_from_c: NULL callback")
    c = ptr.contents
    profile = None
    if c.profile:
        p = c.profile.contents
        profile = Profile(
            ids=_ids(p.ids, p.n_ids),
            state=_text(p.state),
            profile_status=_text(p.profile_status),
            profile_role=_text(p.profile_role),
            role=_ROLES.get(p.role, "OTHER"),
        )
    return Callback(
        request_id=_text(c.request_id),
        status=_text(c.status),
        status_code=_STATUS.get(c.status_code, "OTHER"),
        device_ids=_ids(c.device_ids, c.n_device_ids),
        callback_count=None if c.callback_count < 0 else c.callback_count,
        max_callback_threshold=None if c.max_callback_threshold < 0 else c.max_callback_threshold,
        fault_code=_text(c.fault_code),
        fault_string=_text(c.fault_string),
        profile=profile,
        username=_text(c.username),
        password=_text(c.password),
    )


def parse_callback(body):
    """Parses one callback body (bytes; a str is encoded as UTF-8) into a
    Callback. Raises ParseError, naming the JSON path or line and column, for
    invalid JSON, a NUL byte, duplicate keys, a top level that is not an
    object, no requestId, or a known field of the wrong type."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        body = bytes(body)
    out = ctypes.POINTER(CallbackStruct)()
    buf = _native.errbuf()
    code = _parse(ctypes.byref(out), body, len(body), buf)
    if code != 0:
        _native.raise_for(code, buf.value)
    try:
        return callback_from_c(out)
    finally:
        _free(out)
