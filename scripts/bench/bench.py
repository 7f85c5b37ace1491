#!/usr/bin/env python3
"""Runs the proxy benchmark (see scripts/bench.sh) and prints a Markdown table."""

import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("BENCH_BIN", ROOT / "target" / "release" / "antix"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TTFB_SAMPLES = int(os.environ.get("BENCH_TTFB_SAMPLES", "300"))
GATEWAY_CPU = os.environ.get("BENCH_GATEWAY_CPU", "0")
LOAD_CPU = os.environ.get("BENCH_LOAD_CPU", "1")

PLAIN = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the benchmark mock."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
})


def sse_events():
    chunk = lambda delta, finish=None: json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": None,
    }, separators=(",", ":"))
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": f" word{i}"}) for i in range(20)]
    events.append(chunk({}, "stop"))
    events.append(json.dumps({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1,
                              "model": "gpt-4o", "choices": [],
                              "usage": {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}},
                             separators=(",", ":")))
    events.append("[DONE]")
    return "".join(f"data: {e}\n\n" for e in events)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


MOCK_LOCATIONS = """
    location = /v1/chat/completions {{
      default_type application/json;
      return 200 '{plain}';
    }}
    # Static files refuse POST; the 405 is turned into an internal GET of the stream file.
    location = /v1/stream/chat/completions {{
      error_page 405 =200 /stream.sse;
      return 405;
    }}
    location = /stream.sse {{
      internal;
      root {dir};
      default_type text/event-stream;
    }}
"""

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_buffer_size 64k;
  log_format count '$status';
  upstream mock {{ server 127.0.0.1:{mock}; keepalive 256; }}
  # The mock, for direct calls and the bare proxy.
  server {{
    listen 127.0.0.1:{mock};
{locations}
  }}
  # The same mock for the gateway, logging each request so forwarded calls can be counted.
  server {{
    listen 127.0.0.1:{gwmock};
    access_log {dir}/gateway-upstream.log count;
{locations}
  }}
  # The floor: one hop with no logic.
  server {{
    listen 127.0.0.1:{proxy};
    location / {{
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""

LUA = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def peak_rss_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def parse_wrk(out):
    def ms(text):
        m = re.match(r"([\d.]+)(us|ms|s)", text)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"p50": ms(lat["50"]), "p99": ms(lat["99"]), "rps": rps, "requests": reqs,
            "errors": int(errors.group(1)) if errors else 0}


def wrk(url, lua, conns):
    out = run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{SECONDS}s", "--latency",
               "-s", lua, url]).stdout
    return parse_wrk(out)


def ttfb(port, path, key, body, samples):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                        "Authorization": f"Bearer {key}"})
        r = conn.getresponse()
        r.read(1)
        times.append((time.perf_counter() - t0) * 1000)
        r.read()
    conn.close()
    times.sort()
    return {"p50": statistics.median(times), "p99": times[int(len(times) * 0.99) - 1]}


def main():
    if not BIN.exists():
        sys.exit(f"{BIN} missing: run scripts/bench.sh")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="antix-bench-"))
    # nginx workers drop to an unprivileged user: they must be able to read the stream file.
    tmp.chmod(0o755)
    ports = {k: free_port() for k in ("mock", "gwmock", "proxy", "gateway")}
    sse = sse_events()
    (tmp / "stream.sse").write_text(sse)
    locations = MOCK_LOCATIONS.format(dir=tmp, plain=PLAIN)
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(dir=tmp, locations=locations, **ports))
    procs = []
    try:
        procs.append(subprocess.Popen(["taskset", "-c", LOAD_CPU, "nginx", "-c", str(tmp / "nginx.conf"),
                                       "-p", str(tmp)], stderr=subprocess.DEVNULL))
        wait_port(ports["mock"])
        env = {**os.environ, "ANTIX_LISTEN": f"127.0.0.1:{ports['gateway']}",
               "DATABASE_URL": f"sqlite://{tmp}/antix.db", "ANTIX_DATA_DIR": str(tmp),
               "ANTIX_MASTER_KEY": "22" * 32, "ANTIX_CONFIG": "", "ANTIX_LOG": "warn",
               "ANTIX_UPSTREAM_OPENAI": f"http://127.0.0.1:{ports['gwmock']}"}
        cli = lambda *a, stdin=None: run([str(BIN), *a], env=env, input=stdin).stdout
        cli("admin", "create", "--email", "bench@example.com", "--org", "Bench", stdin="benchmark password")
        cli("credential", "set", "--as", "bench@example.com", "--provider", "openai", stdin="sk-bench-upstream")
        endpoint = json.loads(cli("endpoint", "create", "--as", "bench@example.com", "--name", "bench",
                                  "--shared", "--json"))["id"]
        key = json.loads(cli("key", "create", "--as", "bench@example.com", "--name", "bench", "--json"))["key"]
        gateway = subprocess.Popen(["taskset", "-c", GATEWAY_CPU, str(BIN), "serve"], env=env,
                                   stderr=open(tmp / "gateway.log", "w"))
        procs.append(gateway)
        wait_port(ports["gateway"])

        plain_body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]})
        stream_body = json.dumps({"model": "gpt-4o", "stream": True,
                                  "messages": [{"role": "user", "content": "hello"}]})
        luas = {}
        for name, body in (("plain", plain_body), ("stream", stream_body)):
            luas[name] = tmp / f"{name}.lua"
            luas[name].write_text(LUA.format(body=body, key=key))
        ep = f"/v1/{endpoint}/openai"
        targets = {
            "direct": lambda kind: f"http://127.0.0.1:{ports['mock']}" + path_for(kind),
            "nginx proxy": lambda kind: f"http://127.0.0.1:{ports['proxy']}" + path_for(kind),
            "gateway": lambda kind: f"http://127.0.0.1:{ports['gateway']}{ep}" + path_for(kind),
        }
        scenarios = [("plain", 1), ("plain", 32), ("stream", 1), ("stream", 32)]
        # Warm up every path (connections, caches) before measuring.
        for kind, conns in scenarios:
            for url in targets.values():
                run(["wrk", "-t1", "-c4", "-d1s", "-s", str(luas[kind]), url(kind)])
        # The recorder's queue, sampled while the load runs.
        queue = {"max": 0, "max_bytes": 0, "stats": {}}
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{ports['gateway']}/healthz", timeout=2) as r:
                        t = json.load(r)["traces"]
                    queue["max"] = max(queue["max"], t["queued"])
                    queue["max_bytes"] = max(queue["max_bytes"], t["queued_bytes"])
                    queue["stats"] = t
                except Exception:
                    pass
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        results = {}
        gateway_requests = 0
        cpu_before = cpu_seconds(gateway.pid)
        for _ in range(ROUNDS):
            for kind, conns in scenarios:
                for name, url in targets.items():
                    r = wrk(url(kind), str(luas[kind]), conns)
                    results.setdefault((kind, conns, name), []).append(r)
                    if name == "gateway":
                        gateway_requests += r["requests"]
        cpu_used = cpu_seconds(gateway.pid) - cpu_before
        ttfbs = {}
        for _ in range(3):
            for name, port, prefix in (("direct", ports["mock"], ""), ("nginx proxy", ports["proxy"], ""),
                                       ("gateway", ports["gateway"], ep)):
                t = ttfb(port, prefix + path_for("stream"), key, stream_body, TTFB_SAMPLES // 3)
                ttfbs.setdefault(name, []).append(t)
        rss = peak_rss_mb(gateway.pid)
        sampling.set()
        sampler.join()

        # Every request the gateway forwarded must have its trace.
        db = sqlite3.connect(tmp / "antix.db")
        upstream_log = tmp / "gateway-upstream.log"
        forwarded = None
        stable_since, last = time.time(), -1
        while time.time() - stable_since < 2:
            count = db.execute("SELECT COUNT(*) FROM traces").fetchone()[0]
            if count != last:
                stable_since, last = time.time(), count
            time.sleep(0.2)
        traces = last
        forwarded = sum(1 for _ in open(upstream_log)) if upstream_log.exists() else 0
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=60)
        traces_after_stop = db.execute("SELECT COUNT(*) FROM traces").fetchone()[0]
        print_report(results, ttfbs, cpu_used, gateway_requests, rss, forwarded, traces, traces_after_stop, queue)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def path_for(kind):
    return "/v1/chat/completions" if kind == "plain" else "/v1/stream/chat/completions"


def med(rs, key):
    return statistics.median(r[key] for r in rs)


def print_report(results, ttfbs, cpu_used, gateway_requests, rss, forwarded, traces, traces_after_stop, queue):
    lines = [
        f"Proxy benchmark: {ROUNDS} interleaved rounds of {SECONDS} s per cell; gateway pinned to CPU "
        f"{GATEWAY_CPU}, wrk and the nginx mock on CPU {LOAD_CPU}. Medians across rounds.",
        "",
        "| call | conc. | target | req/s | p50 ms | p99 ms | added p50 vs direct | non-2xx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (kind, conns, name), rs in results.items():
        direct = med(results[(kind, conns, "direct")], "p50")
        added = med(rs, "p50") - direct
        lines.append(f"| {kind} | {conns} | {name} | {med(rs, 'rps'):,.0f} | {med(rs, 'p50'):.3f} | "
                     f"{med(rs, 'p99'):.3f} | {'' if name == 'direct' else f'{added * 1000:+.0f} µs'} | "
                     f"{sum(r['errors'] for r in rs)} |")
    lines += ["", "| stream TTFB (c=1) | p50 ms | p99 ms | vs bare proxy p50 |", "|---|---|---|---|"]
    proxy_p50 = statistics.median(t["p50"] for t in ttfbs["nginx proxy"])
    for name, ts in ttfbs.items():
        p50 = statistics.median(t["p50"] for t in ts)
        p99 = statistics.median(t["p99"] for t in ts)
        lines.append(f"| {name} | {p50:.3f} | {p99:.3f} | {(p50 - proxy_p50) * 1000:+.0f} µs |")
    lines += [
        "",
        f"- gateway CPU time per request (wrk runs, recording included): "
        f"{cpu_used / max(gateway_requests, 1) * 1e6:.1f} µs ({gateway_requests:,} requests, {cpu_used:.1f} CPU s)",
        f"- gateway peak RSS: {rss:.1f} MiB; recorder queue at most {queue['max']:,} traces "
        f"({queue['max_bytes'] / 1048576:.1f} MiB of bodies); bodies dropped under overload: "
        f"{queue['stats'].get('dropped_bodies', 0)}; spooled: {queue['stats'].get('spooled', 0)}",
        f"- requests the gateway forwarded upstream: {forwarded:,}; traces stored: {traces:,} "
        f"(after SIGTERM: {traces_after_stop:,}); missing: {max(forwarded - traces_after_stop, 0)}",
    ]
    text = "\n".join(lines)
    print(text)
    out = ROOT / "target" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
