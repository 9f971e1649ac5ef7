"""tsesim: Verizon ThingSpace Global eSIM profile download, over libtsesim.

A pure-Python package: ctypes over the installed libtsesim.so.0 (found
through TSESIM_LIBRARY, pkg-config's libdir of thingspace-esim, or the
system's search path). Every error is a tsesim.Error; see tsesim.errors.
"""

from ._version import __version__
from ._native import library_version
from .errors import *  # noqa: F401,F403 (every error class: errors.__all__)
from .errors import __all__ as _errors_all
from .ids import validate_id
from .request import Request
from .client import Client
from .callback import Callback, Profile, parse_callback

__all__ = _errors_all + [
    "__version__",
    "library_version",
    "validate_id",
    "Request",
    "Client",
    "Callback",
    "Profile",
    "parse_callback",
]

# ---- jobs, journal, listener (pyjobs) ----
from .journal import *  # noqa
from .listener import *  # noqa
from . import journal as _journal, listener as _listener

__all__ += _journal.__all__ + _listener.__all__
