"""A small asyncio HTTP/1.1 client for the reliability harness (stdlib only).

It exists because the harness must see what an SDK cannot easily tell: whether a response body
ended with its proper framing (the last chunk of a chunked body, or the full Content-Length) or
broke off (a reset, an early EOF); exactly when each chunk arrived; and it must be able to hang
up mid-response, send bodies slowly or endlessly, and send headers no library would.
"""

import asyncio
import socket
import time

HEAD_LIMIT = 4 * 1024 * 1024


class Response:
    """One response. `complete` is True only when the body ended with its framing."""

    def __init__(self):
        self.status = 0
        self.reason = ""
        self.headers = []  # (lowercase name, value) pairs, in order
        self.body = b""
        self.body_len = 0
        self.complete = False
        self.error = None  # why the exchange ended abnormally (or could not start)
        self.t_start = time.monotonic()
        self.t_headers = None
        self.t_end = None
        self.chunk_times = []  # (monotonic time, length) of each body read
        self.framing = None  # "chunked", "length", "eof" or "none"

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def trace_id(self):
        return self.header("x-antix-trace-id")

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} len={self.body_len} complete={self.complete} error={self.error}>"


class Conn:
    """One client connection (kept alive between requests when the server allows it)."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.usable = True

    @classmethod
    async def open(cls, host, port, rcvbuf=None, timeout=10):
        if rcvbuf:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
            reader, writer = await asyncio.open_connection(sock=sock, limit=HEAD_LIMIT)
        else:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=HEAD_LIMIT), timeout)
        return cls(reader, writer)

    def close(self, rst=False):
        self.usable = False
        try:
            if rst:
                sock = self.writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.writer.transport.abort()
            else:
                self.writer.close()
        except Exception:
            pass


def build_head(method, path, host, port, headers, body_len=None, chunked=False):
    lines = [f"{method} {path} HTTP/1.1".encode()]
    names = set()
    for k, v in headers or []:
        names.add(k.lower() if isinstance(k, str) else k.decode("latin-1").lower())
        kb = k.encode("latin-1") if isinstance(k, str) else k
        vb = v.encode("latin-1", "replace") if isinstance(v, str) else v
        lines.append(kb + b": " + vb)
    if "host" not in names:
        lines.append(f"Host: {host}:{port}".encode())
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
    elif body_len is not None and "content-length" not in names:
        lines.append(f"Content-Length: {body_len}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _read_head(reader, resp):
    head = await reader.readuntil(b"\r\n\r\n")
    resp.t_headers = time.monotonic()
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    resp.status = int(parts[1])
    resp.reason = parts[2] if len(parts) > 2 else ""
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        resp.headers.append((k.strip().lower(), v.strip()))


async def _read_body(reader, resp, method, keep, cap, on_data):
    """Reads the body; returns False when `on_data` asked to stop."""
    def got(data):
        resp.body_len += len(data)
        resp.chunk_times.append((time.monotonic(), len(data)))
        if keep and (cap is None or len(resp.body) < cap):
            resp.body += data if cap is None else data[: cap - len(resp.body)]
        if on_data is not None:
            return on_data(resp, data) is not False
        return True

    if method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
        resp.framing = "none"
        resp.complete = True
        return True
    te = (resp.header("transfer-encoding") or "").lower()
    cl = resp.header("content-length")
    if "chunked" in te:
        resp.framing = "chunked"
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                resp.complete = True
                return True
            remaining = size
            while remaining:
                data = await reader.read(min(remaining, 1 << 20))
                if not data:
                    raise asyncio.IncompleteReadError(b"", remaining)
                remaining -= len(data)
                if not got(data):
                    return False
            await reader.readexactly(2)
    elif cl is not None:
        resp.framing = "length"
        remaining = int(cl)
        while remaining:
            data = await reader.read(min(remaining, 1 << 20))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(data)
            if not got(data):
                return False
        resp.complete = True
        return True
    else:
        resp.framing = "eof"
        while True:
            data = await reader.read(1 << 20)
            if not data:
                resp.complete = True
                return True
            if not got(data):
                return False


async def request(host, port, method, path, headers=None, body=None, *, conn=None, timeout=60.0,
                  keep=True, cap=None, on_data=None, rcvbuf=None, chunked=False, head_timeout=None):
    """Sends one request and reads the answer.

    body: bytes, or an async iterator of bytes (sent chunked), or None.
    on_data(resp, chunk): called for every body read; return False to hang up (the connection
    is then closed, as a client that goes away would).
    conn: a Conn to reuse (and leave open when the exchange ends cleanly); else a fresh one that
    is closed afterwards.
    Never raises for network trouble: `resp.error` says what happened.
    """
    resp = Response()
    own = conn is None
    try:
        if own:
            conn = await Conn.open(host, port, rcvbuf=rcvbuf, timeout=min(timeout, 10))
    except Exception as e:  # noqa: BLE001
        resp.error = f"connect: {type(e).__name__}: {e}"
        resp.t_end = time.monotonic()
        return resp
    is_iter = body is not None and not isinstance(body, (bytes, bytearray, memoryview))
    head = build_head(method, path, host, port, headers,
                      None if body is None and method in ("GET", "HEAD") else (0 if body is None else (None if is_iter else len(body))),
                      chunked=is_iter or chunked)
    send_error = []

    async def send():
        try:
            conn.writer.write(head)
            if body is None:
                pass
            elif is_iter:
                async for piece in body:
                    if piece:
                        conn.writer.write(b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n")
                        await conn.writer.drain()
                conn.writer.write(b"0\r\n\r\n")
            else:
                view = memoryview(body)
                for i in range(0, len(view), 1 << 20):
                    conn.writer.write(view[i:i + (1 << 20)])
                    await conn.writer.drain()
            await conn.writer.drain()
        except Exception as e:  # noqa: BLE001
            send_error.append(f"{type(e).__name__}: {e}")

    sender = asyncio.ensure_future(send())
    stopped = False
    try:
        async def exchange():
            nonlocal stopped
            await asyncio.wait_for(_read_head(conn.reader, resp), head_timeout or timeout)
            ok = await _read_body(conn.reader, resp, method, keep, cap, on_data)
            stopped = not ok
        await asyncio.wait_for(exchange(), timeout)
    except asyncio.TimeoutError:
        resp.error = "timeout"
    except asyncio.IncompleteReadError as e:
        resp.error = "eof before the end of the response" if resp.status else "eof before any response"
        if not resp.status and e.partial:
            resp.error += f" ({len(e.partial)} bytes)"
    except asyncio.LimitOverrunError:
        resp.error = "response head too large"
    except (ConnectionError, OSError) as e:
        resp.error = f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001
        resp.error = f"{type(e).__name__}: {e}"
    resp.t_end = time.monotonic()
    if not sender.done():
        sender.cancel()
    if resp.error is None and send_error and not resp.status:
        resp.error = "send: " + send_error[0]
    clean = resp.complete and not stopped and resp.error is None and sender.done() and not send_error
    if (resp.header("connection") or "").lower() == "close":
        clean = False
    if own or not clean:
        conn.close(rst=stopped)
    if stopped and resp.error is None:
        resp.error = "hung up by the client"
    return resp


class Pool:
    """Keep-alive connections to one server, for load loops."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.idle = []

    async def request(self, method, path, headers=None, body=None, **kw):
        conn = self.idle.pop() if self.idle else None
        reused = conn is not None
        if conn is None:
            try:
                conn = await Conn.open(self.host, self.port)
            except Exception as e:  # noqa: BLE001
                r = Response()
                r.error = f"connect: {type(e).__name__}: {e}"
                r.t_end = time.monotonic()
                return r
        r = await request(self.host, self.port, method, path, headers, body, conn=conn, **kw)
        if reused and not r.status and r.error and (r.error.startswith("eof before any response")
                                                    or "Broken pipe" in r.error or "reset by peer" in r.error):
            # The server closed the idle connection as we reused it: once more on a fresh one.
            return await self.request(method, path, headers, body, **kw)
        if conn.usable and r.error is None:
            self.idle.append(conn)
        return r

    def close(self):
        for c in self.idle:
            c.close()
        self.idle = []


def sse_events(body):
    """Splits an SSE body into (event name, data) pairs."""
    out = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = None, []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        if name or data:
            out.append((name, b"\n".join(data)))
    return out


def raw_exchange(host, port, data, timeout=30.0, piece=16384):
    """Sends raw bytes (or an iterable of byte strings) on a blocking socket while a thread reads; returns what came back (the
    answer survives a reset that asyncio would turn into a lost read). Blocking: run it in an
    executor."""
    import threading
    s = socket.create_connection((host, port), timeout=timeout)
    got = []

    def reader():
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return
                got.append(d)
        except OSError:
            return

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    pieces = (data[i:i + piece] for i in range(0, len(data), piece)) if isinstance(data, (bytes, bytearray)) else data
    try:
        for p in pieces:
            s.sendall(p)
    except OSError:
        pass
    th.join(timeout)
    try:
        s.close()
    except OSError:
        pass
    out = b"".join(got)
    status = 0
    if out.startswith(b"HTTP/1."):
        try:
            status = int(out.split(b" ", 2)[1])
        except (IndexError, ValueError):
            pass
    return status, out


def parse_raw(out):
    """A Response from the raw bytes `raw_exchange` returned (Content-Length or whole rest)."""
    r = Response()
    r.t_end = time.monotonic()
    head, sep, rest = out.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1."):
        r.error = "no answer" if not out else "unreadable answer"
        return r
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    r.status = int(parts[1])
    for line in lines[1:]:
        k, _, v = line.partition(":")
        r.headers.append((k.strip().lower(), v.strip()))
    cl = r.header("content-length")
    r.body = rest[:int(cl)] if cl is not None else rest
    r.body_len = len(r.body)
    r.complete = cl is None or len(rest) >= int(cl)
    return r
