"""The callback listener: ThingSpace's callbacks, stored in the journal.

:class:`Listener` starts the C library's listener (tsesim_listener_start(3)):
it serves POST on its path, checks the echoed credentials, parses each
callback, matches it to its device in the journal, and answers 200 only once
it is committed.  It runs on threads of its own until :meth:`Listener.stop`.

Threads, the GIL and exceptions:

- ``on_callback(callback, result)`` runs on the listener's one writer
  thread, once per callback answered 200 (repeats included), after its group
  is committed and before the answers are sent: keep it short (hand work to
  a queue.Queue).  ``log_fn(level, line)`` runs on any of the listener's
  threads, possibly on several at once.  ctypes takes the GIL for each call.
- An exception raised in either never reaches C: it is logged through
  ``logging.getLogger("tsesim")`` (with its traceback) and the listener goes
  on as if the hook had returned: the callback is still stored and answered
  200.
- The hooks are kept referenced by the Listener until :meth:`stop` has
  joined the listener's threads, after which no hook runs again.  A hook must
  not stop its own listener (RuntimeError); it may use a Journal or a Client
  of its own.
- A Listener still running when the interpreter exits is stopped (drained)
  at exit.
"""

import atexit
import logging
import os
import threading
import weakref
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    byref,
    c_char_p,
    c_int,
    c_size_t,
    c_uint,
    c_ulong,
    c_void_p,
    cast,
    create_string_buffer,
    memset,
    sizeof,
)

from . import _native
from ._native import lib
from .callback import callback_from_c
from .errors import InvalidInput

__all__ = ["Listener", "CallbackResult"]

_log = logging.getLogger("tsesim")

LISTENER_OPTIONS_VERSION = 1


class _CallbackResultC(Structure):
    _fields_ = [
        ("repeat", c_int),
        ("job", c_char_p),
        ("line", c_ulong),
        ("state", c_char_p),
    ]


# tsesim_callback_fn: the callback goes to callback_from_c as a pointer.
CALLBACK_FN = CFUNCTYPE(None, c_void_p, POINTER(_CallbackResultC), c_void_p)
LOG_FN = CFUNCTYPE(None, c_int, c_char_p, c_void_p)


class _ListenerOptionsC(Structure):
    _fields_ = [
        ("version", c_uint),
        ("journal", c_char_p),
        ("address", c_char_p),
        ("port", c_uint),
        ("path", c_char_p),
        ("username", c_char_p),
        ("password", c_char_p),
        ("tls_cert_file", c_char_p),
        ("tls_key_file", c_char_p),
        ("max_body_bytes", c_size_t),
        ("max_connections", c_uint),
        ("per_ip_connections", c_uint),
        ("timeout_s", c_uint),
        ("memory_budget", c_size_t),
        ("on_callback", CALLBACK_FN),
        ("callback_payload", c_void_p),
        ("log_fn", LOG_FN),
        ("log_payload", c_void_p),
        ("log_level", c_int),
    ]


_native.register("tsesim_callback_result", _CallbackResultC)
_native.register("tsesim_listener_options", _ListenerOptionsC)

_P = c_void_p
_native.declare("tsesim_listener_options_init", c_int, [POINTER(_ListenerOptionsC), c_uint])
_native.declare("tsesim_listener_start", c_int, [POINTER(_P), POINTER(_ListenerOptionsC), c_char_p])
_native.declare("tsesim_listener_port", c_uint, [_P])
_native.declare("tsesim_listener_stop", None, [_P])

_UINT_MAX = 0xFFFFFFFF
_SIZE_MAX = (1 << (8 * sizeof(c_size_t))) - 1


class CallbackResult(object):
    """What the listener made of one callback it answered 200.

    ``repeat``: True when it repeats a stored callback (nothing changed);
    ``job``: the job of its device, or None when unmatched (and always
    without a journal); ``line``: the device's line in the device file, or
    None when unmatched; ``state``: the device's state after it
    ("submitted", "warning", "success", "failed"), or None when unmatched.
    """

    __slots__ = ("repeat", "job", "line", "state")

    def __init__(self, repeat=False, job=None, line=None, state=None):
        self.repeat = repeat
        self.job = job
        self.line = line
        self.state = state

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None

    def __repr__(self):
        return "CallbackResult(%s)" % ", ".join(
            "%s=%r" % (k, getattr(self, k)) for k in self.__slots__
        )


# Which listener's hook this thread is running (stop() from it would deadlock).
_in_hook = threading.local()


def _callback_hook(fn, token):
    def hook(cb, result, payload):
        _in_hook.token = token
        try:
            r = result.contents
            fn(
                callback_from_c(cb),
                CallbackResult(
                    repeat=bool(r.repeat),
                    job=_native.text(r.job),
                    line=r.line or None,
                    state=_native.text(r.state),
                ),
            )
        except BaseException:  # never into C: the callback is stored and answered 200
            _log.exception("tsesim: the Listener's on_callback raised")
        finally:
            _in_hook.token = None

    return hook


def _log_hook(fn, token):
    def hook(level, line, payload):
        _in_hook.token = token
        try:
            fn(level, _native.text(line))
        except BaseException:  # never into C
            _log.exception("tsesim: the Listener's log_fn raised")
        finally:
            _in_hook.token = None

    return hook


def _uint(name, value, limit):
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s: expected int, got %s" % (name, type(value).__name__))
    if not 0 <= value <= limit:
        raise InvalidInput("TSESIM_E_INVAL", "%s: %d is out of range 0..%d" % (name, value, limit))
    return value


def _path(name, value):
    if value is None:
        return None
    if isinstance(value, (str, bytes, os.PathLike)):
        return os.fsencode(value)
    raise TypeError("%s: expected a path, got %s" % (name, type(value).__name__))


# Listeners running, stopped at exit; and those whose last reference went
# inside one of their own hooks, which cannot stop themselves there.
_running = weakref.WeakSet()
_orphans = []


@atexit.register
def _stop_all():
    for listener in list(_running):
        try:
            listener.stop()
        except Exception:
            pass
    while _orphans:
        ptr, _hooks = _orphans.pop()
        lib.tsesim_listener_stop(ptr)


class Listener(object):
    """Starts the callback listener; each keyword is the tsesim_listener_options
    field of that name (tsesim_listener_start(3)), None meaning its default.

    journal: a :class:`tsesim.Journal` or the path of one (it must exist);
    the listener opens its own connection.  None: nothing is stored, and
    each good callback is answered 200 once on_callback has returned.
    address ("127.0.0.1"; "0.0.0.0" or "::" for all), port (0: a free one,
    see :attr:`port`), path ("/callbacks"), username and password (what
    every callback must echo; both or neither), tls_cert_file and
    tls_key_file (PEM files: with both it speaks HTTPS), max_body_bytes
    (1 MiB), max_connections (256), per_ip_connections (no limit),
    timeout_s (10), memory_budget (64 MiB).

    on_callback: a callable(callback, result) taking a
    :class:`tsesim.Callback` and a :class:`CallbackResult`; log_fn: a
    callable(level, line), level 0 error .. 3 debug, with log_level the
    highest passed (default 0).  See the module's docstring for their
    threads, and for what happens when they raise (logged, never into C).

    Raises InvalidInput (an option, named), JournalError, TransportError
    (cannot bind; a TLS file), NoMemory.  Use it as a context manager, or
    call :meth:`stop`.
    """

    def __init__(
        self,
        journal=None,
        address=None,
        port=0,
        path=None,
        username=None,
        password=None,
        tls_cert_file=None,
        tls_key_file=None,
        max_body_bytes=None,
        max_connections=None,
        per_ip_connections=None,
        timeout_s=None,
        memory_budget=None,
        on_callback=None,
        log_fn=None,
        log_level=None,
    ):
        self._ptr = None
        self._hooks = ()
        self._lock = threading.Lock()
        self._token = object()
        if on_callback is not None and not callable(on_callback):
            raise TypeError("on_callback: expected a callable")
        if log_fn is not None and not callable(log_fn):
            raise TypeError("log_fn: expected a callable")
        opts = _ListenerOptionsC()
        rc = lib.tsesim_listener_options_init(byref(opts), LISTENER_OPTIONS_VERSION)
        if rc != 0:
            _native.raise_for(rc, "tsesim_listener_options_init")
        if journal is not None and hasattr(journal, "path") and hasattr(journal, "wait"):
            journal = journal.path
        # The bytes assigned below are kept alive by opts until the C call copies them.
        opts.journal = _path("journal", journal)
        opts.address = _native.encode(address, "address")
        opts.port = _uint("port", port, 65535)
        opts.path = _native.encode(path, "path")
        opts.username = _native.encode(username, "username")
        pw = _native.encode(password, "password")
        pw_buf = create_string_buffer(pw) if pw is not None else None  # zeroed once copied
        opts.password = cast(pw_buf, c_char_p) if pw_buf is not None else None
        opts.tls_cert_file = _path("tls_cert_file", tls_cert_file)
        opts.tls_key_file = _path("tls_key_file", tls_key_file)
        opts.max_body_bytes = _uint("max_body_bytes", max_body_bytes, _SIZE_MAX)
        opts.max_connections = _uint("max_connections", max_connections, _UINT_MAX)
        opts.per_ip_connections = _uint("per_ip_connections", per_ip_connections, _UINT_MAX)
        opts.timeout_s = _uint("timeout_s", timeout_s, _UINT_MAX)
        opts.memory_budget = _uint("memory_budget", memory_budget, _SIZE_MAX)
        if log_level is not None:
            if isinstance(log_level, bool) or not isinstance(log_level, int):
                raise TypeError("log_level: expected int")
            opts.log_level = log_level
        hooks = []
        if on_callback is not None:
            hooks.append(CALLBACK_FN(_callback_hook(on_callback, self._token)))
            opts.on_callback = hooks[-1]
        if log_fn is not None:
            hooks.append(LOG_FN(_log_hook(log_fn, self._token)))
            opts.log_fn = hooks[-1]
        self._address = address
        self._path = path
        self._tls = tls_cert_file is not None
        out = c_void_p()
        err = _native.errbuf()
        try:
            rc = lib.tsesim_listener_start(byref(out), byref(opts), err)
        finally:
            if pw_buf is not None:
                memset(pw_buf, 0, len(pw_buf))
        if rc != 0:
            _native.raise_for(rc, err.value)
        # Kept until stop() has joined the threads that call them.
        self._hooks = tuple(hooks)
        self._ptr = out.value
        _running.add(self)

    @property
    def running(self):
        return bool(self._ptr)

    @property
    def port(self):
        """The TCP port the listener is bound to (0 once stopped)."""
        return lib.tsesim_listener_port(self._ptr) if self._ptr else 0

    @property
    def url(self):
        """Its URL on this machine, e.g. http://127.0.0.1:PORT/callbacks: what
        to register against a local simulator.  ThingSpace itself needs the
        public HTTPS URL that reaches this listener."""
        host = self._address or "127.0.0.1"
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        if ":" in host:
            host = "[%s]" % host
        return "%s://%s:%d%s" % (
            "https" if self._tls else "http",
            host,
            self.port,
            self._path or "/callbacks",
        )

    def stop(self):
        """Stops accepting, answers and commits every callback already begun
        (drains), joins the listener's threads, then drops the hooks: no hook
        runs after it returns.  Safe to call more than once.  RuntimeError
        from the listener's own hooks."""
        if getattr(_in_hook, "token", None) is self._token:
            raise RuntimeError("tsesim.Listener.stop() from one of its own hooks")
        with self._lock:
            ptr, self._ptr = self._ptr, None
            if ptr:
                lib.tsesim_listener_stop(ptr)  # ctypes lets the GIL go: the hooks can finish
            self._hooks = ()
        _running.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        try:
            if not self._ptr:
                return
            if getattr(_in_hook, "token", None) is self._token:
                # Last reference dropped inside its own hook: it cannot stop
                # here; keep it and its hooks alive, stopped at exit.
                _orphans.append((self._ptr, self._hooks))
                self._ptr = None
                return
            self.stop()
        except Exception:
            pass

    def __repr__(self):
        if not self._ptr:
            return "<tsesim.Listener stopped>"
        return "<tsesim.Listener %s>" % self.url
