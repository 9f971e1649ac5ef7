"""The package installs as PYTHON.md says: `pip install ./bindings/python`
offline (--no-index) in a fresh virtual environment, through its own build
backend (standard library only), and the installed copy imports and works;
the wheel's RECORD lists every file with its sha256 and size."""

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

import tsesim

from simulator import env

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, **kw):
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    if done.returncode != 0:
        raise AssertionError("%s: exit %d\n%s" % (" ".join(args), done.returncode,
                                                  done.stdout.decode("utf-8", "replace")))
    return done.stdout.decode("utf-8", "replace")


class TestInstall(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tsesim-py-install-")
        # a copy: the source tree may be read-only (distcheck)
        self.src = os.path.join(self.tmp, "python")
        shutil.copytree(SOURCE, self.src, ignore=shutil.ignore_patterns("__pycache__"))
        for top, dirs, files in os.walk(self.src):  # distcheck's copies come read-only
            for name in dirs + files:
                path = os.path.join(top, name)
                os.chmod(path, os.stat(path).st_mode | 0o200)
        os.chmod(self.src, os.stat(self.src).st_mode | 0o200)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_pip_install_offline_in_a_fresh_venv(self):
        venv = os.path.join(self.tmp, "venv")
        run([sys.executable, "-m", "venv", venv])
        py = os.path.join(venv, "bin", "python")
        e = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        e.pop("PYTHONPATH", None)  # the installed copy, not the source tree
        run([py, "-m", "pip", "install", "--no-index", self.src], env=e, cwd=self.tmp)
        out = run([py, "-c", "import tsesim, json; print(tsesim.__file__); "
                   "r = tsesim.Request('a'); r.add_device('89049032000001000000000000000074', "
                   "imei='352099001761481'); print(len(json.loads(r.to_json())['devices'])); "
                   "print(tsesim.__version__, tsesim.library_version())"],
                  env=dict(e, TSESIM_LIBRARY=env("TSESIM_LIBRARY")), cwd=self.tmp)
        where, n, versions = out.split("\n")[:3]
        self.assertTrue(where.startswith(venv), where)
        self.assertEqual(n, "1")
        self.assertEqual(versions, "%s %s" % (tsesim.__version__, tsesim.__version__))
        out = run([py, "-m", "pip", "uninstall", "-y", "tsesim"], env=e, cwd=self.tmp)
        self.assertIn("Successfully uninstalled tsesim-" + tsesim.__version__, out)

    def test_wheel_record(self):
        sys.path.insert(0, self.src)
        try:
            import _tsesim_backend as backend
        finally:
            sys.path.remove(self.src)
        self.assertEqual(backend.get_requires_for_build_wheel(), [])
        self.assertEqual(backend.get_requires_for_build_sdist(), [])
        out = os.path.join(self.tmp, "dist")
        os.mkdir(out)
        name = backend.build_wheel(out)
        self.assertEqual(name, "tsesim-%s-py3-none-any.whl" % tsesim.__version__)
        dist_info = "tsesim-%s.dist-info" % tsesim.__version__
        with zipfile.ZipFile(os.path.join(out, name)) as z:
            names = set(z.namelist())
            record = z.read(dist_info + "/RECORD").decode().splitlines()
            listed = set()
            for line in record:
                path, digest, size = line.rsplit(",", 2)
                listed.add(path)
                if path == dist_info + "/RECORD":
                    self.assertEqual((digest, size), ("", ""))
                    continue
                data = z.read(path)
                want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                self.assertEqual(digest, "sha256=" + want.decode(), path)
                self.assertEqual(int(size), len(data), path)
            self.assertEqual(listed, names)
            modules = sorted(n for n in names if n.startswith("tsesim/"))
            self.assertIn("tsesim/__init__.py", modules)
            self.assertIn("tsesim/_native.py", modules)
            meta = z.read(dist_info + "/METADATA").decode()
        self.assertIn("Name: tsesim\n", meta)
        self.assertIn("Version: %s\n" % tsesim.__version__, meta)
        self.assertIn("Requires-Python: >=3.9\n", meta)
        sdist = backend.build_sdist(out)
        self.assertEqual(sdist, "tsesim-%s.tar.gz" % tsesim.__version__)


if __name__ == "__main__":
    unittest.main()
