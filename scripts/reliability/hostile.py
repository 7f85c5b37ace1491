#!/usr/bin/env python3
"""A hostile upstream for the reliability harness: an HTTP/1.1 server (stdlib asyncio) that
answers every request the way the `x-hostile` request header asks (the gateway passes client
headers on), in the OpenAI shape, or the Anthropic one when the path ends in /messages.

| x-hostile | answer |
|---|---|
| `bigline;mb=64` | a stream whose one content event is a single SSE line of `mb` MiB, then a normal end |
| `nonewline` | a stream of `data: xxxx…` that never sends a newline, until the client leaves |
| `badutf8` | a stream whose content holds invalid UTF-8, then a normal end |
| `endless;rate=0` | valid content events forever (bytes per second, 0: as fast as possible) |
| `gzipbomb;mb=1024` | a JSON answer with `Content-Encoding: gzip` that inflates to `mb` MiB |
| `hugejson;mb=2048` | a non-streaming JSON answer of `mb` MiB (the content string), usage at the end |
| `slow;bps=1000000` | a stream produced at `bps` bytes per second, forever |
| `html` | `200 text/html` with a script, `Set-Cookie` and `Location` |
| `redirect` | `302` with `Location` and `Set-Cookie` and an HTML body |
| `status;code=401` | that status with the provider's JSON error (after reading the whole request body) |
| anything else | a small valid JSON chat completion |

`GET /_hostile/stats`: connections open and bytes written (after the kernel took them) per mode.

    python3 hostile.py --listen 127.0.0.1:0      # prints the port
"""

import argparse
import asyncio
import json
import sys
import zlib

MiB = 1024 * 1024
STATS = {"open": 0, "requests": 0, "sent": {}, "conns": {}}
_BOMBS = {}


def directives(spec):
    out = {}
    for d in spec.split(";"):
        d = d.strip()
        if d:
            k, _, v = d.partition("=")
            out[k.strip()] = v.strip()
    return out


def gzip_bomb(mb):
    if mb not in _BOMBS:
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = b"0" * MiB
        parts = [c.compress(b'{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"')]
        for _ in range(mb):
            parts.append(c.compress(zeros))
        parts.append(c.compress(b'"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'))
        parts.append(c.flush())
        _BOMBS[mb] = b"".join(parts)
    return _BOMBS[mb]


class Writer:
    def __init__(self, writer, mode, conn_id):
        self.w = writer
        self.mode = mode
        self.conn_id = conn_id

    async def raw(self, data):
        self.w.write(data)
        await self.w.drain()
        STATS["sent"][self.mode] = STATS["sent"].get(self.mode, 0) + len(data)
        STATS["conns"][self.conn_id] = STATS["conns"].get(self.conn_id, 0) + len(data)

    async def chunk(self, data):
        if data:
            await self.raw(b"%x\r\n" % len(data) + data + b"\r\n")

    async def end(self):
        await self.raw(b"0\r\n\r\n")


def head(status, headers):
    reason = {200: "OK", 302: "Found"}.get(status, "X")
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def events(anthropic, text_parts):
    """Start, content and end events of a stream, as bytes (content given as raw bytes)."""
    if anthropic:
        start = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_h","type":"message",'
                 b'"role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,'
                 b'"usage":{"input_tokens":10,"output_tokens":1}}}\n\n'
                 b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
                 b'"content_block":{"type":"text","text":""}}\n\n')

        def content(t):
            return (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                    b'"delta":{"type":"text_delta","text":"' + t + b'"}}\n\n')
        end = (b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
               b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
               b'"usage":{"output_tokens":20}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n')
        open_line = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'
        close_line = b'"}}\n\n'
    else:
        start = b'data: {"id":"chatcmpl-h","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'

        def content(t):
            return (b'data: {"id":"chatcmpl-h","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
                    b'"choices":[{"index":0,"delta":{"content":"' + t + b'"},"finish_reason":null}]}\n\n')
        end = (b'data: {"id":"chatcmpl-h","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
               b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
               b'"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}}\n\ndata: [DONE]\n\n')
        open_line = b'data: {"id":"chatcmpl-h","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"'
        close_line = b'"},"finish_reason":null}]}\n\n'
    return start, content, end, open_line, close_line


async def answer(w, method, path, hdrs):
    spec = directives(hdrs.get("x-hostile", ""))
    mode = next(iter(spec), "ok")
    w.mode = mode
    anthropic = path.split("?")[0].endswith("/messages")
    start, content, end, open_line, close_line = events(anthropic, None)
    sse = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
           ("Transfer-Encoding", "chunked")]
    block = b"x" * MiB
    if mode == "bigline":
        mb = int(spec.get("mb") or 64)
        await w.raw(head(200, sse))
        await w.chunk(start + open_line)
        for _ in range(mb):
            await w.chunk(block)
        await w.chunk(close_line + end)
        await w.end()
    elif mode == "nonewline":
        await w.raw(head(200, sse))
        await w.chunk(start + b"data: ")
        while True:
            await w.chunk(block)
    elif mode == "badutf8":
        await w.raw(head(200, sse))
        await w.chunk(start)
        for bad in (b"ok \xff\xfe bad", b"\xc3\x28 lone", b"\xed\xa0\x80 surrogate", b"cut \xe2\x82"):
            await w.chunk(content(bad))
        await w.chunk(end)
        await w.end()
    elif mode == "endless":
        rate = int(spec.get("rate") or 0)
        await w.raw(head(200, sse))
        await w.chunk(start)
        piece = b"".join(content(b"endless words %d" % i) for i in range(100))
        while True:
            await w.chunk(piece)
            if rate:
                await asyncio.sleep(len(piece) / rate)
    elif mode == "gzipbomb":
        mb = int(spec.get("mb") or 1024)
        body = gzip_bomb(mb)
        await w.raw(head(200, [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                               ("Content-Length", str(len(body)))]) + body)
    elif mode == "hugejson":
        mb = int(spec.get("mb") or 2048)
        pre = b'{"id":"chatcmpl-huge","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"'
        post = b'"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}}'
        if anthropic:
            pre = b'{"id":"msg_huge","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"'
            post = b'"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":20}}'
        total = len(pre) + mb * MiB + len(post)
        await w.raw(head(200, [("Content-Type", "application/json"), ("Content-Length", str(total))]) + pre)
        for _ in range(mb):
            await w.raw(block)
        await w.raw(post)
    elif mode == "slow":
        bps = int(spec.get("bps") or 1000000)
        await w.raw(head(200, sse))
        await w.chunk(start)
        piece = content(b"y" * 900)
        per_tick = max(1, bps // 20)
        while True:
            sent = 0
            while sent < per_tick:
                await w.chunk(piece)
                sent += len(piece)
            await asyncio.sleep(0.05)
    elif mode in ("html", "redirect"):
        body = (b"<!doctype html><html><head><title>pwned</title></head><body>"
                b"<script>document.title='xss:'+document.cookie;fetch('/api/keys')</script>"
                b"<h1>hello from the upstream</h1></body></html>")
        status = 200 if mode == "html" else 302
        await w.raw(head(status, [("Content-Type", "text/html; charset=utf-8"),
                                  ("Set-Cookie", "antix_session=attacker; Path=/; HttpOnly"),
                                  ("Set-Cookie", "__Host-antix_session=attacker; Path=/; Secure"),
                                  ("Location", "https://evil.example/phish"),
                                  ("Content-Length", str(len(body)))]) + body)
    elif mode == "status":
        code = int(spec.get("code") or 401)
        if anthropic:
            body = json.dumps({"type": "error", "error": {"type": "authentication_error",
                                                          "message": "invalid x-api-key"}}).encode()
        else:
            body = json.dumps({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                         "param": None, "code": "invalid_api_key"}}).encode()
        await w.raw(head(code, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]) + body)
    else:
        if anthropic:
            body = json.dumps({"id": "msg_ok", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                               "content": [{"type": "text", "text": "fine"}], "stop_reason": "end_turn",
                               "usage": {"input_tokens": 5, "output_tokens": 1}}).encode()
        else:
            body = json.dumps({"id": "chatcmpl-ok", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                                            "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}).encode()
        await w.raw(head(200, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]) + body)


async def read_body(reader, hdrs):
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return
            left = size + 2
            while left:
                left -= len(await reader.read(min(left, MiB)))
    else:
        left = int(hdrs.get("content-length", "0") or 0)
        while left:
            data = await reader.read(min(left, MiB))
            if not data:
                return
            left -= len(data)


_conn_ids = [0]


async def handle(reader, writer):
    STATS["open"] += 1
    _conn_ids[0] += 1
    conn_id = _conn_ids[0]
    try:
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                return
            lines = raw.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            hdrs = {}
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
            await read_body(reader, hdrs)
            STATS["requests"] += 1
            w = Writer(writer, "stats", conn_id)
            if path.startswith("/_hostile/stats"):
                # This very connection is not one the caller wants counted.
                data = json.dumps({**STATS, "open": STATS["open"] - 1}).encode()
                writer.write(head(200, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]) + data)
                await writer.drain()
                continue
            await answer(w, method, path, hdrs)
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    finally:
        STATS["open"] -= 1
        STATS["conns"].pop(conn_id, None)
        try:
            writer.close()
        except Exception:  # noqa: BLE001
            pass


async def amain(listen):
    host, _, port = listen.rpartition(":")
    server = await asyncio.start_server(handle, host or "127.0.0.1", int(port), backlog=4096, limit=4 * MiB)
    print(f"hostile upstream listening on {host}:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    args = ap.parse_args()
    try:
        asyncio.run(amain(args.listen))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
