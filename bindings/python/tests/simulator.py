"""What the package's tests share: tools/tsesim-sim over loopback, valid
device identifiers, and the environment tests/python.sh sets.

Not a test module (unittest's discovery loads test*.py only)."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

# The simulator's defaults (tsesim-sim(1)).
CLIENT_ID = "sim-key"
CLIENT_SECRET = "sim-secret"
USERNAME = "sim-user"
PASSWORD = "sim-pass"
ACCOUNT = "0000123456-00001"
PLAN = "M2M_4G"


def env(name):
    """An environment variable tests/python.sh sets; its absence is an error."""
    value = os.environ.get(name)
    if not value:
        raise RuntimeError("%s is not set: run the tests through tests/python.sh (make check)" % name)
    return value


def luhn(digits):
    """digits with their Luhn check digit appended."""
    total = 0
    double = True
    for ch in reversed(digits):
        d = int(ch)
        if double:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        double = not double
    return digits + str((10 - total % 10) % 10)


def eid(digits30):
    """30 digits with their ISO 7064 MOD 97-10 check digits appended."""
    r = int(digits30) % 97
    return digits30 + "%02d" % (98 - (r * 100) % 97)


def device(i):
    """Device i (0 <= i < 10**6): a valid (eid, iccid, imei), all distinct."""
    return (
        eid("89049032" + "%022d" % i),
        luhn("8901410" + "%012d" % i),
        luhn("35209900" + "%06d" % i),
    )


class Simulator:
    """tools/tsesim-sim on a free loopback port (--port 0 --port-file), with
    its files in a fresh directory; stopped and removed by close() or at the
    end of a with-block. args: further tsesim-sim options."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="tsesim-py-sim-")
        port_file = os.path.join(self.dir, "port")
        self._out = open(os.path.join(self.dir, "sim.out"), "wb")
        self.proc = subprocess.Popen(
            [env("TSESIM_SIM"), "--port", "0", "--port-file", port_file] + list(args),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and os.path.getsize(port_file) > 0):
            if self.proc.poll() is not None:
                output = self.output()
                self.close()
                raise RuntimeError("tsesim-sim exited with %s: %s" % (self.proc.returncode, output))
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("tsesim-sim did not start within 30 s")
            time.sleep(0.01)
        with open(port_file) as f:
            self.port = int(f.read())
        scheme = "https" if "--tls-cert" in args else "http"
        self.root = "%s://127.0.0.1:%d" % (scheme, self.port)
        self.base = self.root + "/api"

    def output(self):
        self._out.flush()
        with open(os.path.join(self.dir, "sim.out"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stats(self):
        """GET /_sim/stats, as a dict (plain HTTP simulators only)."""
        with urllib.request.urlopen(self.root + "/_sim/stats", timeout=30) as r:
            return json.loads(r.read())

    def client_args(self, **over):
        """Keyword arguments of a tsesim.Client for this simulator."""
        args = dict(base_url=self.base, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                    username=USERNAME, password=PASSWORD)
        args.update(over)
        return args

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def closed_port():
    """A loopback TCP port that nothing listens on (bound, then closed)."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 and localhost, and its key
    (openssl req, as tests/tt_sim.h makes them): (cert_path, key_path)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", key, "-out", cert],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return cert, key
