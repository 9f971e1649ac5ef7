"""The package's version, in one place: it matches the C library's TSESIM_VERSION_STR."""

__version__ = "0.2.0"
