"""Drop-in tests with the official SDKs: a real `antix serve` in front of `antix mock-provider`,
on a fresh data folder, set up through the CLI the way a script would.

The binary is target/release/antix (built by `cargo leptos build --release`), or $ANTIX_BIN.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("ANTIX_BIN", str(ROOT / "target" / "release" / "antix"))

# Secrets planted for the canary checks: none may ever show up in the database's stored traces
# or in the gateway's logs.
ORG_SECRET = "sk-org-canary-7b1e29d44f"
BYOK_OPENAI = "sk-proj-byok-canary-33aa"
BYOK_GEMINI = "AIza-byok-canary-91c2"
OAUTH_TOKEN = "sk-ant-oat01-oauth-canary-55dd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Gateway:
    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="antix-sdk-")
        self.mock_port = free_port()
        self.port = free_port()
        self.log_path = pathlib.Path(self.data) / "gateway.log"
        mock_url = f"http://127.0.0.1:{self.mock_port}"
        self.env = {
            **os.environ,
            "ANTIX_LISTEN": f"127.0.0.1:{self.port}",
            "ANTIX_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "DATABASE_URL": f"sqlite://{self.data}/antix.db",
            "ANTIX_DATA_DIR": self.data,
            "ANTIX_MASTER_KEY": "11" * 32,
            "ANTIX_CONFIG": "",
            "ANTIX_LOG": "debug",
            "ANTIX_LOG_FORMAT": "json",
            "ANTIX_UPSTREAM_OPENAI": mock_url,
            "ANTIX_UPSTREAM_ANTHROPIC": mock_url,
            "ANTIX_UPSTREAM_GEMINI": mock_url,
            "ANTIX_IDLE_TIMEOUT_MS": "2000",
        }
        self.mock = subprocess.Popen(
            [BIN, "mock-provider", "--listen", f"127.0.0.1:{self.mock_port}"],
            stdout=subprocess.DEVNULL,
        )
        wait_http(f"{mock_url}/_mock/stats")
        self.cli("admin", "create", "--email", "ada@example.com", "--org", "Acme", "--name", "Ada",
                 stdin="a long enough password")
        for provider in ("openai", "anthropic", "gemini"):
            self.cli("credential", "set", "--as", "ada@example.com", "--provider", provider, stdin=ORG_SECRET)
        created = json.loads(self.cli("endpoint", "create", "--as", "ada@example.com", "--name", "sdk",
                                      "--shared", "--json"))
        self.endpoint = created["id"]
        self.urls = created["urls"]
        self.vk = json.loads(self.cli("key", "create", "--as", "ada@example.com", "--name", "sdk", "--json"))["key"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BIN, "serve"], env=self.env, stdout=self.log, stderr=self.log)
        wait_http(f"http://127.0.0.1:{self.port}/healthz")

    def cli(self, *args, stdin=None):
        r = subprocess.run([BIN, *args], env=self.env, input=stdin, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"antix {' '.join(args)} failed: {r.stderr}")
        return r.stdout

    def new_endpoint(self, name):
        created = json.loads(self.cli("endpoint", "create", "--as", "ada@example.com", "--name", name,
                                      "--shared", "--json"))
        return created

    def traces(self, endpoint=None, limit=50):
        out = self.cli("traces", "list", "--endpoint", endpoint or self.endpoint, "--limit", str(limit))
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def newest_id(self, endpoint=None):
        t = self.traces(endpoint, limit=1)
        return t[0]["id"] if t else None

    def wait_new_trace(self, after, endpoint=None, timeout=10):
        """The newest trace once it is not `after` (the recorder writes off the request path)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.traces(endpoint, limit=1)
            if t and t[0]["id"] != after:
                return self.trace(t[0]["id"])
            time.sleep(0.05)
        raise AssertionError("no new trace was recorded")

    def trace(self, trace_id):
        return json.loads(self.cli("traces", "get", trace_id))

    def mock_stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.mock_port}/_mock/stats") as r:
            return json.load(r)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        finally:
            self.mock.terminate()
            self.log.close()


@pytest.fixture(scope="session")
def gw():
    g = Gateway()
    yield g
    g.stop()
    # Canaries: no credential the tests used may appear in the gateway's logs.
    logs = g.log_path.read_text()
    for secret in (ORG_SECRET, BYOK_OPENAI, BYOK_GEMINI, OAUTH_TOKEN, g.vk):
        assert secret not in logs, f"a credential leaked into the logs: {secret[:12]}…"
    for line in logs.splitlines():
        json.loads(line)  # one JSON object per line, never a forged line


class TraceWatch:
    """`with watch(gw) as t:` runs a call and then holds its trace in `t.trace`."""

    def __init__(self, gw, endpoint=None):
        self.gw = gw
        self.endpoint = endpoint
        self.trace = None

    def __enter__(self):
        # Let traces of earlier calls land first (the recorder writes in batches every 50 ms),
        # so the next new trace is this call's.
        self.before = self.gw.newest_id(self.endpoint)
        while True:
            time.sleep(0.15)
            now = self.gw.newest_id(self.endpoint)
            if now == self.before:
                break
            self.before = now
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.trace = self.gw.wait_new_trace(self.before, self.endpoint)
        return False


@pytest.fixture
def watch(gw):
    return lambda endpoint=None: TraceWatch(gw, endpoint)


def assert_no_secrets(trace, *secrets):
    text = json.dumps(trace)
    for s in secrets:
        assert s not in text, f"secret stored in trace {trace['id']}"
