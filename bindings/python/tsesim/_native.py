"""Finding and loading libtsesim.so.0, and what every module shares.

Where the library is looked for, in this order:

1. ``TSESIM_LIBRARY``: a full path. When it is set, it is the only place
   looked at (a path that does not load is an error, never a silent
   fallback to another copy of the library).
2. ``$(pkg-config --variable=libdir thingspace-esim)/libtsesim.so.0``.
3. ``libtsesim.so.0`` through the system's search path (ld.so.cache,
   LD_LIBRARY_PATH).

Nothing found raises ImportError naming every place tried. At import the
library's version is checked: its major number must be the package's, and it
must be at least the package's version (the calls below exist since then).

Rules for the modules that bind the C API (pycore's and pyjobs's alike):

- ``declare(name, restype, argtypes)`` every function before calling it;
- a string the caller must free comes back as ``c_void_p`` and goes through
  ``take_string`` (or ``take_bytes``), which frees it with tsesim_free: a
  ``c_char_p`` restype would leak it;
- a ctypes mirror of a C struct is registered in ``MIRRORED`` (``register``),
  so that tests/test_layout.py compares it with the C compiler's layout.
"""

import ctypes
import os
import subprocess

from ._version import __version__
from . import errors as _errors

SONAME = "libtsesim.so.0"
ERRBUF_SIZE = 256  # TSESIM_ERRBUF_SIZE
MAX_DEVICES_PER_REQUEST = 10000  # TSESIM_MAX_DEVICES_PER_REQUEST

# ---------------------------------------------------------------------------
# Loading


def _pkg_config_libdir():
    try:
        done = subprocess.run(
            ["pkg-config", "--variable=libdir", "thingspace-esim"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0 or not libdir:
        return None
    return libdir


def _load():
    tried = []
    env = os.environ.get("TSESIM_LIBRARY")
    if env:
        try:
            return ctypes.CDLL(env)
        except OSError as e:
            raise ImportError(
                "tsesim: cannot load the C library from TSESIM_LIBRARY=%s: %s" % (env, e)
            ) from None
    libdir = _pkg_config_libdir()
    if libdir is not None:
        path = os.path.join(libdir, SONAME)
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (pkg-config thingspace-esim libdir): %s" % (path, e))
    else:
        tried.append("pkg-config --variable=libdir thingspace-esim: no answer")
    try:
        return ctypes.CDLL(SONAME)
    except OSError as e:
        tried.append("%s (the system's search path): %s" % (SONAME, e))
    raise ImportError(
        "tsesim: cannot find the C library %s. Tried: TSESIM_LIBRARY (not set); %s. "
        "Install libtsesim, or set TSESIM_LIBRARY to the full path of %s."
        % (SONAME, "; ".join(tried), SONAME)
    )


lib = _load()

_declared = {}


def declare(name, restype, argtypes):
    """Sets the C function name's restype and argtypes, once, and returns it.

    Declaring a name again with other types is a programming error
    (RuntimeError): two modules would disagree on one C signature."""
    argtypes = list(argtypes)
    seen = _declared.get(name)
    if seen is not None:
        if seen[0] is not restype or seen[1] != argtypes:
            raise RuntimeError("tsesim: %s declared twice with different types" % name)
        return getattr(lib, name)
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = argtypes
    _declared[name] = (restype, argtypes)
    return fn


def _version_text(num):
    return "%d.%d.%d" % ((num >> 16) & 0xFF, (num >> 8) & 0xFF, num & 0xFF)


_tsesim_version = declare("tsesim_version", ctypes.c_uint, [])
LIBRARY_VERSION_NUM = _tsesim_version()


def _check_version():
    major, minor, patch = (int(x) for x in __version__.split(".")[:3])
    want = (major << 16) | (minor << 8) | patch
    have = LIBRARY_VERSION_NUM
    if (have >> 16) != major or have < want:
        raise ImportError(
            "tsesim: the C library %s is version %s; this package (tsesim %s) needs %d.x, "
            "at least %s" % (lib._name, _version_text(have), __version__, major, __version__)
        )


_check_version()


def library_version():
    """The C library's version in use, as text ("0.2.0")."""
    return _version_text(LIBRARY_VERSION_NUM)


# ---------------------------------------------------------------------------
# Memory and text

tsesim_free = declare("tsesim_free", None, [ctypes.c_void_p])


def errbuf():
    """A zeroed TSESIM_ERRBUF_SIZE buffer for the calls that take errbuf."""
    return ctypes.create_string_buffer(ERRBUF_SIZE)


def text(value):
    """bytes (or None) from C -> str (or None)."""
    if value is None:
        return None
    return value.decode("utf-8", "replace")


def take_bytes(ptr, length=None):
    """Copies the C string at ptr (c_void_p or int; length bytes, or up to
    its NUL) and frees it with tsesim_free. None for NULL."""
    if isinstance(ptr, ctypes.c_void_p):
        ptr = ptr.value
    if not ptr:
        return None
    try:
        if length is None:
            return ctypes.string_at(ptr)
        return ctypes.string_at(ptr, length)
    finally:
        tsesim_free(ptr)


def take_string(ptr, length=None):
    """As take_bytes, decoded as UTF-8: str, or None for NULL."""
    return text(take_bytes(ptr, length))


def encode(value, what):
    """str (or None) -> NUL-terminated bytes for a const char * argument."""
    if value is None:
        return None
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        raise TypeError("%s: expected str, got %s" % (what, type(value).__name__))
    if b"\0" in data:
        raise _errors.InvalidInput("TSESIM_E_INVAL", "%s: NUL character" % what)
    return data


# ---------------------------------------------------------------------------
# Mirrored structs (tests/test_layout.py checks each against tests/py_layout)

MIRRORED = {}


def register(c_name, cls):
    """Records cls as the ctypes mirror of the C struct c_name."""
    if c_name in MIRRORED and MIRRORED[c_name] is not cls:
        raise RuntimeError("tsesim: %s mirrored twice" % c_name)
    MIRRORED[c_name] = cls
    return cls


class DeviceId(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_int),
        ("id", ctypes.c_char_p),
        ("kind_name", ctypes.c_char_p),
    ]


register("tsesim_device_id", DeviceId)


class ApiErrorStruct(ctypes.Structure):
    _fields_ = [
        ("http_status", ctypes.c_long),
        ("code", ctypes.c_char_p),
        ("message", ctypes.c_char_p),
        ("description", ctypes.c_char_p),
        ("body", ctypes.c_char_p),
        ("retry_after", ctypes.c_long),
    ]


register("tsesim_api_error", ApiErrorStruct)

# ---------------------------------------------------------------------------
# Errors

_code_name = declare("tsesim_code_name", ctypes.c_char_p, [ctypes.c_int])
_strerror = declare("tsesim_strerror", ctypes.c_char_p, [ctypes.c_int])
_client_errmsg = declare("tsesim_client_errmsg", ctypes.c_char_p, [ctypes.c_void_p])
_client_last_error = declare(
    "tsesim_client_last_error", ctypes.POINTER(ApiErrorStruct), [ctypes.c_void_p]
)

_CLASSES = {
    1: _errors.InvalidInput,
    2: _errors.NoMemory,
    3: _errors.LimitError,
    4: _errors.ParseError,
    5: _errors.TransportError,
    6: _errors.TransportError,
    7: _errors.TransportError,
    8: _errors.AuthError,
    9: _errors.ApiError,
    10: _errors.ApiError,
    11: _errors.ApiError,
    12: _errors.UnknownOutcomeError,
    13: _errors.JournalError,
    14: _errors.Cancelled,
}


def code_name(code):
    """The C name of a tsesim_code ("TSESIM_E_AUTH")."""
    return _code_name(int(code)).decode("ascii")


def error_for(code, message=None, client=None):
    """The tsesim.Error for a failed call's code. message: the errbuf or
    errmsg text (None: the client's errmsg when client is given, else the
    code's description). client: the tsesim_client * (c_void_p, int, or any
    object with _as_parameter_) whose last error fills ApiError's fields."""
    code = int(code)
    handle = getattr(client, "_as_parameter_", client)
    if isinstance(message, bytes):
        message = text(message)
    if not message and handle:
        message = text(_client_errmsg(handle))
    if not message:
        message = text(_strerror(code))
    cls = _CLASSES.get(code, _errors.Error)
    name = code_name(code)
    if cls is _errors.ApiError:
        fields = {}
        if handle:
            p = _client_last_error(handle)
            if p:
                e = p.contents
                fields = dict(
                    http_status=int(e.http_status),
                    api_code=text(e.code),
                    api_message=text(e.message),
                    description=text(e.description),
                    body=text(e.body),
                    retry_after=None if e.retry_after < 0 else int(e.retry_after),
                )
        return cls(name, message, **fields)
    return cls(name, message)


def raise_for(code, message=None, client=None):
    """Raises error_for(code, message, client); never returns."""
    raise error_for(code, message, client)
