"""Checking one identifier."""

import ctypes

from . import _native
from .errors import InvalidInput

__all__ = ["validate_id", "KINDS"]

# tsesim_id_kind
KINDS = {"eid": 1, "iccid": 2, "imei": 3, "mdn": 4}

_validate = _native.declare(
    "tsesim_id_validate", ctypes.c_int, [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p]
)


def validate_id(kind, id):
    """Checks one identifier as the C library does: digits only, the length (eid 32,
    iccid 19-20, imei 15, mdn 10) and the check digits (Luhn for iccid and imei,
    ISO 7064 MOD 97-10 for eid).

    kind: "eid", "iccid", "imei" or "mdn". Returns None, or raises InvalidInput
    saying why (an unknown kind included)."""
    k = KINDS.get(kind) if isinstance(kind, str) else None
    if k is None:
        raise InvalidInput(
            "TSESIM_E_INVAL", "kind: %r is none of eid, iccid, imei, mdn" % (kind,)
        )
    data = _native.encode(id, kind)
    if data is None:
        raise InvalidInput("TSESIM_E_INVAL", "%s: missing (None)" % kind)
    buf = _native.errbuf()
    code = _validate(k, data, buf)
    if code != 0:
        _native.raise_for(code, buf.value)
