"""The ThingSpace client: downloads, callback registration, tokens."""

import ctypes
import logging
import threading

from . import _native
from .errors import InvalidInput

__all__ = ["Client"]

_log = logging.getLogger("tsesim")
_c_void_p = ctypes.c_void_p
_c_char_p = ctypes.c_char_p

LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, _c_char_p, _c_void_p)
TOKEN_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, _c_char_p, ctypes.c_long, _c_void_p)
CLOCK_FN = ctypes.CFUNCTYPE(ctypes.c_double, _c_void_p)
SLEEP_FN = ctypes.CFUNCTYPE(None, ctypes.c_long, _c_void_p)


class Options(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint),
        ("base_url", _c_char_p),
        ("client_id", _c_char_p),
        ("client_secret", _c_char_p),
        ("access_token", _c_char_p),
        ("username", _c_char_p),
        ("password", _c_char_p),
        ("session_token", _c_char_p),
        ("log_fn", LOG_FN),
        ("log_payload", _c_void_p),
        ("log_level", ctypes.c_int),
        # version 2
        ("connect_timeout_ms", ctypes.c_long),
        ("timeout_ms", ctypes.c_long),
        ("ca_file", _c_char_p),
        ("ca_path", _c_char_p),
        ("proxy", _c_char_p),
        ("user_agent", _c_char_p),
        ("max_attempts", ctypes.c_uint),
        ("backoff_base_ms", ctypes.c_long),
        ("backoff_cap_ms", ctypes.c_long),
        ("max_response_bytes", ctypes.c_size_t),
        ("insecure_plain_http_any_host", ctypes.c_int),
        ("token_fn", TOKEN_FN),
        ("token_payload", _c_void_p),
        ("clock_fn", CLOCK_FN),
        ("sleep_fn", SLEEP_FN),
        ("time_payload", _c_void_p),
    ]


OPTIONS_VERSION = 2  # TSESIM_OPTIONS_VERSION this mirror has every field of
_native.register("tsesim_options", Options)

_options_init = _native.declare(
    "tsesim_options_init", ctypes.c_int, [ctypes.POINTER(Options), ctypes.c_uint]
)
_global_init = _native.declare("tsesim_global_init", ctypes.c_int, [])
_global_cleanup = _native.declare("tsesim_global_cleanup", None, [])
_client_new = _native.declare(
    "tsesim_client_new_v2",
    ctypes.c_int,
    [ctypes.POINTER(_c_void_p), ctypes.POINTER(Options), _c_char_p],
)
_client_free = _native.declare("tsesim_client_free", None, [_c_void_p])
_login = _native.declare("tsesim_client_login", ctypes.c_int, [_c_void_p])
_logout = _native.declare("tsesim_client_logout", ctypes.c_int, [_c_void_p])
_download = _native.declare(
    "tsesim_client_download", ctypes.c_int, [ctypes.POINTER(_c_void_p), _c_void_p, _c_void_p]
)
_register = _native.declare(
    "tsesim_client_register_callback",
    ctypes.c_int,
    [_c_void_p, _c_char_p, _c_char_p, _c_char_p, _c_char_p, _c_char_p],
)
_unregister = _native.declare(
    "tsesim_client_unregister_callback", ctypes.c_int, [_c_void_p, _c_char_p, _c_char_p]
)

_SECRETS = ("client_secret", "access_token", "password", "session_token")


def _millis(seconds, what):
    if seconds is None:
        return 0
    try:
        ms = int(round(float(seconds) * 1000))
    except (TypeError, ValueError):
        raise InvalidInput("TSESIM_E_INVAL", "%s: not a number of seconds: %r" % (what, seconds)) from None
    if ms <= 0:
        raise InvalidInput("TSESIM_E_INVAL", "%s: %r seconds, must be more than 0" % (what, seconds))
    return ms


class Client:
    """A ThingSpace client. Give the OAuth key and secret (client_id,
    client_secret) or an access_token, and the M2M user (username, password)
    or a session_token. base_url None: ThingSpace itself; http:// only to a
    loopback host. ca_file: a PEM bundle to verify servers with. timeout: one
    whole HTTP exchange, in seconds (None: 60).

    Further keyword arguments: connect_timeout (seconds), ca_path, proxy,
    user_agent, max_attempts, backoff_base and backoff_cap (seconds),
    max_response_bytes, log (a callable(level, line) called inside the
    client's calls, level 0 error .. 3 debug; an exception it raises is
    logged to logging.getLogger("tsesim") and never reaches the library)
    and log_level (the highest level passed to log, default 1).

    One thread at a time runs a call on a client (calls from several threads
    are serialized). Use it as a context manager, or call close(): that frees
    the C client, which zeroes the secrets it held. Raises InvalidInput for a
    bad option, naming it."""

    def __init__(self, base_url=None, client_id=None, client_secret=None,
                 username=None, password=None, access_token=None, session_token=None,
                 ca_file=None, timeout=None, *, connect_timeout=None, ca_path=None,
                 proxy=None, user_agent=None, max_attempts=None, backoff_base=None,
                 backoff_cap=None, max_response_bytes=None, log=None, log_level=1):
        self._handle = None
        self._lock = threading.Lock()
        self._log_cb = None
        opts = Options()
        code = _options_init(ctypes.byref(opts), OPTIONS_VERSION)
        if code != 0:
            _native.raise_for(code, "tsesim_options_init")
        strings = dict(base_url=base_url, client_id=client_id, client_secret=client_secret,
                       access_token=access_token, username=username, password=password,
                       session_token=session_token, ca_file=ca_file, ca_path=ca_path,
                       proxy=proxy, user_agent=user_agent)
        # Secrets go through buffers that are zeroed once the library has
        # copied them.
        buffers = []
        try:
            for name, value in strings.items():
                data = _native.encode(value, name)
                if data is None:
                    continue
                if name in _SECRETS:
                    b = ctypes.create_string_buffer(data)
                    buffers.append(b)
                    setattr(opts, name, ctypes.cast(b, _c_char_p))
                else:
                    setattr(opts, name, data)
            opts.timeout_ms = _millis(timeout, "timeout")
            opts.connect_timeout_ms = _millis(connect_timeout, "connect_timeout")
            opts.backoff_base_ms = _millis(backoff_base, "backoff_base")
            opts.backoff_cap_ms = _millis(backoff_cap, "backoff_cap")
            if max_attempts is not None:
                if not isinstance(max_attempts, int) or max_attempts < 1:
                    raise InvalidInput("TSESIM_E_INVAL",
                                       "max_attempts: %r, must be an int of 1 or more" % (max_attempts,))
                opts.max_attempts = max_attempts
            if max_response_bytes is not None:
                if not isinstance(max_response_bytes, int) or max_response_bytes < 1:
                    raise InvalidInput("TSESIM_E_INVAL", "max_response_bytes: %r, must be an int of 1 "
                                       "or more" % (max_response_bytes,))
                opts.max_response_bytes = max_response_bytes
            if log is not None:
                if not callable(log):
                    raise TypeError("log: not callable")
                self._log_cb = LOG_FN(_log_hook(log))
                opts.log_fn = self._log_cb
                opts.log_level = int(log_level)
            code = _global_init()
            if code != 0:
                _native.raise_for(code, "tsesim_global_init")
            out = _c_void_p()
            err = _native.errbuf()
            code = _client_new(ctypes.byref(out), ctypes.byref(opts), err)
            if code != 0:
                _global_cleanup()
                _native.raise_for(code, err.value)
            self._handle = out
        finally:
            for b in buffers:
                ctypes.memset(b, 0, len(b))

    # -- life

    def close(self):
        """Frees the C client (zeroing the secrets it held). Idempotent."""
        with self._lock:
            h, self._handle = self._handle, None
            if h:
                _client_free(h)
                _global_cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if getattr(self, "_handle", None):
                self.close()
        except Exception:  # interpreter shutdown: the module may be gone
            pass

    @property
    def closed(self):
        return not self._handle

    @property
    def _as_parameter_(self):
        # Lets a Client be passed where the C API takes a tsesim_client *.
        if not self._handle:
            raise ValueError("tsesim.Client: closed")
        return self._handle

    def _call(self, fn, *args):
        with self._lock:
            h = self._as_parameter_
            code = fn(h, *args)
            if code != 0:
                _native.raise_for(code, None, h)

    # -- calls

    def login(self):
        """Gets whatever tokens are missing or stale now (access token, then session)."""
        self._call(_login)

    def logout(self):
        """Ends the M2M session."""
        self._call(_logout)

    def download(self, request):
        """Sends one download of request (up to 10,000 devices) and returns
        ThingSpace's requestId (str). Raises UnknownOutcomeError when it was
        sent and no complete answer came: never retry that blindly."""
        if not hasattr(request, "_as_parameter_"):
            raise TypeError("download: expected a tsesim.Request, got %s" % type(request).__name__)
        out = _c_void_p()
        with self._lock:
            h = self._as_parameter_
            code = _download(ctypes.byref(out), h, request)
            if code != 0:
                _native.raise_for(code, None, h)
        return _native.take_string(out)

    def register_callback(self, account_name, url, username=None, password=None,
                          service_name=None):
        """Registers url as the account's listener (service_name None:
        "DeviceProfileService"); ThingSpace echoes username and password in
        each callback. Replaces an earlier registration of that service."""
        pw = _native.encode(password, "password")
        b = ctypes.create_string_buffer(pw) if pw is not None else None
        try:
            self._call(_register, _native.encode(account_name, "account_name"),
                       _native.encode(service_name, "service_name"), _native.encode(url, "url"),
                       _native.encode(username, "username"),
                       ctypes.cast(b, _c_char_p) if b is not None else None)
        finally:
            if b is not None:
                ctypes.memset(b, 0, len(b))

    def unregister_callback(self, account_name, service_name=None):
        """Removes the account's listener for service_name (None: "DeviceProfileService")."""
        self._call(_unregister, _native.encode(account_name, "account_name"),
                   _native.encode(service_name, "service_name"))


def _log_hook(fn):
    def hook(level, line, payload):
        try:
            fn(level, _native.text(line))
        except BaseException:  # never into C
            _log.exception("tsesim: the Client's log callable raised")
    return hook
