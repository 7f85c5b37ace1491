"""Shared machinery of the reliability harness: processes (gateway, mock provider, fault proxy,
hostile upstream), template databases, trace counting straight from SQLite or Postgres, RSS
sampling with a safety guard, canary scanning, and small load loops."""

import asyncio
import base64
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import http1  # noqa: E402
from faultproxy import Control  # noqa: E402

MASTER_KEY = "5a" * 32
ADMIN_EMAIL = "admin@rel.test"
VICTIM_EMAIL = "victim@rel.test"
MiB = 1024 * 1024


def log(msg):
    print(f"[reliability {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_ms():
    return int(time.time() * 1000)


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]


def rss_mib(pid, field="VmRSS"):
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def established(port):
    """Server-side ESTABLISHED TCP connections on a local port (from /proc/net/tcp and tcp6)."""
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(f).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 3 and parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                n += 1
    return n


def hex_of(u):
    return uuid.UUID(str(u)).hex


# ---------------------------------------------------------------------------------------------
# Databases


class SqliteDB:
    kind = "sqlite"

    def __init__(self, path):
        self.path = pathlib.Path(path)

    @property
    def url(self):
        return f"sqlite://{self.path}"

    def query(self, sql, params=()):
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def execute(self, sql, params=()):
        con = sqlite3.connect(self.path, timeout=10)
        try:
            con.execute(sql, params)
            con.commit()
        finally:
            con.close()

    def lit_uuid(self, u):
        return f"X'{hex_of(u)}'"

    def lit_bool(self, b):
        return "1" if b else "0"

    def trace_ids(self, where="1=1"):
        return {str(uuid.UUID(bytes=bytes(r[0]))) for r in self.query(f"SELECT id FROM traces WHERE {where}")}

    def trace_rows(self, cols, where="1=1"):
        rows = self.query(f"SELECT id, {cols} FROM traces WHERE {where}")
        return {str(uuid.UUID(bytes=bytes(r[0]))): r[1:] for r in rows}

    def id_expr(self, col):
        return col

    def bodies(self, limit_bytes=512 * MiB):
        """(trace id, column, raw bytes) of stored bodies, newest first, up to a total size."""
        total = 0
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            cur = con.execute("SELECT trace_id, request_body, response_body, response_assembled "
                              "FROM trace_bodies ORDER BY trace_id DESC")
            for row in cur:
                for col, blob in zip(("request", "response", "assembled"), row[1:]):
                    if blob:
                        total += len(blob)
                        yield str(uuid.UUID(bytes=bytes(row[0]))), col, bytes(blob)
                if total > limit_bytes:
                    return
        finally:
            con.close()

    def request_headers(self):
        return [r[0] for r in self.query("SELECT request_headers FROM trace_bodies")]

    def raw_files(self):
        return [p for p in self.path.parent.glob(self.path.name + "*") if p.is_file()]


class PgDB:
    kind = "postgres"

    def __init__(self, server_url, name):
        self.server_url = server_url.rstrip("/")
        base = self.server_url.rsplit("/", 1)[0]
        self.base = base
        self.name = name

    @property
    def url(self):
        return f"{self.base}/{self.name}"

    def url_via(self, port):
        """This database reached through a proxy on `port` (TLS off: the fault proxy reads it)."""
        from urllib.parse import urlsplit, urlunsplit
        u = urlsplit(self.url)
        userinfo = u.netloc.rpartition("@")[0]
        return urlunsplit((u.scheme, (userinfo + "@" if userinfo else "") + f"127.0.0.1:{port}", u.path,
                           "sslmode=disable", ""))

    def _psql(self, sql, db=None):
        out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\x1f", "-R", "\x1e",
                              "-P", "null=\\N", db or self.url, "-c", sql],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()[:500]}")
        text = out.stdout
        if not text.strip("\x1e\n"):
            return []
        rows = []
        for rec in text.rstrip("\n").split("\x1e"):
            if rec == "":
                continue
            rows.append(tuple(None if f == "\\N" else f for f in rec.split("\x1f")))
        return rows

    def query(self, sql, params=()):
        assert not params
        return self._psql(sql)

    def execute(self, sql, params=()):
        assert not params
        self._psql(sql)

    def lit_uuid(self, u):
        return f"'{uuid.UUID(str(u))}'::uuid"

    def lit_bool(self, b):
        return "true" if b else "false"

    def trace_ids(self, where="true"):
        where = where.replace("1=1", "true")
        return {r[0] for r in self._psql(f"SELECT id::text FROM traces WHERE {where}")}

    def trace_rows(self, cols, where="true"):
        where = where.replace("1=1", "true")
        rows = self._psql(f"SELECT id::text, {cols} FROM traces WHERE {where}")
        return {r[0]: tuple(conv(x) for x in r[1:]) for r in rows}

    def bodies(self, limit_bytes=512 * MiB):
        rows = self._psql("SELECT trace_id::text, encode(request_body,'hex'), encode(response_body,'hex'), "
                          "encode(response_assembled,'hex') FROM trace_bodies ORDER BY trace_id DESC LIMIT 20000")
        total = 0
        for r in rows:
            for col, h in zip(("request", "response", "assembled"), r[1:]):
                if h:
                    b = bytes.fromhex(h)
                    total += len(b)
                    yield r[0], col, b
            if total > limit_bytes:
                return

    def request_headers(self):
        return [r[0] for r in self._psql("SELECT request_headers FROM trace_bodies")]

    def dump(self, path):
        with open(path, "wb") as f:
            subprocess.run(["pg_dump", "--data-only", "--no-owner", self.url], stdout=f,
                           stderr=subprocess.DEVNULL, timeout=300)
        return path


def conv(x):
    if x is None:
        return None
    if x in ("t", "f"):
        return x == "t"
    try:
        return int(x)
    except ValueError:
        return x


class PgServer:
    """The Postgres server the harness makes its databases on."""

    def __init__(self, url):
        self.url = url
        self.made = []

    def reachable(self):
        try:
            out = subprocess.run(["psql", "-X", "-At", self.url, "-c", "SELECT 1"], capture_output=True,
                                 text=True, timeout=10)
            return out.returncode == 0, out.stderr.strip()[:200]
        except Exception as e:  # noqa: BLE001
            return False, str(e)

    def admin(self, sql):
        out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.url, "-c", sql],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()[:500]}")

    def create(self, name, template=None):
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.made.append(name)
        return PgDB(self.url, name)

    def drop(self, name):
        try:
            self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as e:  # noqa: BLE001
            log(f"could not drop database {name}: {e}")
        if name in self.made:
            self.made.remove(name)

    def drop_all(self):
        for name in list(reversed(self.made)):
            self.drop(name)


# ---------------------------------------------------------------------------------------------
# Processes


def _child_setup():
    # Its own process group (signals aimed at the harness do not hit it first), and killed
    # with the harness if the harness itself dies without cleaning up (SIGKILL).
    os.setsid()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


class Procs:
    """Every process the harness starts, so all of them can be stopped whatever happens."""

    def __init__(self):
        self.items = []

    def start(self, cmd, **kw):
        p = subprocess.Popen(cmd, preexec_fn=_child_setup, **kw)
        self.items.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)
        if p in self.items:
            self.items.remove(p)

    def stop_all(self):
        for p in list(reversed(self.items)):
            try:
                self.stop(p, timeout=5)
            except Exception:  # noqa: BLE001
                pass


class RssWatch(threading.Thread):
    """Samples the RSS of watched processes every 20 ms; SIGKILLs one that passes the guard (so a
    runaway gateway cannot take the machine, and the compiler next to it, down)."""

    def __init__(self, guard_mib):
        super().__init__(daemon=True)
        self.guard = guard_mib
        self.watched = {}  # pid -> {"peak", "tripped"}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def watch(self, pid):
        with self.lock:
            self.watched[pid] = {"peak": 0.0, "tripped": None}

    def set_guard(self, pid, mib):
        """A tighter guard for one process (a case that has failed past this point anyway)."""
        with self.lock:
            if pid in self.watched:
                self.watched[pid]["guard"] = min(mib, self.guard)

    def unwatch(self, pid):
        with self.lock:
            self.watched.pop(pid, None)

    def reset_peak(self, pid):
        with self.lock:
            if pid in self.watched:
                self.watched[pid]["peak"] = rss_mib(pid)

    def peak(self, pid):
        with self.lock:
            return self.watched.get(pid, {}).get("peak", 0.0)

    def tripped(self, pid):
        with self.lock:
            return self.watched.get(pid, {}).get("tripped")

    def run(self):
        while not self.stopped.is_set():
            with self.lock:
                pids = list(self.watched)
            for pid in pids:
                r = rss_mib(pid)
                with self.lock:
                    w = self.watched.get(pid)
                    if w is None:
                        continue
                    w["peak"] = max(w["peak"], r)
                    if r > w.get("guard", self.guard) and not w["tripped"]:
                        w["tripped"] = r
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        log(f"RSS guard: gateway {pid} at {r:.0f} MiB > {w.get('guard', self.guard):.0f} MiB, killed")
            time.sleep(0.02)


class Gateway:
    def __init__(self, env, case, name, db, upstreams=None, extra=None, data_dir=None, port=None):
        self.env_ = env
        self.case = case
        self.name = name
        self.db = db
        self.port = port or free_port()
        self.data_dir = pathlib.Path(data_dir or case.dir / name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.upstreams = upstreams or {}
        self.extra = extra or {}
        self.proc = None
        self.logs = []
        self.starts = 0

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def environ(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTIX_") and k != "DATABASE_URL"}
        env.update({
            "ANTIX_LISTEN": f"127.0.0.1:{self.port}",
            "ANTIX_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "DATABASE_URL": self.db_url(),
            "ANTIX_DATA_DIR": str(self.data_dir),
            "ANTIX_MASTER_KEY": MASTER_KEY,
            "ANTIX_CONFIG": "",
            "ANTIX_LOG": "info",
            "ANTIX_LOG_FORMAT": "json",
        })
        site = ROOT / "target" / "site"
        if site.is_dir():
            env["LEPTOS_SITE_ROOT"] = str(site)
        for prov, url in self.upstreams.items():
            env[f"ANTIX_UPSTREAM_{prov.upper()}"] = url
        env.update({k: str(v) for k, v in self.extra.items()})
        return env

    def db_url(self):
        return self.extra.get("DATABASE_URL") or self.db.url

    def start(self, wait=True, timeout=30):
        self.starts += 1
        out = self.data_dir / f"gateway.{self.starts}.log"
        self.logs.append(out)
        f = open(out, "wb")
        self.proc = self.env_.procs.start([str(self.env_.bin), "serve"], env=self.environ(), cwd=self.data_dir,
                                          stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        f.close()
        self.env_.rss.watch(self.proc.pid)
        self.started_at = time.monotonic()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway {self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    s.settimeout(5)
                    if s.recv(12).startswith(b"HTTP/1.1"):
                        return
            except OSError:
                pass
            time.sleep(0.03)
        raise RuntimeError(f"gateway {self.name} not ready after {timeout}s: {self.log_tail()}")

    def log_tail(self, n=1500):
        try:
            return self.logs[-1].read_text(errors="replace")[-n:]
        except (OSError, IndexError):
            return ""

    def log_text(self):
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def rss(self):
        return rss_mib(self.pid) if self.alive() else 0.0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the gateway and waits; returns (exit code, seconds to exit) (None on timeout)."""
        if not self.proc:
            return None, 0.0
        t0 = time.monotonic()
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.env_.procs.stop(self.proc, signal.SIGKILL)
            return None, time.monotonic() - t0
        if self.proc in self.env_.procs.items:
            self.env_.procs.items.remove(self.proc)
        return self.proc.returncode, time.monotonic() - t0

    def kill(self):
        return self.stop(signal.SIGKILL, timeout=10)

    async def health(self):
        r = await http1.request("127.0.0.1", self.port, "GET", "/healthz", timeout=5)
        try:
            return r.status, json.loads(r.body) if r.body else {}
        except ValueError:
            return r.status, {}

    def spool_dir(self):
        return self.data_dir / "spool"

    def spool_bytes(self):
        d = self.spool_dir()
        if not d.is_dir():
            return 0, 0
        files = [p for p in d.iterdir() if p.is_file()]
        return len(files), sum(p.stat().st_size for p in files if p.exists())


# ---------------------------------------------------------------------------------------------
# The run's shared resources


class Env:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.procs = Procs()
        self.rss = RssWatch(args.rss_guard_mb)
        self.rss.start()
        self.tmp = pathlib.Path(args.tmp) if args.tmp else pathlib.Path(
            __import__("tempfile").mkdtemp(prefix="antix-reliability-"))
        self.tmp.mkdir(parents=True, exist_ok=True)
        src = pathlib.Path(args.bin)
        if not src.is_absolute():
            src = (ROOT / src) if (ROOT / src).exists() else src.resolve()
        if not src.exists():
            raise SystemExit(f"{src}: no such binary (build it: scripts/run.sh, or RUSTFLAGS=\"--cfg erase_components\" cargo build --release -p server)")
        self.bin_src = src
        self.bin_mtime = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(src.stat().st_mtime))
        # A private copy: a rebuild in the middle of a run must not change what is tested.
        self.bin = self.tmp / "antix"
        shutil.copy2(src, self.bin)
        self.run_id = secrets.token_hex(4)
        self.canaries = {}
        self.pg = PgServer(args.postgres)
        ok, why = self.pg.reachable()
        self.pg_ok, self.pg_why = ok, why
        self.templates = {}
        self.mock_port = None
        self.fp = None
        self.hostile_port = None
        self.case_seq = 0

    def canary(self, label, prefix="sk-"):
        if label not in self.canaries:
            self.canaries[label] = f"{prefix}RLCANARY{label.replace('_', '')}{secrets.token_hex(10)}"
        return self.canaries[label]

    # -- long-lived helpers

    def start_services(self):
        self.mock_port = free_port()
        mock = self.procs.start([str(self.bin), "mock-provider", "--listen", f"127.0.0.1:{self.mock_port}"],
                                stdout=open(self.tmp / "mock.log", "wb"), stderr=subprocess.STDOUT,
                                env={**os.environ, "ANTIX_CONFIG": ""}, stdin=subprocess.DEVNULL)
        self.mock_proc = mock
        cport = free_port()
        self.fp_proc = self.procs.start([sys.executable, str(HERE / "faultproxy.py"), "--control", f"127.0.0.1:{cport}"],
                                        stdout=open(self.tmp / "faultproxy.log", "wb"), stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        self.fp = Control(cport)
        self.hostile_port = free_port()
        self.hostile_proc = self.procs.start([sys.executable, str(HERE / "hostile.py"), "--listen",
                                              f"127.0.0.1:{self.hostile_port}"],
                                             stdout=open(self.tmp / "hostile.log", "wb"), stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
        for port in (self.mock_port, cport, self.hostile_port):
            wait_port(port)

    def mock_stats(self):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.mock_port}/_mock/stats", timeout=5) as r:
            return json.load(r)

    def hostile_stats(self):
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.hostile_port}/_hostile/stats", timeout=5) as r:
            return json.load(r)

    def cli(self, db_url, data_dir, *args, stdin=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTIX_") and k != "DATABASE_URL"}
        env.update({"DATABASE_URL": db_url, "ANTIX_DATA_DIR": str(data_dir), "ANTIX_MASTER_KEY": MASTER_KEY,
                    "ANTIX_CONFIG": "", "ANTIX_LOG": "warn"})
        out = subprocess.run([str(self.bin), *args], env=env, input=stdin, capture_output=True, text=True,
                             timeout=120, cwd=data_dir)
        if out.returncode != 0:
            raise RuntimeError(f"antix {' '.join(args[:2])}: {out.stderr.strip()[:500]}")
        return out.stdout

    # -- templates: one set-up database per backend, copied for every case

    def template(self, kind):
        if kind in self.templates:
            return self.templates[kind]
        if kind == "sqlite":
            d = self.tmp / "template-sqlite"
            d.mkdir(exist_ok=True)
            db = SqliteDB(d / "antix.db")
        else:
            db = self.pg.create(f"antix_rel_{os.getpid()}_tpl")
            d = self.tmp / "template-pg"
            d.mkdir(exist_ok=True)
        t = {"kind": kind, "db": db, "dir": d}
        url = db.url
        pw = self.canary("admin_pw", prefix="pw-")
        self.cli(url, d, "admin", "create", "--email", ADMIN_EMAIL, "--org", "Reliability", "--name", "Rel Admin",
                 stdin=pw + "\n")
        for prov in ("openai", "anthropic", "gemini"):
            self.cli(url, d, "credential", "set", "--as", ADMIN_EMAIL, "--provider", prov,
                     stdin=self.canary(f"org_{prov}") + "\n")
        t["endpoint"] = json.loads(self.cli(url, d, "endpoint", "create", "--as", ADMIN_EMAIL, "--name", "rel",
                                            "--shared", "--json"))["id"]
        t["endpoint_nobyok"] = json.loads(self.cli(url, d, "endpoint", "create", "--as", ADMIN_EMAIL, "--name",
                                                   "rel-vk-only", "--shared", "--json"))["id"]
        for name in ("vk", "vk_budget", "vk_revoked", "vk_spare"):
            k = json.loads(self.cli(url, d, "key", "create", "--as", ADMIN_EMAIL, "--name", name, "--json"))
            t[name] = k["key"]
            t[name + "_id"] = k["id"]
        db.execute(f"UPDATE endpoints SET passthrough = {db.lit_bool(False)} WHERE id = {db.lit_uuid(t['endpoint_nobyok'])}")
        db.execute(f"UPDATE virtual_keys SET revoked_at = {now_ms() - 1000} WHERE id = {db.lit_uuid(t['vk_revoked_id'])}")
        # A second account (a member) with the admin's password hash: a login target for K4.
        users = db.query("SELECT id, password_hash FROM users")
        org = db.query("SELECT id FROM organizations")[0][0]
        vid = uuid.uuid4()
        if kind == "sqlite":
            db.execute("INSERT INTO users (id, email, name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                       (vid.bytes, VICTIM_EMAIL, "Victim", users[0][1], now_ms()))
            db.execute("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, 'member', ?)",
                       (org, vid.bytes, now_ms()))
        else:
            db.execute(f"INSERT INTO users (id, email, name, password_hash, created_at) VALUES ('{vid}', "
                       f"'{VICTIM_EMAIL}', 'Victim', '{users[0][1]}', {now_ms()})")
            db.execute(f"INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ('{org}', '{vid}', "
                       f"'member', {now_ms()})")
        if kind == "sqlite":
            # Fold the WAL into the file so a plain copy is complete.
            con = sqlite3.connect(db.path)
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
        self.templates[kind] = t
        for label in ("vk", "vk_budget", "vk_revoked", "vk_spare"):
            self.canaries[f"{kind}_{label}"] = t[label]
        return t

    def new_db(self, kind, case, name):
        """A fresh copy of the template for one gateway (or a group of replicas)."""
        t = self.template(kind)
        if kind == "sqlite":
            d = case.dir / name
            d.mkdir(parents=True, exist_ok=True)
            for p in t["db"].raw_files():
                shutil.copy2(p, d / p.name)
            return SqliteDB(d / "antix.db"), t
        self.case_seq += 1
        db = self.pg.create(f"antix_rel_{os.getpid()}_{self.case_seq}", template=t["db"].name)
        case.pg_dbs.append(db.name)
        return db, t

    def close(self):
        self.rss.stopped.set()
        self.procs.stop_all()
        if self.pg_ok:
            self.pg.drop_all()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


# ---------------------------------------------------------------------------------------------
# One case's resources and its result row


class Case:
    def __init__(self, env, cid, title):
        self.env = env
        self.id = cid
        self.title = title
        self.dir = env.tmp / cid
        self.dir.mkdir(parents=True, exist_ok=True)
        self.gateways = []
        self.proxies = []
        self.pg_dbs = []
        self.row = {"case": f"{cid} {title}", "load": "", "fault": "", "sent": 0, "traces": "",
                    "secrets": "", "5xx": "", "result": "", "notes": []}
        self.fails = []
        self.figures = {}
        self.t0 = time.monotonic()

    # -- resources

    def proxy(self, name, target_port, pg=False, host="127.0.0.1"):
        full = f"{self.id}-{name}"
        port = self.env.fp.add(full, f"{host}:{target_port}", pg=pg)
        self.proxies.append(full)
        return Proxy(self.env.fp, full, port)

    def gateway(self, name="gw", kind="sqlite", db=None, upstreams=None, extra=None, start=True, data_dir=None):
        if db is None:
            db, _ = self.env.new_db(kind, self, name)
        data_dir = data_dir or (db.path.parent if db.kind == "sqlite" else self.dir / name)
        g = Gateway(self.env, self, name, db, upstreams=upstreams, extra=extra, data_dir=data_dir)
        self.gateways.append(g)
        if start:
            g.start()
        return g

    def mock_upstreams(self, port=None):
        port = port or self.env.mock_port
        u = f"http://127.0.0.1:{port}"
        return {"openai": u, "anthropic": u, "gemini": u}

    def cleanup(self):
        for g in self.gateways:
            if g.alive():
                g.kill()
        for p in self.proxies:
            try:
                self.env.fp.remove(p)
            except Exception:  # noqa: BLE001
                pass
        for name in self.pg_dbs:
            self.env.pg.drop(name)

    # -- verdict

    def check(self, ok, failure):
        if not ok:
            self.fails.append(failure)
        return ok

    def note(self, text):
        self.row["notes"].append(text)

    def step(self, label):
        """Logs how long the case has run so far (RELIABILITY_DEBUG=1)."""
        if os.environ.get("RELIABILITY_DEBUG"):
            log(f"  {self.id} +{time.monotonic() - self.t0:.1f} s: {label}")


class Proxy:
    def __init__(self, control, name, port):
        self.control, self.name, self.port = control, name, port

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def mode(self, mode, **params):
        return self.control.mode(self.name, mode, **params)

    def needles(self, needles):
        return self.control.needles(self.name, needles)

    def stats(self, since=0.0):
        return self.control.stats(self.name, since)


# ---------------------------------------------------------------------------------------------
# Requests


def chat(stream=False, model="gpt-4o", content="Say hello to the reliability harness", max_tokens=None, **extra):
    b = {"model": model, "messages": [{"role": "user", "content": content}]}
    if stream:
        b["stream"] = True
    if max_tokens:
        b["max_tokens"] = max_tokens
    b.update(extra)
    return json.dumps(b).encode()


def anth(stream=False, model="claude-haiku-4-5", content="Say hello", max_tokens=64):
    b = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": content}]}
    if stream:
        b["stream"] = True
    return json.dumps(b).encode()


def gem(content="Say hello"):
    return json.dumps({"contents": [{"role": "user", "parts": [{"text": content}]}]}).encode()


def route(ep, provider, stream=False, model="gemini-2.5-flash"):
    if provider == "openai":
        return f"/v1/{ep}/openai/v1/chat/completions"
    if provider == "anthropic":
        return f"/v1/{ep}/anthropic/v1/messages"
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1/{ep}/gemini/v1beta/models/{model}:{method}"


def auth_headers(provider, key):
    if provider == "openai":
        return [("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")]
    if provider == "anthropic":
        return [("x-api-key", key), ("anthropic-version", "2023-06-01"), ("Content-Type", "application/json")]
    return [("x-goog-api-key", key), ("Content-Type", "application/json")]


def body_for(provider, stream=False, **kw):
    if provider == "openai":
        return chat(stream=stream, **kw)
    if provider == "anthropic":
        return anth(stream=stream, **{k: v for k, v in kw.items() if k in ("model", "content", "max_tokens")})
    return gem(**{k: v for k, v in kw.items() if k == "content"})


async def gather_limited(coros, limit):
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def open_loop(rate, duration, make, stop=None, max_inflight=2000):
    """Starts make(i) at `rate` per second for `duration` seconds (or until `stop` is set);
    returns the results in start order, with their start times."""
    results = []
    tasks = []
    t0 = time.monotonic()
    i = 0
    while True:
        now = time.monotonic()
        if now - t0 >= duration or (stop is not None and stop.is_set()):
            break
        due = t0 + i / rate
        if due > now:
            await asyncio.sleep(due - now)
            continue
        if sum(1 for _, t in tasks if not t.done()) < max_inflight:
            start = time.monotonic()
            tasks.append((start, asyncio.ensure_future(make(i))))
        i += 1
    for start, t in tasks:
        results.append((start, await t))
    return results


async def wait_for(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        await asyncio.sleep(interval)


async def traces_settle(db, ids, timeout=20):
    """Waits until every id in `ids` is in the traces table (or the timeout); returns found ids."""
    ids = set(i for i in ids if i)
    found = set()
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = db.trace_ids() & ids
        except Exception:  # noqa: BLE001  (database busy or down: try again)
            pass
        if found == ids or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def count_settle(db, where="1=1", quiet=1.5, timeout=30, want=None):
    """Waits until the trace count stops changing for `quiet` seconds (or reaches `want`)."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            n = db.query(f"SELECT COUNT(*) FROM traces WHERE {where if db.kind == 'sqlite' else where.replace('1=1', 'true')}")[0][0]
            n = int(n)
        except Exception:  # noqa: BLE001
            n = last
        if want is not None and n >= want:
            return n
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return n
        await asyncio.sleep(0.2)
    return last


MARKER = re.compile(r"x-rel-req\W+(\d+)", re.I)


def marker_counts(db):
    """How many traces carry each x-rel-req marker (request headers are stored as text)."""
    counts = {}
    for h in db.request_headers():
        if h is None:
            continue
        for m in set(MARKER.findall(h)):
            counts[m] = counts.get(m, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------
# Canary scanning


def scan_secrets(case, canaries, gateways=None, db=None, extra_paths=()):
    """Looks for every canary (raw, hex, base64 of "x:"+canary for Basic credentials) in the
    database (the file and decompressed trace bodies, or a pg_dump), the spool and the
    gateways' output. Returns (total hits, {sink: {label: n}})."""
    gateways = gateways if gateways is not None else case.gateways
    needles = {}
    for label, value in canaries.items():
        v = value.encode()
        needles[(label, "raw")] = v
        needles[(label, "hex")] = v.hex().encode()
    hits = {}

    def add(sink, data):
        for (label, _form), n in needles.items():
            c = data.count(n)
            if c:
                hits.setdefault(sink, {})
                hits[sink][label] = hits[sink].get(label, 0) + c

    def scan_file(sink, path):
        longest = max(len(n) for n in needles.values()) if needles else 1
        try:
            with open(path, "rb") as f:
                tail = b""
                while True:
                    block = f.read(8 * MiB)
                    if not block:
                        break
                    buf = tail + block
                    for (label, _form), n in needles.items():
                        c = buf.count(n) - tail.count(n)
                        if c:
                            hits.setdefault(sink, {})
                            hits[sink][label] = hits[sink].get(label, 0) + c
                    tail = buf[-longest:]
        except OSError:
            pass

    dbs = [db] if db is not None else list({id(g.db): g.db for g in gateways}.values())
    for d in dbs:
        if d is None:
            continue
        if d.kind == "sqlite":
            for p in d.raw_files():
                scan_file("db", p)
        else:
            dump = case.dir / f"{d.name}.sql"
            try:
                d.dump(dump)
                scan_file("db", dump)
            except Exception as e:  # noqa: BLE001
                case.note(f"pg_dump failed: {e}")
        # Bodies are zstd-compressed: decompress them (concatenated frames, one zstd process).
        try:
            frames = []
            for _tid, _col, blob in d.bodies():
                if blob[:4] == b"\x28\xb5\x2f\xfd":
                    frames.append(blob)
                else:
                    add("db bodies", blob)
            if frames:
                out = subprocess.run(["zstd", "-dcq"], input=b"".join(frames), capture_output=True, timeout=300)
                add("db bodies", out.stdout)
        except FileNotFoundError:
            case.note("zstd missing: stored bodies not scanned")
        except Exception as e:  # noqa: BLE001
            case.note(f"body scan: {type(e).__name__}: {e}")
    for g in gateways:
        sd = g.spool_dir()
        if sd.is_dir():
            for p in sd.rglob("*"):
                if p.is_file():
                    scan_file("spool", p)
        for p in g.logs:
            scan_file("logs", p)
    for p in extra_paths:
        scan_file("other", p)
    total = sum(n for s in hits.values() for n in s.values())
    return total, hits


def secrets_cell(total, hits):
    if not total:
        return "0"
    parts = []
    for sink, labels in hits.items():
        parts.append(f"{sink}: " + ", ".join(f"{l}×{n}" for l, n in labels.items()))
    return f"**{total}** ({'; '.join(parts)})"


def b64_basic(secret, user="x"):
    return base64.b64encode(f"{user}:{secret}".encode()).decode()
