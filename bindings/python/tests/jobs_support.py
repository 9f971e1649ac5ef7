"""What test_jobs.py and test_listener.py share: the simulator, the paths.

The runner (tests/python.sh) gives TSESIM_LIBRARY (the in-tree library),
TSESIM_SIM (tools/tsesim-sim) and TSESIM_SRCDIR; a missing one is an error,
never a skip.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("TSESIM_SRCDIR") or os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PACKAGE_DIR = os.path.abspath(os.path.join(HERE, ".."))
if PACKAGE_DIR not in sys.path:
    sys.path.insert(0, PACKAGE_DIR)

ACCOUNT = "0000123456-00001"  # the simulator's account
DEVICES_CSV = os.path.join(SRCDIR, "examples", "devices.csv")
SAMPLE_CALLBACK = os.path.join(SRCDIR, "examples", "sample_callback.json")
CREDENTIALS = dict(client_id="sim-key", client_secret="sim-secret", username="sim-user",
                   password="sim-pass")


def sim_path():
    path = os.environ.get("TSESIM_SIM")
    if not path:
        raise RuntimeError("TSESIM_SIM is not set: run these tests through tests/python.sh")
    return path


class Sim(object):
    """tools/tsesim-sim on a free loopback port, as tests/sim_start.sh starts it."""

    def __init__(self, *options):
        self.dir = tempfile.mkdtemp(prefix="tsesim-py-")
        port_file = os.path.join(self.dir, "port")
        self.out = open(os.path.join(self.dir, "sim.out"), "wb")
        self.proc = subprocess.Popen(
            [sim_path(), "--port", "0", "--port-file", port_file] + list(options),
            stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not (os.path.exists(port_file) and os.path.getsize(port_file)):
            if self.proc.poll() is not None:
                self.close()
                raise RuntimeError("tsesim-sim exited: %s" % self.log())
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("tsesim-sim did not start")
            time.sleep(0.01)
        with open(port_file) as f:
            self.port = int(f.read())
        self.root = "http://127.0.0.1:%d" % self.port
        self.base_url = self.root + "/api"

    def log(self):
        with open(os.path.join(self.dir, "sim.out"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stats(self):
        with urllib.request.urlopen(self.root + "/_sim/stats", timeout=10) as r:
            return json.loads(r.read().decode("utf-8"))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def post(url, body, username=None, password=None, timeout=10):
    """POSTs a callback body the way ThingSpace does; returns (status, body)."""
    if username is not None:
        data = json.loads(body)
        data["username"], data["password"] = username, password
        body = json.dumps(data).encode("utf-8")
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def layout_lines():
    """{struct: (size, {field: offset})} from the TSESIM_LAYOUT program, or None."""
    prog = os.environ.get("TSESIM_LAYOUT")
    if not prog:
        return None
    out = subprocess.run([prog], stdout=subprocess.PIPE, check=True).stdout.decode("ascii")
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            continue
        fields = {}
        for p in parts[2:]:
            k, v = p.split("=")
            fields[k] = int(v)
        found[parts[0]] = (int(parts[1]), fields)
    return found
