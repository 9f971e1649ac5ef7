"""The journal, jobs, the tracker and device files.

A :class:`Journal` is one SQLite connection to a journal file (see
tsesim-journal(5)): it records a job's rows and chunks before they are acted
on, so that :meth:`Journal.submit` can be run again after a failure or a
crash and send only what certainly was not acted on.  The listener
(:class:`tsesim.Listener`) stores each callback in the same file, and
:meth:`Journal.count`, :meth:`Journal.devices` and :meth:`Journal.wait` read
the outcome.

Threads: a Journal is used from one thread at a time in C; this class takes
a lock around every call, so sharing one between Python threads is safe, but
a thread that waits or submits holds the others up.  Open one Journal per
thread that needs it (SQLite coordinates them), as libtsesim-thread(3) says.

Hooks: the ``progress`` and ``stop`` callables of :meth:`Journal.submit` run
on the calling thread, inside the C call.  An exception raised in one of
them never reaches C: it is logged through ``logging.getLogger("tsesim")``,
the job stops as a stop callable would stop it (chunks on the wire finish and
are recorded; no new chunk starts), and :meth:`Journal.submit` raises that
exception once the C call has returned.  That makes Ctrl-C (KeyboardInterrupt)
stop a job cleanly: while a job runs on the main thread, SIGINT only marks
the job to stop (the package asks whether to stop at least once a second),
and the interrupted handler runs (raising KeyboardInterrupt) once the chunks
on the wire are recorded.
"""

import logging
import os
import signal
import threading
import time
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    byref,
    c_char_p,
    c_int,
    c_long,
    c_size_t,
    c_uint,
    c_ulong,
    c_void_p,
)

from . import _native
from ._native import lib
from .errors import InvalidInput

__all__ = [
    "Journal",
    "JobCounts",
    "JobProgress",
    "DeviceStatus",
    "Row",
    "Rows",
    "read_devices",
]

_log = logging.getLogger("tsesim")

# tsesim_code values this module tests for (include/tsesim.h).
_OK = 0
_E_INVAL = 1
_E_TIMEOUT = 6

JOB_OPTIONS_VERSION = 2


# ---- C mirrors (exactly the C fields, in order; checked by test_layout) ----


class _RowC(Structure):
    _fields_ = [
        ("line", c_ulong),
        ("eid", c_char_p),
        ("iccid", c_char_p),
        ("imei", c_char_p),
        ("error", c_char_p),
        ("device", c_size_t),
    ]


class _JobProgressC(Structure):
    _fields_ = [
        ("devices", c_size_t),
        ("queued", c_size_t),
        ("sending", c_size_t),
        ("accepted", c_size_t),
        ("unknown", c_size_t),
        ("refused", c_size_t),
        ("chunks", c_size_t),
        ("chunks_done", c_size_t),
        ("bytes", c_ulong),
        ("chunk", c_long),
        ("state", c_char_p),
        ("request_id", c_char_p),
        ("error", c_char_p),
    ]


PROGRESS_FN = CFUNCTYPE(None, POINTER(_JobProgressC), c_void_p)
STOP_FN = CFUNCTYPE(c_int, c_void_p)


class _JobOptionsC(Structure):
    _fields_ = [
        ("version", c_uint),
        ("chunk_size", c_size_t),
        ("in_flight", c_uint),
        ("resend_unknown", c_int),
        ("rows", c_void_p),
        ("progress_fn", PROGRESS_FN),
        ("progress_payload", c_void_p),
        # ---- version 2 ----
        ("stop_fn", STOP_FN),
        ("stop_payload", c_void_p),
    ]


class _JobCountsC(Structure):
    _fields_ = [
        ("devices", c_size_t),
        ("queued", c_size_t),
        ("submitted", c_size_t),
        ("unknown", c_size_t),
        ("refused", c_size_t),
        ("warning", c_size_t),
        ("success", c_size_t),
        ("failed", c_size_t),
        ("invalid", c_size_t),
        ("callbacks", c_ulong),
        ("duplicates", c_ulong),
        ("unmatched", c_ulong),
    ]


class _DeviceStatusC(Structure):
    _fields_ = [
        ("line", c_ulong),
        ("eid", c_char_p),
        ("iccid", c_char_p),
        ("imei", c_char_p),
        ("state", c_char_p),
        ("request_id", c_char_p),
        ("status", c_char_p),
        ("fault", c_char_p),
        ("error", c_char_p),
        ("callbacks", c_ulong),
    ]


DEVICE_FN = CFUNCTYPE(c_int, POINTER(_DeviceStatusC), c_void_p)

_native.register("tsesim_row", _RowC)
_native.register("tsesim_job_progress", _JobProgressC)
_native.register("tsesim_job_options", _JobOptionsC)
_native.register("tsesim_job_counts", _JobCountsC)
_native.register("tsesim_device_status", _DeviceStatusC)

# ---- C functions ----

_P = c_void_p  # every opaque handle
_native.declare("tsesim_rows_parse_csv", c_int, [POINTER(_P), _P, c_char_p, c_size_t, c_char_p])
_native.declare("tsesim_rows_read_csv", c_int, [POINTER(_P), _P, c_char_p, c_char_p])
_native.declare("tsesim_rows_read_csv_fd", c_int, [POINTER(_P), _P, c_int, c_char_p, c_char_p])
_native.declare("tsesim_rows_count", c_size_t, [_P])
_native.declare("tsesim_rows_rejected", c_size_t, [_P])
_native.declare("tsesim_rows_get", POINTER(_RowC), [_P, c_size_t])
_native.declare("tsesim_rows_free", None, [_P])
_native.declare("tsesim_journal_open", c_int, [POINTER(_P), c_char_p, c_char_p])
_native.declare("tsesim_journal_errmsg", c_char_p, [_P])  # borrowed: never freed
_native.declare("tsesim_journal_close", None, [_P])
_native.declare("tsesim_journal_set", c_int, [_P, c_char_p, c_char_p])
_native.declare("tsesim_journal_get", c_int, [_P, c_char_p, POINTER(_P)])
_native.declare("tsesim_job_options_init", c_int, [POINTER(_JobOptionsC), c_uint])
_native.declare("tsesim_job_submit", c_int, [_P, _P, c_char_p, _P, POINTER(_JobOptionsC)])
_native.declare("tsesim_job_record", c_int, [_P, c_char_p, _P, POINTER(_JobOptionsC)])
_native.declare("tsesim_job_count", c_int, [_P, c_char_p, POINTER(_JobCountsC)])
_native.declare("tsesim_job_wait", c_int, [_P, c_char_p, c_long, POINTER(_JobCountsC)])
_native.declare("tsesim_job_devices", c_int, [_P, c_char_p, DEVICE_FN, c_void_p])


# ---- small helpers ----


_text = _native.text


def _c_text(name, value, allow_none=True):
    """A str argument as UTF-8 bytes for C (InvalidInput for a NUL in it)."""
    if value is None and not allow_none:
        raise TypeError("%s: expected str, got None" % name)
    return _native.encode(value, name)


def _count_arg(name, value, limit):
    """None (C's 0: the default) or a whole number 0..limit, else InvalidInput."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s: an int is required, not %s" % (name, type(value).__name__))
    if value < 0 or value > limit:
        raise InvalidInput("TSESIM_E_INVAL", "%s: %d is out of range 0..%d" % (name, value, limit))
    return value


def _request_arg(request):
    """A tsesim.Request, passed to C through its _as_parameter_."""
    if not hasattr(request, "_as_parameter_") or not hasattr(request, "add_devices"):
        raise TypeError("expected a tsesim.Request, got %s" % type(request).__name__)
    if not request._as_parameter_:
        raise ValueError("tsesim.Request: freed")
    return request


class _NoLock(object):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Record(object):
    """A plain, read-only record: its fields are its __slots__."""

    __slots__ = ()

    def __init__(self, **fields):
        for k in self.__slots__:
            object.__setattr__(self, k, fields.get(k))

    def __setattr__(self, name, value):
        raise AttributeError("%s is read-only" % type(self).__name__)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None

    def __repr__(self):
        return "%s(%s)" % (
            type(self).__name__,
            ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__),
        )

    def _asdict(self):
        return {k: getattr(self, k) for k in self.__slots__}


# ---- device files ----


class Row(_Record):
    """One data row of a device file, valid or not, copied out of C.

    ``line`` is its 1-based line in the file; ``eid``, ``iccid``, ``imei``
    the cells as read (None when empty); ``error`` None for a valid row, else
    why it was rejected, naming the field; ``device`` a valid row's index in
    the request (None for a rejected row).
    """

    __slots__ = ("line", "eid", "iccid", "imei", "error", "device")

    @classmethod
    def _from_c(cls, r):
        err = _text(r.error)
        return cls(
            line=r.line,
            eid=_text(r.eid),
            iccid=_text(r.iccid),
            imei=_text(r.imei),
            error=err,
            device=None if err is not None else r.device,
        )


class Rows(object):
    """The rows of a device file, as :func:`read_devices` read them.

    ``len(rows)`` counts every data row, valid and rejected;
    ``rows.rejected`` the rejected ones; ``rows[i]`` (file order, negative
    indexes and slices as for a list) and iteration give :class:`Row`
    objects, copied out.  Pass it to :meth:`Journal.submit` so that the
    journal records every row with its line, the rejected ones too.

    It keeps its request alive: a valid row's cells are read from its device
    in the request, so do not close the request before these rows.  Closed
    by :meth:`close`, a with-block, or garbage collection.
    """

    def __init__(self, _ptr, request):
        self._ptr = _ptr
        self._request = request
        self._lock = threading.Lock()  # tsesim_rows_get: one thread at a time

    def _handle(self):
        if not self._ptr:
            raise ValueError("the rows are closed")
        return self._ptr

    def __len__(self):
        return lib.tsesim_rows_count(self._handle())

    @property
    def rejected(self):
        """The number of rejected rows."""
        return lib.tsesim_rows_rejected(self._handle())

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("row index out of range")
        with self._lock:
            p = lib.tsesim_rows_get(self._handle(), i)
            return Row._from_c(p.contents)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def close(self):
        """Frees the C rows; safe to call more than once."""
        ptr, self._ptr = self._ptr, None
        if ptr:
            lib.tsesim_rows_free(ptr)
        self._request = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        if not self._ptr:
            return "<tsesim.Rows closed>"
        return "<tsesim.Rows %d rows, %d rejected>" % (len(self), self.rejected)


def read_devices(source, request):
    """Reads a device file into request and returns its :class:`Rows`.

    source is a path (str, bytes or os.PathLike), an open file descriptor
    (int; read to its end in blocks, never held whole, and not closed), or a
    binary file object (read to its end with its ``read()``; give its
    ``fileno()`` instead for a large file).  The file is CSV with a header
    naming ``eid`` and ``iccid`` and/or ``imei`` (tsesim_rows_read_csv(3)):
    every valid row is added to request in file order; rejected rows are kept
    in the result with their reason (``rows.rejected`` counts them) and are
    not added.

    Raises InvalidInput for a file that is not a device file or cannot be
    read (the message says ``line N: why`` or names the path), and then
    request is as it was.
    """
    req = _request_arg(request)
    out = c_void_p()
    err = _native.errbuf()
    if isinstance(source, bool):
        raise TypeError("read_devices: a path, a file descriptor or a binary file is required")
    if isinstance(source, int):
        rc = lib.tsesim_rows_read_csv_fd(byref(out), req, source, None, err)
    elif isinstance(source, (str, bytes, os.PathLike)):
        rc = lib.tsesim_rows_read_csv(byref(out), req, os.fsencode(source), err)
    elif hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            raise TypeError("read_devices: open the device file in binary mode ('rb')")
        data = bytes(data)
        rc = lib.tsesim_rows_parse_csv(byref(out), req, data, len(data), err)
    else:
        raise TypeError(
            "read_devices: a path, a file descriptor or a binary file is required, not %s"
            % type(source).__name__
        )
    if rc != _OK:
        _native.raise_for(rc, _text(err.value) or "")
    return Rows(out.value, request)


# ---- what the tracker and a job report ----


class JobCounts(_Record):
    """A job's devices by state, and its callbacks (tsesim_job_count(3)).

    Every data row is in exactly one of: ``queued``, ``submitted``,
    ``unknown``, ``refused``, ``warning``, ``success``, ``failed``,
    ``invalid``; ``devices`` is their sum.  ``callbacks`` counts distinct
    callbacks stored for the job's devices, ``duplicates`` repeats of those,
    ``unmatched`` callbacks of the whole journal matched to no device.
    ``pending`` is queued + submitted + warning, as tsesim(1) prints it.
    """

    __slots__ = (
        "devices",
        "queued",
        "submitted",
        "unknown",
        "refused",
        "warning",
        "success",
        "failed",
        "invalid",
        "callbacks",
        "duplicates",
        "unmatched",
    )

    @classmethod
    def _from_c(cls, c):
        return cls(**{k: getattr(c, k) for k in cls.__slots__})

    @property
    def pending(self):
        """Devices queued, submitted or warning: not final and not unknown."""
        return self.queued + self.submitted + self.warning

    @property
    def final(self):
        """True when no device is submitted, warning or unknown (what wait waits for)."""
        return self.submitted + self.warning + self.unknown == 0

    def summary(self):
        """The summary line of tsesim(1)'s run and status, without its newline:
        ``devices N success S failed F unknown U refused R pending P invalid I``."""
        return "devices %d success %d failed %d unknown %d refused %d pending %d invalid %d" % (
            self.devices,
            self.success,
            self.failed,
            self.unknown,
            self.refused,
            self.pending,
            self.invalid,
        )


class JobProgress(_Record):
    """What a job's progress callable is told (tsesim_job_submit(3), Progress).

    ``devices`` counts the job's valid devices; ``queued``, ``sending``,
    ``accepted``, ``unknown`` and ``refused`` its devices by the state of
    their chunk; ``chunks`` and ``chunks_done`` (accepted, unknown or
    refused) its chunks; ``bytes`` the request bytes this call sent.
    ``chunk`` is the chunk (from 0) that just changed to ``state``
    ("sending", "accepted", "unknown", "refused", "queued"), with its
    ``request_id`` when accepted and ``error`` why when unknown, refused or
    queued again; for the first and the periodic reports ``chunk`` is None,
    and so are ``state``, ``request_id`` and ``error``.
    """

    __slots__ = (
        "devices",
        "queued",
        "sending",
        "accepted",
        "unknown",
        "refused",
        "chunks",
        "chunks_done",
        "bytes",
        "chunk",
        "state",
        "request_id",
        "error",
    )

    @classmethod
    def _from_c(cls, p):
        return cls(
            devices=p.devices,
            queued=p.queued,
            sending=p.sending,
            accepted=p.accepted,
            unknown=p.unknown,
            refused=p.refused,
            chunks=p.chunks,
            chunks_done=p.chunks_done,
            bytes=p.bytes,
            chunk=None if p.chunk < 0 else p.chunk,
            state=_text(p.state),
            request_id=_text(p.request_id),
            error=_text(p.error),
        )


class DeviceStatus(_Record):
    """One row of a job as the tracker sees it (tsesim_job_devices(3)).

    ``line`` (1-based line of the device file); ``eid``, ``iccid``, ``imei``
    (None when empty); ``state``: "invalid", "queued", "unknown", "refused",
    "submitted", "warning", "success" or "failed"; ``request_id`` of its
    chunk; ``status`` as ThingSpace wrote it in the callback that decided
    the state; ``fault`` that callback's faultcode; ``error`` why a row is
    invalid or its chunk refused; ``callbacks`` distinct callbacks stored.
    """

    __slots__ = (
        "line",
        "eid",
        "iccid",
        "imei",
        "state",
        "request_id",
        "status",
        "fault",
        "error",
        "callbacks",
    )

    @classmethod
    def _from_c(cls, d):
        return cls(
            line=d.line,
            eid=_text(d.eid),
            iccid=_text(d.iccid),
            imei=_text(d.imei),
            state=_text(d.state),
            request_id=_text(d.request_id),
            status=_text(d.status),
            fault=_text(d.fault),
            error=_text(d.error),
            callbacks=d.callbacks,
        )


# ---- the journal ----


class _DeferSigint(object):
    """While C runs a loop that calls Python hooks on this thread, SIGINT
    only sets .pending, and the handler it replaced runs on exit.

    Python raises KeyboardInterrupt at the first bytecode it runs after the
    signal, which may be a hook's first line, outside its try, where ctypes
    would print the exception and swallow it.  Only the main thread gets
    signals, and only a Python-level handler (such as the default one that
    raises KeyboardInterrupt) is deferred."""

    def __init__(self):
        self.pending = None
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            old = signal.getsignal(signal.SIGINT)
            if callable(old):
                self._old = old
                signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        self.pending = (signum, frame)

    def __exit__(self, *exc):
        old, self._old = self._old, None
        if old is not None:
            signal.signal(signal.SIGINT, old)
            if self.pending is not None and exc[0] is None:
                old(*self.pending)  # the default handler raises KeyboardInterrupt here
        return False


class _SubmitHooks(object):
    """The C hooks of one submit call, kept referenced for the whole call.

    The first exception raised by the progress or the stop callable (or
    delivered there, such as KeyboardInterrupt) is logged, stops the job,
    and is raised again by submit once the C call has returned.
    """

    def __init__(self, progress, stop):
        self.progress = progress
        self.stop = stop
        self.error = None
        self.sigint = None  # the _DeferSigint of the call
        self.c_progress = PROGRESS_FN(self._on_progress) if progress is not None else PROGRESS_FN()
        # Always installed, so that a pending signal (Ctrl-C) is seen within a second.
        self.c_stop = STOP_FN(self._on_stop)

    def _failed(self, what, e):
        if self.error is None:
            self.error = e
            if isinstance(e, Exception):
                _log.error("job %s raised; stopping the job", what, exc_info=True)
            else:  # KeyboardInterrupt, SystemExit: the caller asked to stop
                _log.info("job stopped by %s", type(e).__name__)

    def _on_progress(self, p, payload):
        try:
            if self.error is None:
                self.progress(JobProgress._from_c(p.contents))
        except BaseException as e:  # never into C
            self._failed("progress callable", e)

    def _on_stop(self, payload):
        try:
            if self.error is not None or (self.sigint and self.sigint.pending):
                return 1
            return 1 if self.stop is not None and self.stop() else 0
        except BaseException as e:  # never into C
            self._failed("stop callable", e)
            return 1


class Journal(object):
    """A journal file (SQLite), opened or created with mode 0600.

    ``with tsesim.Journal(path) as journal:`` closes it at the end of the
    block; :meth:`close` does too.  ``journal.path`` is the path it was
    opened with (give the Journal, or that path, to :class:`tsesim.Listener`).
    Raises JournalError when the file cannot be opened or created, is not a
    journal, or was made by a newer library.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._ptr = None
        self._lock = threading.RLock()
        self._busy = None  # the thread ident inside submit, whose hooks must not change us
        out = c_void_p()
        err = _native.errbuf()
        rc = lib.tsesim_journal_open(byref(out), os.fsencode(self.path), err)
        if rc != _OK:
            _native.raise_for(rc, _text(err.value) or "")
        self._ptr = out.value

    # -- lifetime --

    def _handle(self):
        if not self._ptr:
            raise ValueError("the journal is closed")
        return self._ptr

    def _writable(self, what):
        if self._busy == threading.get_ident():
            raise RuntimeError(
                "journal.%s from a progress or stop callable of its own submit" % what
            )
        return self._handle()

    @property
    def closed(self):
        return not self._ptr

    def close(self):
        """Closes the journal; safe to call more than once."""
        with self._lock:
            if not self._ptr:
                return
            self._writable("close")
            ptr, self._ptr = self._ptr, None
            if ptr:
                lib.tsesim_journal_close(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            ptr, self._ptr = self._ptr, None
            if ptr:
                lib.tsesim_journal_close(ptr)
        except Exception:
            pass

    def __repr__(self):
        return "<tsesim.Journal %r%s>" % (self.path, " closed" if self.closed else "")

    def _raise(self, rc):
        _native.raise_for(rc, _text(lib.tsesim_journal_errmsg(self._ptr)) or "")

    # -- settings --

    def set(self, key, value):
        """Keeps an application's setting durably: key (1..200 bytes of
        printable text) set to value (str), or removed when value is None.
        Keys starting with "tsesim." are the library's.  The journal's mode
        0600 makes it fit for a secret."""
        k = _c_text("key", key, allow_none=False)
        v = _c_text("value", value)
        with self._lock:
            rc = lib.tsesim_journal_set(self._writable("set"), k, v)
            if rc != _OK:
                self._raise(rc)

    def get(self, key, default=None):
        """The value of a setting that set() kept, or default when it is not set."""
        k = _c_text("key", key, allow_none=False)
        out = c_void_p()
        with self._lock:
            rc = lib.tsesim_journal_get(self._handle(), k, byref(out))
            if rc != _OK:
                self._raise(rc)
        if not out.value:
            return default
        return _native.take_string(out)

    # -- jobs --

    def _job_options(self, rows, chunk_size):
        opts = _JobOptionsC()
        rc = lib.tsesim_job_options_init(byref(opts), JOB_OPTIONS_VERSION)
        if rc != _OK:
            _native.raise_for(rc, "tsesim_job_options_init")
        opts.chunk_size = _count_arg("chunk_size", chunk_size, 10000)
        if rows is not None:
            if not isinstance(rows, Rows):
                raise TypeError("rows: a tsesim.Rows (from read_devices) is required")
            opts.rows = rows._handle()
        return opts

    def record(self, job_name, request, rows=None, chunk_size=None):
        """Records the job as submit does before its first download, and
        sends nothing (tsesim_job_record(3)): a new job gets its rows and
        queued chunks; an existing one must hold the same devices, rows,
        account, plan and chunk size (None: what it recorded), else
        InvalidInput naming what differs."""
        name = _c_text("job_name", job_name, allow_none=False)
        opts = self._job_options(rows, chunk_size)
        req = _request_arg(request)
        with self._lock:
            rc = lib.tsesim_job_record(self._writable("record"), name, req, byref(opts))
            if rc != _OK:
                self._raise(rc)

    def submit(
        self,
        client,
        job_name,
        request,
        rows=None,
        chunk_size=None,
        in_flight=None,
        resend_unknown=False,
        progress=None,
        stop=None,
    ):
        """Submits request, of any size, as the job job_name (tsesim_job_submit(3)).

        Chunks of chunk_size devices (1..10000; None: 10000, or what the job
        recorded), up to in_flight downloads at once (None: 4), each chunk's
        state recorded in this journal before it is acted on.  Run it again
        with the same job name to send what is left: only queued chunks, and
        unknown ones with resend_unknown=True (they may be downloaded twice).
        rows: the :class:`Rows` that read_devices read request from, so that
        every row is recorded with its line (None: device i is line i + 1).

        progress: a callable taking a :class:`JobProgress`, called on this
        thread after each chunk changes state and about once a second.
        stop: a callable returning true to stop the job: no new chunk starts,
        chunks on the wire finish; asked before the first contact with
        ThingSpace and about once a second.  Neither may use this client
        (submit holds it: its calls would wait forever) or change this
        journal (RuntimeError); reading the journal, or using other handles,
        is fine.  An exception raised in either is logged, stops
        the job, and is raised here once the chunks on the wire are recorded.
        Ctrl-C (SIGINT, on the main thread) stops the job the same way, and
        KeyboardInterrupt is raised here; run it again to send the rest.

        Returns None when every chunk of the job is accepted.  Otherwise
        raises, in this order of precedence (the message sums the job up):
        InvalidInput, NoMemory or JournalError before anything was sent;
        AuthError; JournalError; Cancelled when stop said stop and chunks are
        left queued; RateLimited/TransportError (as the C code says: call
        again later); UnknownOutcomeError (a chunk is unknown: never resent
        blindly); ApiError (a chunk was refused).
        """
        name = _c_text("job_name", job_name, allow_none=False)
        if progress is not None and not callable(progress):
            raise TypeError("progress: a callable is required")
        if stop is not None and not callable(stop):
            raise TypeError("stop: a callable is required")
        opts = self._job_options(rows, chunk_size)
        opts.in_flight = _count_arg("in_flight", in_flight, 0xFFFFFFFF)
        opts.resend_unknown = 1 if resend_unknown else 0
        hooks = _SubmitHooks(progress, stop)
        opts.progress_fn = hooks.c_progress
        opts.stop_fn = hooks.c_stop
        if not hasattr(client, "_as_parameter_") or not hasattr(client, "download"):
            raise TypeError("submit: expected a tsesim.Client, got %s" % type(client).__name__)
        req = _request_arg(request)
        # The client serves one call at a time: hold its lock for the whole job.
        client_lock = getattr(client, "_lock", None) or _NoLock()
        with self._lock, client_lock:
            cli = client._as_parameter_  # ValueError when it is closed
            ptr = self._writable("submit")
            self._busy = threading.get_ident()
            try:
                with _DeferSigint() as hooks.sigint:  # Ctrl-C: stop, then KeyboardInterrupt
                    rc = lib.tsesim_job_submit(cli, ptr, name, req, byref(opts))
            finally:
                self._busy = None
            if hooks.error is not None:
                e, hooks.error = hooks.error, None
                raise e
            if rc != _OK:
                _native.raise_for(rc, None, cli)

    # -- the tracker --

    def count(self, job_name=None):
        """The job's :class:`JobCounts` now (job_name None: the journal's only job)."""
        name = _c_text("job_name", job_name)
        c = _JobCountsC()
        with self._lock:
            rc = lib.tsesim_job_count(self._handle(), name, byref(c))
            if rc != _OK:
                self._raise(rc)
        return JobCounts._from_c(c)

    def wait(self, job_name=None, timeout=None):
        """Waits until no device of the job is submitted, warning or unknown
        (each is final, or was never acted on), or until timeout seconds
        pass (None: no limit; 0: look once).  Returns (done, counts): done
        is False when the timeout passed first.  The listener that stores
        the callbacks may run in this process or in another one.  It waits
        in slices of half a second, so Ctrl-C interrupts it."""
        name = _c_text("job_name", job_name)
        if timeout is not None and timeout < 0:
            raise ValueError("timeout: must be None or >= 0")
        deadline = None if timeout is None else time.monotonic() + timeout
        c = _JobCountsC()
        while True:
            left = 0.5 if deadline is None else min(0.5, max(0.0, deadline - time.monotonic()))
            with self._lock:
                rc = lib.tsesim_job_wait(self._handle(), name, int(left * 1000), byref(c))
                if rc not in (_OK, _E_TIMEOUT):
                    self._raise(rc)
            if rc == _OK:
                return True, JobCounts._from_c(c)
            if deadline is not None and time.monotonic() >= deadline:
                return False, JobCounts._from_c(c)

    def devices(self, job_name=None):
        """Every row of the job as a list of :class:`DeviceStatus`, in the
        device file's order, from one consistent reading of the journal."""
        name = _c_text("job_name", job_name)
        out = []
        failed = []

        def each(d, payload):
            try:
                out.append(DeviceStatus._from_c(d.contents))
                return 0
            except BaseException as e:  # never into C: stop and raise below
                failed.append(e)
                return 1

        fn = DEVICE_FN(each)
        with self._lock, _DeferSigint():
            rc = lib.tsesim_job_devices(self._handle(), name, fn, None)
            if rc != _OK:
                self._raise(rc)
        if failed:
            raise failed[0]
        return out
