"""Benchmark: what ollama-mcp adds on top of Ollama, against a direct baseline and an SDK peer.

    python bench/run.py                   # deterministic fake Ollama (tests/fake_ollama.py)
    python bench/run.py --ollama URL      # a real Ollama instead (model: --model)
    python bench/run.py --smoke           # tiny counts: checks that the benchmark works

Everything runs in separate processes on this machine: the fake Ollama, ollama-mcp
(`python ollama_mcp.py`), and the peer (bench/peer_fastmcp.py, the same tools on the official
SDK's MCPServer, formerly FastMCP). The baseline is the same call made directly to Ollama over
a keep-alive connection. Figures are reported as differences and ratios against the baseline
and the peer measured in the same run, because a shared machine is noisy.
Writes a Markdown table to stdout and JSON (plus the table) to bench/results/.
"""

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCEPT = "application/json, text/event-stream"
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}


# --- processes ------------------------------------------------------------------------------


class Proc:
    """A child process whose stderr/stdout is drained in a thread; `wait_for` reads a ready line."""

    def __init__(self, args, env=None, ready="URL="):
        self.started = time.perf_counter()
        environ = {**os.environ, **(env or {})}
        environ = {k: v for k, v in environ.items() if v != ""}
        self.p = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ, cwd=ROOT
        )
        self.lines = []
        self._ready = threading.Event()
        self._marker = ready
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.p.stdout:
            self.lines.append(line)
            if self._marker in line:
                self._ready.set()

    def wait_ready(self, timeout=30):
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("process did not start:\n" + "".join(self.lines[-20:]))
        line = next(line for line in self.lines if self._marker in line)
        return line

    def rss_mb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def threads(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def start_fake():
    proc = Proc([sys.executable, str(ROOT / "tests" / "fake_ollama.py")], ready="FAKE_OLLAMA_URL=")
    return proc, proc.wait_ready().strip().split("=", 1)[1]


def ours_env():
    """The limits out of the way (every benchmark client is one address): speed is measured."""
    return {
        "MCP_RATE_LIMIT": "0",
        "MCP_MAX_CONCURRENT": "512",
        "MCP_MAX_CONCURRENT_PER_CLIENT": "512",
        "MCP_MAX_CONNECTIONS": "2000",
        "MCP_MAX_CONNECTIONS_PER_CLIENT": "2000",
        "MCP_MAX_SESSIONS_PER_CLIENT": "2000",
        "MCP_BATCH_MAX_CONCURRENCY": "8",
        "MCP_TOOLS_DIR": str(ROOT / "bench" / "no-packs"),
    }


# How ollama-mcp is started. A script is compiled from source at every start (about 40 ms and
# 11 MB of compiler memory that stays resident); `python -m` loads the cached bytecode.
START_MODES = {
    "script": lambda: [sys.executable, str(ROOT / "ollama_mcp.py")],
    "module": lambda: [sys.executable, "-m", "ollama_mcp"],
}


def start_ours(ollama_url, mode="module"):
    env = ours_env()
    if mode == "module":
        env["PYTHONDONTWRITEBYTECODE"] = ""  # Python's default: use and keep the bytecode cache
    args = START_MODES[mode]() + ["--host", "127.0.0.1", "--port", "0", "--ollama-url", ollama_url]
    proc = Proc(args, env=env, ready="serving MCP on http://")
    line = proc.wait_ready()
    return proc, "http://" + line.split("http://", 1)[1].split(" ", 1)[0]


def start_peer(ollama_url):
    proc = Proc(
        [sys.executable, str(ROOT / "bench" / "peer_fastmcp.py"), "--port", "0", "--ollama-url", ollama_url],
        ready="PEER_URL=",
    )
    url = proc.wait_ready().strip().split("=", 1)[1]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the URL is printed before uvicorn accepts
        try:
            McpConn(url).initialize()
            return proc, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("peer did not answer")


# --- clients ----------------------------------------------------------------------------------


class _QuickAckConnection(http.client.HTTPConnection):
    """Keep-alive, Nagle off, and ACKs sent at once: servers that write a response in several
    pieces (uvicorn) otherwise wait ~40 ms on a delayed ACK, which would measure TCP, not them."""

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def getresponse(self):
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        response = super().getresponse()
        response.fp = _QuickAckReader(response.fp, self.sock)
        return response


class _QuickAckReader:
    """Re-arms TCP_QUICKACK (Linux clears it) before every read of a response body."""

    def __init__(self, fp, sock):
        self._fp = fp
        self._sock = sock

    def __getattr__(self, name):
        attr = getattr(self._fp, name)
        if name in ("read", "readline", "read1", "readinto", "peek"):

            def rearmed(*args, **kwargs):
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                return attr(*args, **kwargs)

            return rearmed
        return attr


def connect(host, port):
    return _QuickAckConnection(host, port, timeout=120)


MODERN = "2026-07-28"
MODERN_META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


class McpConn:
    """A minimal MCP Streamable HTTP client on one keep-alive connection (http.client), in the
    handshake era (initialize, a session) or the stateless one (`stateless=True`: the envelope
    in every request's _meta and the headers that mirror it)."""

    def __init__(self, url, stateless=False):
        u = urllib.parse.urlsplit(url)
        self.path = u.path
        self.address = (u.hostname, u.port)
        self.conn = connect(*self.address)
        self.used = time.monotonic()
        self.headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
        self.ids = iter(range(1, 10**9))
        self.stateless = stateless

    def initialize(self):
        if self.stateless:
            return self
        self.conn.request("POST", self.path, json.dumps(INIT), self.headers)
        r = self.conn.getresponse()
        session = r.getheader("Mcp-Session-Id")
        list(self._messages(r))
        self.headers.update({"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
        self.conn.request(
            "POST", self.path, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), self.headers
        )
        self.conn.getresponse().read()
        return self

    def _messages(self, r):
        """(arrival time, message) for every message of a response, as they arrive."""
        if r.getheader("Content-Type", "").startswith("application/json"):
            body = r.read()
            yield time.perf_counter(), json.loads(body) if body else None
            return
        while True:
            line = r.readline()
            if not line:
                return
            if line.startswith(b"data: "):
                yield time.perf_counter(), json.loads(line[6:])

    def reconnect_if_idle(self, seconds=4.0):
        """A new connection when this one idled long enough for the server to close it (as HTTP
        clients do; uvicorn closes after 5 s), outside the measured time. The session stays."""
        if time.monotonic() - self.used > seconds:
            self.conn.close()
            self.conn = connect(*self.address)

    def call(self, name, arguments, progress=False):
        """Return (first progress arrival or None, final arrival, final message, progress count)."""
        self.used = time.monotonic()
        params = {"name": name, "arguments": arguments}
        meta = {"progressToken": 1} if progress else {}
        headers = self.headers
        if self.stateless:
            meta.update(MODERN_META)
            headers = {**headers, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": name}
        if meta:
            params["_meta"] = meta
        self.conn.request(
            "POST",
            self.path,
            json.dumps({"jsonrpc": "2.0", "id": next(self.ids), "method": "tools/call", "params": params}),
            headers,
        )
        r = self.conn.getresponse()
        first, count, final = None, 0, None
        for at, msg in self._messages(r):
            if "method" in msg:
                count += 1
                first = first or at
            else:
                final = (at, msg)
        self.used = time.monotonic()
        if final is None or "error" in final[1] or final[1]["result"].get("isError"):
            raise RuntimeError(f"{name} failed: {final}")
        return first, final[0], final[1], count


class Direct:
    """The baseline: the same Ollama call, straight to Ollama on one keep-alive connection."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.conn = connect(u.hostname, u.port)

    def tags(self):
        self.conn.request("GET", "/api/tags")
        return json.loads(self.conn.getresponse().read())

    def generate_stream(self, model, prompt, options):
        """(first chunk arrival, last chunk arrival, chunks)."""
        self.conn.request(
            "POST",
            "/api/generate",
            json.dumps({"model": model, "prompt": prompt, "options": options}),
            {"Content-Type": "application/json"},
        )
        r = self.conn.getresponse()
        first, count = None, 0
        while True:
            line = r.readline()
            if not line:
                break
            last = time.perf_counter()
            if json.loads(line).get("response"):  # a token, as the MCP clients count them
                count += 1
                first = first or last
        return first, last, count

    def generate(self, model, prompt, options):
        self.conn.request(
            "POST",
            "/api/generate",
            json.dumps({"model": model, "prompt": prompt, "options": options, "stream": False}),
            {"Content-Type": "application/json"},
        )
        return json.loads(self.conn.getresponse().read())


def set_fake(url, **knobs):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("POST", "/_fake/config", json.dumps(knobs), {"Content-Type": "application/json"})
    conn.getresponse().read()
    conn.close()


# --- scenarios ----------------------------------------------------------------------------------


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def latency(make_call, count):
    """p50 and p99 of `count` sequential calls, in ms (after a short warm-up)."""
    for _ in range(min(20, count)):
        make_call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        make_call()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(pct(samples, 50), 3), "p99_ms": round(pct(samples, 99), 3), "n": count}


def throughput(make_worker, concurrency, seconds):
    """Calls per second with `concurrency` threads, each with its own connection."""
    counts = [0] * concurrency
    stop = threading.Event()
    ready = threading.Barrier(concurrency + 1)

    def run(i):
        call = make_worker()
        call()
        ready.wait()
        while not stop.is_set():
            call()
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    ready.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    return round(sum(counts) / (time.perf_counter() - started), 1)


def sample_rss(proc, stop, out):
    while not stop.is_set():
        out.append(proc.rss_mb())
        time.sleep(0.05)


def list_throughput(proc, url, concurrency, seconds, rss_samples):
    """list_models calls/s against an MCP server, sampling its resident memory meanwhile."""
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(proc, stop, rss_samples), daemon=True)
    sampler.start()
    try:
        return throughput(lambda: _caller(url, "ollama_list_models", {}), concurrency, seconds)
    finally:
        stop.set()
        sampler.join()


def scale(proc, url, model, small):
    """One machine's worth of clients: resident memory and threads with many idle keep-alive
    connections and with many streams at once; list_models latency while streams run.
    `small`: 4 streams of 20 tokens instead of 64 (and 32) of 100."""
    out = {}
    idle = [McpConn(url).initialize() for _ in range(200)]  # each answered, then left open
    time.sleep(0.3)
    out["idle"] = {"connections": len(idle), "rss_mb": round(proc.rss_mb(), 1), "threads": proc.threads()}
    for conn in idle:
        conn.conn.close()
    time.sleep(0.5)  # their threads end

    gen = {"model": model, "prompt": "Tell me a story", "options": {"num_predict": 20 if small else 100}}
    streams = 4 if small else 64
    peak = {"rss_mb": 0.0, "threads": 0}
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak["rss_mb"] = max(peak["rss_mb"], round(proc.rss_mb(), 1))
            peak["threads"] = max(peak["threads"], proc.threads())
            time.sleep(0.02)

    conns = [McpConn(url).initialize() for _ in range(streams)]
    go = threading.Barrier(streams + 1)
    notified = []

    failed = []

    def one(conn):
        go.wait()
        try:
            notified.append(conn.call("ollama_generate_stream", gen, progress=True)[3])
        except RuntimeError as e:  # an error result: counted, the others go on
            failed.append(str(e)[:300])

    workers = [threading.Thread(target=one, args=(c,)) for c in conns]
    watcher = threading.Thread(target=watch)
    for t in workers + [watcher]:
        t.start()
    go.wait()
    started = time.perf_counter()
    for t in workers:
        t.join(120)
    elapsed = time.perf_counter() - started
    done.set()
    watcher.join()
    out["streams"] = {
        "streams": streams,
        "tokens_each": gen["options"]["num_predict"],
        "seconds": round(elapsed, 3),
        "notifications": sum(notified),
        "failed": len(failed),
        "first_failure": failed[0] if failed else None,
        **peak,
    }
    for conn in conns:
        conn.conn.close()

    # list_models while streams run back to back on 32 connections. The streams' client is a
    # process of its own: in this one, its threads would hold the GIL the probe needs.
    running = 4 if small else 32
    load = subprocess.Popen(
        [sys.executable, __file__, "--stream-load", url, str(running), model, json.dumps(gen["options"])],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert load.stdout.readline().strip() == "streaming", "the stream load did not start"
        time.sleep(0.5)
        lister = McpConn(url).initialize()
        probe = latency(lambda: lister.call("ollama_list_models", {}), 30 if small else 300)
        out["list_under_streams"] = {"streams": running, **probe}
    finally:
        load.terminate()
        load.wait(30)
    return out


def stream_load(url, count, model, options):
    """`count` connections, each running streamed generations back to back until killed."""

    def loop(conn):
        while True:
            conn.call(
                "ollama_generate_stream",
                {"model": model, "prompt": "Tell me a story", "options": options},
                progress=True,
            )

    conns = [McpConn(url).initialize() for _ in range(count)]
    for conn in conns:
        threading.Thread(target=loop, args=(conn,), daemon=True).start()
    print("streaming", flush=True)
    threading.Event().wait()


def startup_time(start, runs):
    """Seconds from spawning the server to its first answered initialize (median)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc, url = start()
        while True:
            try:
                McpConn(url).initialize()
                break
            except OSError:
                time.sleep(0.002)
        times.append(time.perf_counter() - started)
        proc.stop()
    return round(statistics.median(times), 3)


def run(args):
    smoke = args.smoke
    n_latency = 30 if smoke else 400
    seconds = 0.3 if smoke else 3.0
    stream_runs = 1 if smoke else args.stream_runs or (3 if args.ollama else 9)
    tokens = 50 if smoke else args.tokens or (100 if args.ollama else 500)
    model = args.model
    fake_proc = None
    if args.ollama:
        ollama = args.ollama
    else:
        fake_proc, ollama = start_fake()
        set_fake(ollama, latency=args.latency, chunk_delay=0.0, tokens=tokens)
    subprocess.run(
        [sys.executable, "-c", "import ollama_mcp"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        check=True,
    )
    script, _ = start_ours(ollama, "script")
    time.sleep(0.5)
    results_script_rss = round(script.rss_mb(), 1)
    script.stop()
    ours, ours_url = start_ours(ollama)
    peer, peer_url = start_peer(ollama) if not args.no_peer else (None, None)
    results = {
        "machine": machine(),
        "ollama": "real"
        if args.ollama
        else f"fake (latency {args.latency * 1000:g} ms per request, {args.token_delay * 1000:g} ms per token)",
        "smoke": smoke,
    }
    try:
        time.sleep(0.3)
        results["rss_idle_mb"] = {
            "ours": round(ours.rss_mb(), 1),
            "ours_script": results_script_rss,
            "peer": round(peer.rss_mb(), 1) if peer else None,
        }

        # 1. list_models latency at concurrency 1
        direct = Direct(ollama)
        mine = McpConn(ours_url).initialize()
        results["list_latency"] = {
            "baseline": latency(direct.tags, n_latency),
            "ours": latency(lambda: mine.call("ollama_list_models", {}), n_latency),
        }
        stateless = McpConn(ours_url, stateless=True)
        results["list_latency"]["ours_stateless"] = latency(lambda: stateless.call("ollama_list_models", {}), n_latency)
        if peer:
            theirs = McpConn(peer_url).initialize()
            results["list_latency"]["peer"] = latency(lambda: theirs.call("ollama_list_models", {}), n_latency)

        # 2. list_models throughput at 1, 8, 32
        results["list_throughput"] = {}
        rss_load = {"ours": [], "peer": []}
        for c in (1, 8, 32):
            row = {"baseline": throughput(lambda: Direct(ollama).tags, c, seconds)}
            row["ours"] = list_throughput(ours, ours_url, c, seconds, rss_load["ours"])
            if peer:
                row["peer"] = list_throughput(peer, peer_url, c, seconds, rss_load["peer"])
            results["list_throughput"][str(c)] = row
        results["rss_load_mb"] = {k: round(max(v), 1) if v else None for k, v in rss_load.items()}

        # 3. generate_stream: first notification and added time per token
        gen_args = {"model": model, "prompt": "Tell me a long story", "options": {"num_predict": tokens}}
        results["stream"] = {}
        for label, delay in (("paced", args.token_delay), ("full_speed", 0.0)):
            if not args.ollama:
                set_fake(ollama, chunk_delay=delay)
            rows = {"baseline": [], "ours": [], "peer": []}
            conns = {name: McpConn(url).initialize() for name, url in (("ours", ours_url), ("peer", peer_url)) if url}
            for conn in conns.values():  # warm: each server's connection to Ollama is open
                conn.call("ollama_generate_stream", {**gen_args, "options": {"num_predict": 2}}, progress=True)
            for _ in range(stream_runs):  # paired: the baseline runs right before each server
                for name, conn in conns.items():
                    started = time.perf_counter()
                    first, last, count = direct.generate_stream(model, gen_args["prompt"], gen_args["options"])
                    rows["baseline"].append((first - started, last - started, count))
                    conn.reconnect_if_idle()  # a real Ollama's streams take seconds
                    started = time.perf_counter()
                    first, end, final, count = conn.call("ollama_generate_stream", gen_args, progress=True)
                    rows[name].append((first - started, end - started, count))
            summary = {}
            for name, runs in rows.items():
                if not runs:
                    continue
                summary[name] = {
                    "first_ms": round(statistics.median(r[0] for r in runs) * 1000, 3),
                    "total_ms": round(statistics.median(r[1] for r in runs) * 1000, 3),
                    "tokens": runs[0][2],
                }
            for name in conns:  # per run: extra time per token between first token and end
                pairs = zip(rows["baseline"][list(conns).index(name) :: len(conns)], rows[name], strict=False)
                summary[name]["added_per_token_us"] = round(
                    statistics.median(((m[1] - m[0]) - (b[1] - b[0])) / max(1, b[2] - 1) * 1e6 for b, m in pairs), 2
                )
            results["stream"][label] = summary
        if not args.ollama:
            set_fake(ollama, chunk_delay=args.token_delay)

        # 4. batch of 32 prompts versus 32 sequential calls
        prompts = [f"prompt {i}" for i in range(8 if smoke else 32)]
        batch_args = {"model": model, "prompts": prompts, "options": {"num_predict": 10}, "concurrency": 8}
        mine = McpConn(ours_url).initialize()  # the first one idled past MCP_CLIENT_TIMEOUT
        started = time.perf_counter()
        for p in prompts:
            mine.call("ollama_generate", {"model": model, "prompt": p, "options": {"num_predict": 10}})
        sequential = time.perf_counter() - started
        started = time.perf_counter()
        mine.call("ollama_batch_generate", batch_args)
        batch = time.perf_counter() - started
        started = time.perf_counter()
        mine.call("ollama_generate", {"model": model, "prompt": "one", "options": {"num_predict": 10}})
        single = time.perf_counter() - started
        results["batch"] = {
            "prompts": len(prompts),
            "concurrency": 8,
            "sequential_ms": round(sequential * 1000, 1),
            "batch_ms": round(batch * 1000, 1),
            "one_prompt_ms": round(single * 1000, 1),
            "rounds": -(-len(prompts) // 8),
        }
        if peer:
            theirs = McpConn(peer_url).initialize()
            started = time.perf_counter()
            theirs.call("ollama_batch_generate", batch_args)
            results["batch"]["peer_batch_ms"] = round((time.perf_counter() - started) * 1000, 1)
        # 5. scale: many idle connections, many streams, list_models while streams run
        small = smoke or bool(args.ollama)  # a real Ollama on a small machine generates a few streams at a time
        results["scale"] = {"ours": scale(ours, ours_url, model, small)}
        if peer:
            results["scale"]["peer"] = scale(peer, peer_url, model, small)
    finally:
        ours.stop()
        if peer:
            peer.stop()

    # 6. start-up to the first answered request
    runs = 1 if smoke else 5
    results["startup_s"] = {
        "ours": startup_time(lambda: start_ours(ollama), runs),
        "ours_script": startup_time(lambda: start_ours(ollama, "script"), runs),
    }
    if peer:
        results["startup_s"]["peer"] = startup_time(lambda: start_peer(ollama), runs)
    if fake_proc:
        fake_proc.stop()
    return results


def _caller(url, name, arguments):
    conn = McpConn(url).initialize()
    return lambda: conn.call(name, arguments)


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "system": platform.platform()}


# --- report -----------------------------------------------------------------------------------


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def versus(theirs, ours, good, bad):
    """How ours compares with theirs where smaller is better: '1.45x faster' or '2.10x slower'."""
    if not theirs or not ours or theirs <= 0 or ours <= 0:
        return "-"
    return f"{theirs / ours:.2f}x {good}" if theirs >= ours else f"{ours / theirs:.2f}x {bad}"


def report(r):
    lat, thr, st, batch = r["list_latency"], r["list_throughput"], r["stream"], r["batch"]
    peer = "peer" in lat
    rows = []

    def add(metric, ours, baseline, peer_value, vs_base, vs_peer, target, verdict):
        rows.append(f"| {metric} | {ours} | {baseline} | {peer_value} | {vs_base} | {vs_peer} | {target} | {verdict} |")

    added_p50 = lat["ours"]["p50_ms"] - lat["baseline"]["p50_ms"]
    add(
        "list_models p50 (ms)",
        lat["ours"]["p50_ms"],
        lat["baseline"]["p50_ms"],
        lat["peer"]["p50_ms"] if peer else "-",
        f"+{added_p50:.3f} ms",
        versus(lat["peer"]["p50_ms"], lat["ours"]["p50_ms"], "faster", "slower") if peer else "-",
        "≤ +0.7 ms",
        "met" if added_p50 <= 0.7 else "missed",
    )
    add(
        "list_models p99 (ms)",
        lat["ours"]["p99_ms"],
        lat["baseline"]["p99_ms"],
        lat["peer"]["p99_ms"] if peer else "-",
        f"+{lat['ours']['p99_ms'] - lat['baseline']['p99_ms']:.3f} ms",
        versus(lat["peer"]["p99_ms"], lat["ours"]["p99_ms"], "faster", "slower") if peer else "-",
        "",
        "",
    )
    if "ours_stateless" in lat:
        modern = lat["ours_stateless"]["p50_ms"]
        add(
            "list_models p50 (ms), protocol 2026-07-28",
            modern,
            lat["baseline"]["p50_ms"],
            "-",
            f"+{modern - lat['baseline']['p50_ms']:.3f} ms",
            f"handshake era {lat['ours']['p50_ms']} ms",
            "≤ the handshake era",
            "met" if modern <= lat["ours"]["p50_ms"] * 1.05 else "missed",
        )
    for c, row in thr.items():
        target, verdict = (
            ("≥ 2x peer", "met" if peer and row["ours"] >= 2 * row["peer"] else ("missed" if peer else ""))
            if c == "8"
            else ("", "")
        )
        add(
            f"list_models calls/s, {c} concurrent",
            row["ours"],
            row["baseline"],
            row.get("peer", "-"),
            ratio(row["ours"], row["baseline"]),
            ratio(row["ours"], row.get("peer")) if peer else "-",
            target,
            verdict,
        )
    for label, title in (("paced", "Ollama paced"), ("full_speed", "Ollama at full speed")):
        s = st[label]
        first_added = s["ours"]["first_ms"] - s["baseline"]["first_ms"]
        per_token = s["ours"]["added_per_token_us"]
        peer_token = s["peer"]["added_per_token_us"] if "peer" in s else None
        peer_first = s["peer"]["first_ms"] - s["baseline"]["first_ms"] if "peer" in s else None
        add(
            f"stream: first notification (ms), {title}",
            s["ours"]["first_ms"],
            s["baseline"]["first_ms"],
            s["peer"]["first_ms"] if "peer" in s else "-",
            f"+{first_added:.3f} ms",
            f"peer +{peer_first:.3f} ms" if peer_first is not None else "-",
            "≤ +1 ms" if label == "paced" else "",
            ("met" if first_added <= 1 else "missed") if label == "paced" else "",
        )
        add(
            f"stream: added per token (µs), {title}",
            f"{per_token:.1f}",
            "0",
            f"{peer_token:.1f}" if peer_token is not None else "-",
            f"{s['ours']['tokens']} notifications",
            versus(peer_token, per_token, "less", "more") if peer_token is not None else "-",
            "≤ 25 µs" if label == "paced" else "",
            ("met" if per_token <= 25 else "missed") if label == "paced" else "",
        )
    expected = batch["rounds"] * batch["one_prompt_ms"]
    add(
        f"batch of {batch['prompts']} (ms), concurrency {batch['concurrency']}",
        batch["batch_ms"],
        f"{batch['sequential_ms']} sequential",
        batch.get("peer_batch_ms", "-"),
        ratio(batch["sequential_ms"], batch["batch_ms"]) + " faster",
        f"{batch['rounds']} rounds × {batch['one_prompt_ms']} ms = {expected:.0f} ms",
        "≈ rounds × slowest",
        "met" if batch["batch_ms"] <= expected * 1.5 else "missed",
    )
    add(
        "resident memory idle (MB), python -m",
        r["rss_idle_mb"]["ours"],
        "-",
        r["rss_idle_mb"]["peer"] or "-",
        "",
        versus(r["rss_idle_mb"]["peer"], r["rss_idle_mb"]["ours"], "less", "more") if peer else "-",
        "≤ 40 MB",
        "met" if r["rss_idle_mb"]["ours"] <= 40 else "missed",
    )
    add(
        "resident memory idle (MB), python ollama_mcp.py",
        r["rss_idle_mb"]["ours_script"],
        "-",
        "-",
        "",
        "",
        "≤ 40 MB",
        "met" if r["rss_idle_mb"]["ours_script"] <= 40 else "missed",
    )
    add(
        "resident memory under load (MB)",
        r["rss_load_mb"]["ours"],
        "-",
        r["rss_load_mb"]["peer"] or "-",
        "",
        "",
        "",
        "",
    )
    if "scale" in r:
        ours_s, peer_s = r["scale"]["ours"], r["scale"].get("peer")
        idle = ours_s["idle"]
        per_conn = (idle["rss_mb"] - r["rss_idle_mb"]["ours"]) * 1024 / idle["connections"]
        add(
            f"{idle['connections']} idle keep-alive connections: memory (MB), threads",
            f"{idle['rss_mb']}, {idle['threads']}",
            "-",
            f"{peer_s['idle']['rss_mb']}, {peer_s['idle']['threads']}" if peer_s else "-",
            f"{per_conn:.0f} KB per connection",
            versus(peer_s["idle"]["rss_mb"], idle["rss_mb"], "less", "more") if peer_s else "-",
            "≤ 64 KB per connection",
            "met" if per_conn <= 64 else "missed",
        )
        many = ours_s["streams"]
        delivered = many["notifications"] == many["streams"] * many["tokens_each"]
        add(
            f"{many['streams']} streams at once: seconds, peak memory (MB), peak threads",
            f"{many['seconds']}, {many['rss_mb']}, {many['threads']}",
            "-",
            f"{peer_s['streams']['seconds']}, {peer_s['streams']['rss_mb']}, {peer_s['streams']['threads']}"
            + (f"; {peer_s['streams']['failed']} failed" if peer_s["streams"]["failed"] else "")
            if peer_s
            else "-",
            f"{many['notifications']} notifications" + (f", {many['failed']} failed" if many["failed"] else ""),
            versus(peer_s["streams"]["seconds"], many["seconds"], "faster", "slower") if peer_s else "-",
            "all delivered, ≤ the peer's time",
            "met" if delivered and (not peer_s or many["seconds"] <= peer_s["streams"]["seconds"]) else "missed",
        )
        under = ours_s["list_under_streams"]
        add(
            f"list_models p50 / p99 (ms) while {under['streams']} streams run",
            f"{under['p50_ms']} / {under['p99_ms']}",
            "-",
            f"{peer_s['list_under_streams']['p50_ms']} / {peer_s['list_under_streams']['p99_ms']}" if peer_s else "-",
            f"idle p99 {lat['ours']['p99_ms']} ms",
            versus(peer_s["list_under_streams"]["p99_ms"], under["p99_ms"], "faster", "slower") if peer_s else "-",
            "p99 ≤ the peer's",
            ("met" if under["p99_ms"] <= peer_s["list_under_streams"]["p99_ms"] else "missed") if peer_s else "",
        )
    add(
        "start-up to first answer (s), python -m",
        r["startup_s"]["ours"],
        "-",
        r["startup_s"].get("peer", "-"),
        "",
        versus(r["startup_s"].get("peer"), r["startup_s"]["ours"], "faster", "slower") if peer else "-",
        "≤ 0.3 s",
        "met" if r["startup_s"]["ours"] <= 0.3 else "missed",
    )
    add(
        "start-up to first answer (s), python ollama_mcp.py",
        r["startup_s"]["ours_script"],
        "-",
        "-",
        "",
        "",
        "≤ 0.3 s",
        "met" if r["startup_s"]["ours_script"] <= 0.3 else "missed",
    )
    m = r["machine"]
    head = [
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}; Ollama: {r['ollama']}.",
        "",
        "| metric | ollama-mcp | baseline (direct) | peer (SDK MCPServer) | ours vs baseline | ours vs peer | target "
        "| |",
        "|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + rows) + "\n"


def main():
    p = argparse.ArgumentParser(description="Benchmark ollama-mcp against direct Ollama calls and an SDK peer.")
    p.add_argument("--ollama", help="a real Ollama URL instead of the fake")
    p.add_argument("--model", default="gemma3:270m")
    p.add_argument("--latency", type=float, default=0.001, help="fake: seconds per request (default 1 ms)")
    p.add_argument("--token-delay", type=float, default=0.001, help="fake: seconds per streamed token (default 1 ms)")
    p.add_argument("--tokens", type=int, help="tokens per measured stream (default 500; 100 with --ollama)")
    p.add_argument("--stream-runs", type=int, help="paired stream runs (default 9; 3 with --ollama)")
    p.add_argument("--smoke", action="store_true", help="tiny counts, to check the benchmark runs")
    p.add_argument("--no-peer", action="store_true", help="skip the SDK peer")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    p.add_argument("--stream-load", nargs=4, metavar=("URL", "COUNT", "MODEL", "OPTIONS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stream_load:
        url, count, model, options = args.stream_load
        return stream_load(url, int(count), model, json.loads(options))
    results = run(args)
    table = report(results)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(table)
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
