"""Fixtures of the binding tests: a `ronde node` process (the workspace's
binary, run as a mailbox host) and a node started through the Python
bindings, both on 127.0.0.1, both following the same areas.

Paths come from the environment that `run.sh` sets: RONDE_BIN (the
`ronde` binary) and RONDE_PY (the folder with the generated `ronde.py`
and the library beside it).
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.environ["RONDE_PY"])

import ronde  # noqa: E402  (the generated bindings)

# Where both people are: the 13th arrondissement of Paris.
LAT, LON = 48.8156, 2.3844
# Low proof of work for both nodes (the CLI's test knob).
DIFFICULTY = 8
# Deadlines of the eventually-style waits: generous, the machine is shared.
DEADLINE = 90.0

# Every listener handle a test made: stopped and waited for before the
# interpreter exits, so that no Rust thread calls into Python (to release
# a listener) while Python shuts down.
HANDLES = []


def keep(handle):
    HANDLES.append(handle)
    return handle


async def eventually(check, what, deadline=DEADLINE):
    """Await `check()` (sync or async) until it returns a truthy value."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        try:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - shown if it never succeeds
            last = e
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


class CliNode:
    """A `ronde node` process and a client of its local HTTP API."""

    def __init__(self, binary, data_dir, role=("--mailbox-host", "--push-allow-local")):
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [
                binary, "node",
                "--data-dir", data_dir,
                # Both, as relays and `ronde node` do by default: the
                # library speaks TCP only and must pick that one.
                "--listen", "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1",
                "--api", "127.0.0.1:0",
                "--no-mdns",
                "--pow-difficulty", str(DIFFICULTY),
                "--at", f"{LAT},{LON}",
                *role,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.addrs = []
        self.api = None
        end = time.monotonic() + DEADLINE
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("/ip4/"):
                self.addrs.append(line)
            m = re.match(r"api: (http://\S+)", line)
            if m:
                self.api = m.group(1)
            if line.startswith("Press Ctrl-C") or time.monotonic() > end:
                break
        if not self.addrs or not self.api:
            self.stop()
            raise RuntimeError("`ronde node` did not print its addresses")
        self.peer_id = self.addrs[0].rsplit("/p2p/", 1)[1]
        # Its TCP address (the QUIC one may be printed first).
        self.tcp = next((a for a in self.addrs if "/tcp/" in a), None)
        if self.tcp is None:
            self.stop()
            raise RuntimeError("`ronde node` did not print a TCP address")
        with open(os.path.join(data_dir, "api-token")) as f:
            self.token = f.read().strip()

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e.code} {e.read()!r}") from None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="ronde-ffi-") as d:
        yield d


@pytest.fixture(scope="session")
def cli(workdir):
    node = CliNode(os.environ["RONDE_BIN"], os.path.join(workdir, "cli"))
    yield node
    node.stop()


def settings(data_dir, cli, **kw):
    base = dict(
        data_dir=data_dir,
        listen=["/ip4/127.0.0.1/tcp/0"],
        # Every address it printed, QUIC too: the library skips that one.
        bootstrap=list(cli.addrs),
        relays=[],
        mailbox_peers=[cli.tcp],
        city_keys=[],
        location=ronde.Position(lat=LAT, lon=LON),
        mdns=False,
        pow_difficulty=DIFFICULTY,
        fast_timers=True,
    )
    base.update(kw)
    return ronde.NodeSettings(**base)


@pytest.fixture(scope="session")
def phone(workdir, cli):
    """The node in the app, through the bindings."""
    node = asyncio.run(ronde.start_node(settings(os.path.join(workdir, "phone"), cli)))
    yield node
    try:
        asyncio.run(node.stop())
    except ronde.RondeError.Stopped:
        pass
    for h in HANDLES:
        h.cancel()
    end = time.monotonic() + DEADLINE
    while not all(h.is_finished() for h in HANDLES) and time.monotonic() < end:
        time.sleep(0.05)
    HANDLES.clear()
