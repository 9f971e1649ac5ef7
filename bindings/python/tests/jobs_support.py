"""What test_jobs.py and test_listener.py share beyond simulator.py: the
example files and a callback POST as ThingSpace sends it.

Not a test module (unittest's discovery loads test*.py only)."""

import json
import os
import urllib.error
import urllib.request

from simulator import ACCOUNT, CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, Simulator, env

SRCDIR = env("TSESIM_SRCDIR")
PACKAGE_DIR = os.path.join(SRCDIR, "bindings", "python")
DEVICES_CSV = os.path.join(SRCDIR, "examples", "devices.csv")
SAMPLE_CALLBACK = os.path.join(SRCDIR, "examples", "sample_callback.json")
CREDENTIALS = dict(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, username=USERNAME,
                   password=PASSWORD)
Sim = Simulator

__all__ = ["ACCOUNT", "CREDENTIALS", "DEVICES_CSV", "PACKAGE_DIR", "SAMPLE_CALLBACK", "SRCDIR",
           "Sim", "env", "post"]


def post(url, body, username=None, password=None, timeout=10):
    """POSTs a callback body as ThingSpace does, echoing username and
    password when given; returns (status, body)."""
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
