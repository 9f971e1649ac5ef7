"""A PEP 517 (and PEP 660) build backend for the tsesim package, in the
standard library only.

pip builds the package with it in an isolated environment that holds
nothing (pyproject.toml: requires = [], backend-path = ["."]), so that
`pip install ./bindings/python` works offline in a fresh virtual environment
on Python 3.9 to 3.13: the setuptools that some venvs bundle cannot build a
wheel without the `wheel` package, and 3.12+ venvs have none at all.

The wheel (py3-none-any, pure Python) holds tsesim/*.py and
tsesim-VERSION.dist-info/{METADATA,WHEEL,RECORD}; RECORD lists every file
with its sha256 (urlsafe base64, no padding) and size, as the wheel format
(PEP 427, PEP 376) says. Name, summary and Python version come from
pyproject.toml's [project] table; the version from tsesim/_version.py, its
one place. Entries are sorted and dated SOURCE_DATE_EPOCH (or 1980-01-01),
so that two builds of one tree are byte for byte the same.
"""

import base64
import gzip
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

__all__ = [
    "build_wheel",
    "build_sdist",
    "build_editable",
    "get_requires_for_build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_editable",
    "prepare_metadata_for_build_wheel",
    "prepare_metadata_for_build_editable",
]

ROOT = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "tsesim"
TAG = "py3-none-any"
# What the sdist holds besides the package: the files that build it, and its tests.
SDIST_FILES = ("pyproject.toml", "_tsesim_backend.py", "README.md")
SDIST_DIRS = ("tsesim", "tests")


def _version():
    with open(os.path.join(ROOT, PACKAGE, "_version.py"), encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([0-9]+\.[0-9]+\.[0-9]+)"$', f.read(), re.M)
    if not m:
        raise RuntimeError("_tsesim_backend: no __version__ in tsesim/_version.py")
    return m.group(1)


def _project():
    """The [project] table's string values (a TOML subset: key = "text")."""
    out = {}
    section = None
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
                continue
            m = re.match(r'^([A-Za-z-]+)\s*=\s*"([^"]*)"$', line)
            if section == "[project]" and m:
                out[m.group(1)] = m.group(2)
    return out


def _metadata():
    p = _project()
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % p.get("name", PACKAGE),
        "Version: %s" % _version(),
        "Summary: %s" % p.get("description", ""),
        "Requires-Python: %s" % p.get("requires-python", ">=3.9"),
    ]
    readme = p.get("readme")
    body = ""
    if readme and os.path.exists(os.path.join(ROOT, readme)):
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, readme), encoding="utf-8") as f:
            body = f.read()
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def _dist_info():
    return "%s-%s.dist-info" % (PACKAGE, _version())


def _wheel_text():
    return (
        "Wheel-Version: 1.0\n"
        "Generator: _tsesim_backend %s\n"
        "Root-Is-Purelib: true\n"
        "Tag: %s\n" % (_version(), TAG)
    ).encode("ascii")


def _date():
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    return time.gmtime(max(epoch, 315532800))[:6]


def _package_files():
    """(archive name, path) of every module of the package, sorted."""
    out = []
    base = os.path.join(ROOT, PACKAGE)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                out.append((os.path.relpath(path, ROOT).replace(os.sep, "/"), path))
    return sorted(out)


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "%s,sha256=%s,%d" % (name, digest.decode("ascii"), len(data))


def _write_wheel(wheel_directory, entries):
    """entries: (archive name, bytes). Adds the dist-info and RECORD."""
    dist_info = _dist_info()
    entries = list(entries) + [
        (dist_info + "/METADATA", _metadata()),
        (dist_info + "/WHEEL", _wheel_text()),
    ]
    record = [_record_line(n, d) for n, d in entries]
    record.append(dist_info + "/RECORD,,")
    entries.append((dist_info + "/RECORD", ("\n".join(record) + "\n").encode("utf-8")))
    filename = "%s-%s-%s.whl" % (PACKAGE, _version(), TAG)
    path = os.path.join(wheel_directory, filename)
    tmp = path + ".part"
    date = _date()
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=date)
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    os.replace(tmp, path)
    return filename


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- PEP 517


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info = _dist_info()
    d = os.path.join(metadata_directory, dist_info)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "wb") as f:
        f.write(_metadata())
    with open(os.path.join(d, "WHEEL"), "wb") as f:
        f.write(_wheel_text())
    return dist_info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [(n, _read(p)) for n, p in _package_files()])


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 660: a wheel whose .pth puts this directory on sys.path."""
    pth = (ROOT + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [("%s_editable.pth" % PACKAGE, pth)])


def build_sdist(sdist_directory, config_settings=None):
    """tsesim-VERSION.tar.gz: the package, its tests, the files that build it
    and PKG-INFO, under tsesim-VERSION/."""
    top = "%s-%s" % (PACKAGE, _version())
    files = []
    for name in SDIST_FILES:
        if os.path.exists(os.path.join(ROOT, name)):
            files.append((name, os.path.join(ROOT, name)))
    for d in SDIST_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, d)):
            dirnames[:] = sorted(x for x in dirnames if x != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = os.path.join(dirpath, name)
                files.append((os.path.relpath(path, ROOT).replace(os.sep, "/"), path))
    entries = sorted((n, _read(p)) for n, p in files) + [("PKG-INFO", _metadata())]
    mtime = max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)
    filename = top + ".tar.gz"
    path = os.path.join(sdist_directory, filename)
    tmp = path + ".part"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename=filename, mode="wb", fileobj=raw, mtime=mtime) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name, data in entries:
                    info = tarfile.TarInfo("%s/%s" % (top, name))
                    info.size = len(data)
                    info.mtime = mtime
                    info.mode = 0o644
                    info.uname = info.gname = ""
                    tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)
    return filename
