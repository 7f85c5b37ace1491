#!/usr/bin/env python3
"""A fault-injecting TCP proxy (stdlib asyncio), Toxiproxy-style, for the reliability harness.

Each proxy listens on a port and forwards to host:port. Its fault mode can be changed at any
time, and applies to new and existing connections:

| mode | effect |
|---|---|
| `pass` | forward as is |
| `latency` (`ms`) | delay every chunk, in both directions, by `ms` (order kept) |
| `stall` | accept and read, never forward (nothing reaches the target or comes back) |
| `reset` | RST every connection (SO_LINGER 0, then close), existing and new |
| `blackhole` | accept, never connect or answer; existing connections freeze |
| `bandwidth` (`bps`) | at most `bps` bytes per second per connection and direction |
| `reset_after` (`bytes`, or `min`/`max`) | RST a connection once that many bytes came back from the target (a random count in [min, max] per connection): a cut mid-stream |
| `cut_commit_ack` (`count`) | Postgres only: RST the next `count` connections that carry a `COMMIT` acknowledgement, just before the acknowledgement reaches the client (the commit happened; the client cannot know) |

It also counts "needles" (canary strings) in the bytes going to the target, and keeps a record
of every connection (opened, closed, by whom), so tests can tell when the gateway hung up on
its upstream.

Use it from Python (`Proxy`, `Hub`) or as a process with a small HTTP control port:

    python3 faultproxy.py --control 127.0.0.1:7000 [--listen 127.0.0.1:7001 --target 127.0.0.1:9999]
    python3 faultproxy.py --self-test      # every mode against an echo server

    POST /proxies                {"name": "pg", "listen": "127.0.0.1:0", "target": "127.0.0.1:5432"}
    POST /proxies/pg/mode        {"mode": "latency", "ms": 500}
    POST /proxies/pg/needles     {"needles": {"vk": "sk-vk-..."}}
    GET  /proxies/pg/stats       (connections, bytes, needle hits, recent closes)
    DELETE /proxies/pg
"""

import argparse
import asyncio
import json
import random
import socket
import struct
import sys
import time
import urllib.request

RST_LINGER = struct.pack("ii", 1, 0)
CHUNK = 64 * 1024
MAX_QUEUED = 8 * 1024 * 1024


def rst(writer):
    """Closes a connection with a TCP reset."""
    if writer is None:
        return
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST_LINGER)
    except OSError:
        pass
    try:
        writer.transport.abort()
    except Exception:  # noqa: BLE001
        pass


def close(writer):
    if writer is None:
        return
    try:
        writer.close()
    except Exception:  # noqa: BLE001
        pass


class PgCommitWatch:
    """Follows the server-to-client side of a Postgres connection message by message, to find
    the CommandComplete("COMMIT") of a transaction."""

    def __init__(self):
        self.buf = b""
        self.skip_ssl_reply = False
        self.disabled = False
        self.first_client = True

    def client_bytes(self, data):
        if self.first_client and len(data) >= 8:
            self.first_client = False
            length, code = struct.unpack("!ii", data[:8])
            if length == 8 and code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                self.skip_ssl_reply = True

    def server_bytes(self, data):
        """Returns the offset in `data` where a COMMIT acknowledgement starts, or None."""
        if self.disabled:
            return None
        start = len(self.buf)
        self.buf += data
        pos = 0
        if self.skip_ssl_reply and self.buf:
            self.skip_ssl_reply = False
            if self.buf[:1] == b"S":
                self.disabled = True  # TLS: nothing to read
                self.buf = b""
                return None
            pos = 1
        found = None
        while len(self.buf) - pos >= 5:
            kind = self.buf[pos:pos + 1]
            (length,) = struct.unpack("!i", self.buf[pos + 1:pos + 5])
            if len(self.buf) - pos < 1 + length:
                break
            if kind == b"C" and self.buf[pos + 5:pos + 1 + length].startswith(b"COMMIT") and found is None:
                found = pos - start
            pos += 1 + length
        self.buf = self.buf[pos:]
        if found is not None:
            return max(found, 0)
        return None


class Connection:
    _ids = 0

    def __init__(self, proxy, creader, cwriter):
        Connection._ids += 1
        self.id = Connection._ids
        self.proxy = proxy
        self.creader, self.cwriter = creader, cwriter
        self.treader = self.twriter = None
        self.opened = time.time()
        self.closed = None
        self.closed_by = None
        self.up = 0
        self.down = 0
        self.reset_at = None
        self.tails = {"up": b"", "down": b""}
        self.pg = PgCommitWatch() if proxy.mode == "cut_commit_ack" or proxy.pg else None
        self.done = asyncio.Event()
        self.dead = False  # accepted during blackhole/stall: never connected

    def kill(self, why):
        if self.closed is None:
            self.closed = time.time()
            self.closed_by = why
        rst(self.cwriter)
        rst(self.twriter)
        self.done.set()

    def finish(self, who):
        if self.closed is None:
            self.closed = time.time()
            self.closed_by = who
        close(self.cwriter)
        close(self.twriter)
        self.done.set()

    def record(self):
        return {"id": self.id, "opened": self.opened, "closed": self.closed, "closed_by": self.closed_by,
                "up": self.up, "down": self.down}


class Proxy:
    def __init__(self, name, listen_host, listen_port, target_host, target_port):
        self.name = name
        self.listen_host, self.listen_port = listen_host, listen_port
        self.target_host, self.target_port = target_host, target_port
        self.mode = "pass"
        self.params = {}
        self.pg = False
        self.conns = set()
        self.history = []  # closed connections (records), newest last
        self.needles = {}  # label -> bytes
        self.hits = {}
        self.hits_down = {}
        self.totals = {"connections": 0, "up": 0, "down": 0, "resets": 0, "commit_cuts": 0}
        self.server = None
        self.mode_changed = asyncio.Event()

    async def start(self):
        self.server = await asyncio.start_server(self._accept, self.listen_host, self.listen_port,
                                                 backlog=4096, limit=CHUNK)
        self.listen_port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        if self.server:
            self.server.close()
        for c in list(self.conns):
            c.kill("proxy stopped")
        if self.server:
            try:
                await asyncio.wait_for(self.server.wait_closed(), 2)
            except Exception:  # noqa: BLE001
                pass

    def set_mode(self, mode, **params):
        if mode not in ("pass", "latency", "stall", "reset", "blackhole", "bandwidth", "reset_after",
                        "cut_commit_ack"):
            raise ValueError(f"unknown mode {mode}")
        self.mode = mode
        self.params = params
        if mode == "cut_commit_ack":
            self.pg = True
            self.params["left"] = int(params.get("count", 1))
        if mode == "reset":
            for c in list(self.conns):
                self.totals["resets"] += 1
                c.kill("proxy reset")
        if mode == "reset_after":
            for c in self.conns:
                c.reset_at = self._reset_point()
        # Wake pumps waiting for the mode to change.
        self.mode_changed.set()
        self.mode_changed = asyncio.Event()

    def set_needles(self, needles):
        self.needles = {k: v.encode() if isinstance(v, str) else v for k, v in needles.items()}
        self.hits = {k: 0 for k in self.needles}
        self.hits_down = {k: 0 for k in self.needles}

    def _reset_point(self):
        p = self.params
        if "bytes" in p:
            return int(p["bytes"])
        return random.randint(int(p.get("min", 1)), int(p.get("max", p.get("min", 1))))

    def stats(self, since=0.0):
        return {
            "name": self.name, "port": self.listen_port, "mode": self.mode, "params": self.params,
            "open": len(self.conns), **self.totals,
            "hits": dict(self.hits), "hits_down": dict(self.hits_down),
            "open_connections": [c.record() for c in self.conns],
            "closed_connections": [r for r in self.history if (r["closed"] or 0) >= since],
        }

    async def _accept(self, creader, cwriter):
        c = Connection(self, creader, cwriter)
        self.totals["connections"] += 1
        self.conns.add(c)
        try:
            await self._serve(c)
        except Exception:  # noqa: BLE001
            c.kill("proxy error")
        finally:
            self.conns.discard(c)
            if c.closed is None:
                c.finish("client")
            self.history.append(c.record())
            if len(self.history) > 20000:
                del self.history[:10000]

    async def _serve(self, c):
        mode = self.mode
        if mode == "reset":
            self.totals["resets"] += 1
            c.kill("proxy reset")
            return
        if mode in ("blackhole", "stall"):
            # Never connect: take what the client sends and drop it, until it gives up.
            c.dead = True
            while not c.done.is_set():
                try:
                    data = await c.creader.read(CHUNK)
                except (ConnectionError, OSError):
                    break
                if not data:
                    break
                c.up += len(data)
            c.finish("client")
            return
        try:
            c.treader, c.twriter = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port, limit=CHUNK), 10)
        except Exception:  # noqa: BLE001
            c.kill("target unreachable")
            return
        if self.mode == "reset_after":
            c.reset_at = self._reset_point()
        up = asyncio.ensure_future(self._pump(c, c.creader, c.twriter, "up"))
        down = asyncio.ensure_future(self._pump(c, c.treader, c.cwriter, "down"))
        done_wait = asyncio.ensure_future(c.done.wait())
        pending = {up, down, done_wait}
        try:
            while pending:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if done_wait in finished:
                    break
                for f in finished:
                    who = f.result() if not f.cancelled() and f.exception() is None else None
                    if who:
                        # One side closed: pass the close on and stop.
                        c.finish(who)
                        pending.discard(done_wait)
                        break
                if c.done.is_set():
                    break
        finally:
            for f in (up, down, done_wait):
                if not f.done():
                    f.cancel()

    def _scan(self, c, direction, data):
        if not self.needles:
            return
        tail = c.tails[direction]
        buf = tail + data
        hits = self.hits if direction == "up" else self.hits_down
        for label, needle in self.needles.items():
            n = buf.count(needle)
            if n:
                # Matches entirely inside the old tail were counted before.
                n -= tail.count(needle)
                hits[label] = hits.get(label, 0) + n
        longest = max(len(n) for n in self.needles.values())
        c.tails[direction] = buf[-(longest - 1):] if longest > 1 else b""

    async def _pump(self, c, reader, writer, direction):
        """Copies one direction; returns who closed ("client"/"target") or None when killed."""
        queue = asyncio.Queue()
        queued = [0]
        bw_next = [0.0]
        sender_error = []

        async def sender():
            while True:
                release, data = await queue.get()
                if data is None:
                    return
                delay = release - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    writer.write(data)
                    await writer.drain()
                except Exception as e:  # noqa: BLE001
                    sender_error.append(e)
                    return
                queued[0] -= len(data)

        send_task = asyncio.ensure_future(sender())
        try:
            while True:
                if c.done.is_set():
                    return None
                mode = self.mode
                if mode == "blackhole":
                    await self._wait_mode(c)
                    continue
                size = CHUNK
                if mode == "bandwidth":
                    size = max(1, min(CHUNK, int(self.params.get("bps", 1000)) // 10))
                data = await reader.read(size)
                if not data:
                    # The sender flushes what is queued, then the close is passed on.
                    await queue.put((0, None))
                    await send_task
                    return "client" if direction == "up" else "target"
                if direction == "up" and c.pg:
                    c.pg.client_bytes(data)
                while self.mode == "blackhole" and not c.done.is_set():
                    await self._wait_mode(c)
                if c.done.is_set():
                    return None
                mode = self.mode
                if mode == "stall":
                    if direction == "up":
                        c.up += len(data)
                    continue
                self._scan(c, direction, data)
                if direction == "down" and c.pg and mode == "cut_commit_ack" and self.params.get("left", 0) > 0:
                    at = c.pg.server_bytes(data)
                    if at is not None:
                        self.params["left"] -= 1
                        self.totals["commit_cuts"] += 1
                        if at:
                            await queue.put((time.monotonic(), data[:at]))
                            await queue.put((0, None))
                            await send_task
                        c.kill("commit ack cut")
                        return None
                elif direction == "down" and c.pg:
                    c.pg.server_bytes(data)
                if direction == "down" and mode == "reset_after" and c.reset_at is not None:
                    left = c.reset_at - c.down
                    if len(data) >= left:
                        if left > 0:
                            c.down += left
                            self.totals["down"] += left
                            await queue.put((time.monotonic(), data[:left]))
                        await queue.put((0, None))
                        await send_task
                        self.totals["resets"] += 1
                        c.kill("reset_after")
                        return None
                if direction == "up":
                    c.up += len(data)
                    self.totals["up"] += len(data)
                else:
                    c.down += len(data)
                    self.totals["down"] += len(data)
                release = time.monotonic()
                if mode == "latency":
                    release += float(self.params.get("ms", 0)) / 1000
                if mode == "bandwidth":
                    # Each chunk arrives once it would have been transmitted at `bps`.
                    release = max(release, bw_next[0]) + len(data) / max(1, int(self.params.get("bps", 1000)))
                    bw_next[0] = release
                queued[0] += len(data)
                await queue.put((release, data))
                if mode == "bandwidth":
                    await asyncio.sleep(max(0.0, release - time.monotonic()))
                while queued[0] > MAX_QUEUED and not send_task.done():
                    await asyncio.sleep(0.01)
                if send_task.done():
                    return "target" if direction == "up" else "client"
        except ConnectionResetError:
            # A reset on one side is passed on as a reset on the other.
            c.kill(("client" if direction == "up" else "target") + " reset")
            return None
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            return "client" if direction == "up" else "target"
        finally:
            if not send_task.done():
                send_task.cancel()

    async def _wait_mode(self, c):
        ev = self.mode_changed
        done = asyncio.ensure_future(c.done.wait())
        changed = asyncio.ensure_future(ev.wait())
        await asyncio.wait({done, changed}, return_when=asyncio.FIRST_COMPLETED)
        for f in (done, changed):
            if not f.done():
                f.cancel()


class Hub:
    """Several proxies in one event loop, with an optional HTTP control server."""

    def __init__(self):
        self.proxies = {}
        self.control = None

    async def add(self, name, listen, target):
        lh, lp = split_addr(listen)
        th, tp = split_addr(target)
        if name in self.proxies:
            await self.proxies.pop(name).stop()
        p = await Proxy(name, lh, lp, th, tp).start()
        self.proxies[name] = p
        return p

    async def remove(self, name):
        p = self.proxies.pop(name, None)
        if p:
            await p.stop()

    async def serve_control(self, host, port):
        self.control = await asyncio.start_server(self._control, host, port)
        return self.control.sockets[0].getsockname()[1]

    async def _control(self, reader, writer):
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                body = await reader.readexactly(length) if length else b""
                try:
                    status, out = await self._handle(method, target, json.loads(body) if body else {})
                except Exception as e:  # noqa: BLE001
                    status, out = 400, {"error": f"{type(e).__name__}: {e}"}
                data = json.dumps(out).encode()
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        finally:
            close(writer)

    async def _handle(self, method, target, body):
        path, _, query = target.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        parts = [p for p in path.split("/") if p]
        if parts == ["proxies"] and method == "GET":
            return 200, {n: p.stats() for n, p in self.proxies.items()}
        if parts == ["proxies"] and method == "POST":
            p = await self.add(body["name"], body.get("listen", "127.0.0.1:0"), body["target"])
            if body.get("pg"):
                p.pg = True
            return 200, {"name": p.name, "port": p.listen_port}
        if len(parts) >= 2 and parts[0] == "proxies":
            name = parts[1]
            if method == "DELETE" and len(parts) == 2:
                await self.remove(name)
                return 200, {}
            p = self.proxies.get(name)
            if p is None:
                return 404, {"error": "no such proxy"}
            if parts[2:] == ["mode"] and method == "POST":
                mode = body.pop("mode")
                p.set_mode(mode, **body)
                return 200, {"mode": p.mode}
            if parts[2:] == ["needles"] and method == "POST":
                p.set_needles(body.get("needles", {}))
                return 200, {}
            if parts[2:] == ["stats"]:
                return 200, p.stats(float(params.get("since", 0)))
        if parts == ["quit"]:
            asyncio.get_running_loop().call_later(0.05, sys.exit, 0)
            return 200, {}
        return 404, {"error": "no such route"}


def split_addr(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


class Control:
    """Blocking client of a faultproxy process's control port."""

    def __init__(self, port, host="127.0.0.1"):
        self.base = f"http://{host}:{port}"

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def add(self, name, target, listen="127.0.0.1:0", pg=False):
        return self._call("POST", "/proxies", {"name": name, "target": target, "listen": listen, "pg": pg})["port"]

    def remove(self, name):
        return self._call("DELETE", f"/proxies/{name}")

    def mode(self, name, mode, **params):
        return self._call("POST", f"/proxies/{name}/mode", {"mode": mode, **params})

    def needles(self, name, needles):
        return self._call("POST", f"/proxies/{name}/needles", {"needles": needles})

    def stats(self, name, since=0.0):
        return self._call("GET", f"/proxies/{name}/stats?since={since}")


async def amain(args):
    hub = Hub()
    if args.listen and args.target:
        p = await hub.add("default", args.listen, args.target)
        print(f"proxy listening on {p.listen_host}:{p.listen_port} -> {args.target}", flush=True)
    if args.control:
        h, p = split_addr(args.control)
        port = await hub.serve_control(h, p)
        print(f"control on {h}:{port}", flush=True)
    await asyncio.Event().wait()


async def self_test():
    """Checks every mode against an echo server; prints one line per mode."""
    async def echo(reader, writer):
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            close(writer)

    target = await asyncio.start_server(echo, "127.0.0.1", 0)
    tport = target.sockets[0].getsockname()[1]
    p = await Proxy("t", "127.0.0.1", 0, "127.0.0.1", tport).start()
    p.set_needles({"canary": "s3cr3t"})

    async def conn():
        return await asyncio.open_connection("127.0.0.1", p.listen_port)

    async def roundtrip(r, w, data, timeout=3.0):
        t0 = time.monotonic()
        w.write(data)
        await w.drain()
        got = b""
        try:
            while len(got) < len(data):
                chunk = await asyncio.wait_for(r.read(CHUNK), timeout)
                if not chunk:
                    return got, time.monotonic() - t0, "eof"
                got += chunk
        except asyncio.TimeoutError:
            return got, time.monotonic() - t0, "timeout"
        except ConnectionResetError:
            return got, time.monotonic() - t0, "reset"
        return got, time.monotonic() - t0, "ok"

    results = []

    def check(name, ok, detail):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    r, w = await conn()
    got, dt, how = await roundtrip(r, w, b"hello s3cr3t")
    check("pass", got == b"hello s3cr3t" and p.hits["canary"] == 1, f"{how} in {dt * 1000:.0f} ms, needle hits {p.hits}")
    p.set_mode("latency", ms=150)
    got, dt, how = await roundtrip(r, w, b"x" * 10)
    check("latency 150 ms", how == "ok" and dt >= 0.29, f"round trip {dt * 1000:.0f} ms (≥ 300 expected)")
    p.set_mode("bandwidth", bps=20000)
    got, dt, how = await roundtrip(r, w, b"b" * 8000)
    check("bandwidth 20 kB/s", how == "ok" and dt >= 0.6, f"8 kB each way in {dt:.2f} s")
    p.set_mode("stall")
    got, dt, how = await roundtrip(r, w, b"stalled", timeout=0.5)
    check("stall (existing)", got == b"" and how == "timeout", f"{how}, got {got!r}")
    r2, w2 = await conn()
    got, dt, how = await roundtrip(r2, w2, b"stalled", timeout=0.5)
    check("stall (new)", got == b"" and how == "timeout", f"{how}, got {got!r}")
    w2.close()
    p.set_mode("pass")
    r7, w7 = await conn()
    await roundtrip(r7, w7, b"warm")
    p.set_mode("blackhole")
    got, dt, how = await roundtrip(r7, w7, b"frozen", timeout=0.5)
    check("blackhole (existing) freezes", got == b"" and how == "timeout", how)
    p.set_mode("pass")
    got2 = await asyncio.wait_for(r7.read(CHUNK), 2)
    check("blackholed existing connection resumes", got2 == b"frozen", repr(got2))
    w7.close()
    p.set_mode("blackhole")
    r3, w3 = await conn()
    got, dt, how = await roundtrip(r3, w3, b"into the hole", timeout=0.5)
    check("blackhole (new)", got == b"" and how == "timeout", f"{how}, got {got!r}")
    p.set_mode("pass")
    got, dt, how = await roundtrip(r3, w3, b"still", timeout=0.5)
    check("blackholed connection stays dead", got == b"" and how == "timeout", f"{how}")
    w3.close()
    r4, w4 = await conn()
    got, dt, how = await roundtrip(r4, w4, b"alive again")
    check("pass again (new)", how == "ok", how)
    p.set_mode("reset")
    got, dt, how = await roundtrip(r4, w4, b"after reset", timeout=1.0)
    check("reset (existing)", how in ("reset", "eof") and got == b"", how)
    r5, w5 = await conn()
    got, dt, how = await roundtrip(r5, w5, b"new", timeout=1.0)
    check("reset (new)", how in ("reset", "eof") and got == b"", how)
    p.set_mode("reset_after", bytes=5)
    r6, w6 = await conn()
    got, dt, how = await roundtrip(r6, w6, b"0123456789", timeout=1.0)
    check("reset_after 5 bytes", got == b"01234" and how in ("reset", "eof"), f"got {got!r}, then {how}")
    await p.stop()
    target.close()
    print("faultproxy self-test: " + ("all modes behave" if all(results) else "FAILURES"))
    return all(results)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", help="host:port to listen on")
    ap.add_argument("--target", help="host:port to forward to")
    ap.add_argument("--control", help="host:port of the HTTP control server (port 0: any)")
    ap.add_argument("--self-test", action="store_true", help="check every mode against an echo server")
    args = ap.parse_args()
    if args.self_test:
        sys.exit(0 if asyncio.run(self_test()) else 1)
    if not args.control and not (args.listen and args.target):
        ap.error("give --listen and --target, or --control")
    try:
        asyncio.run(amain(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
