"""Benchmark: what shared state on Redis (MCP_STATE_URL, issue 22) costs per call and per context.

    python bench/replicas.py              # 300 calls per scenario, 1,000 saved contexts
    python bench/replicas.py --smoke      # tiny counts: checks that the benchmark works

One process holds the fake Ollama (tests/fake_ollama.py) and two ollama-mcp HTTP servers on it,
one without MCP_STATE_URL and one with it, naming a redis-server of its own (a free loopback
port, no persistence). The same calls go to both over MCP on a keep-alive connection (bench/run.py's
client), plus the direct call to the fake as the baseline: (a) ollama_list_models in the stateless
2026-07-28 era, (b) the same in a handshake-era session (the session is looked up in Redis),
(c) ollama_save_context and ollama_load_context. Then Redis's memory per saved context: INFO
used_memory before and after saving N contexts, and MEMORY USAGE of one context's hash.
With Redis, each scenario also counts the Redis commands per call (INFO commandstats).
Writes bench/results/replicas.json (and .md) and prints a Markdown table. Needs redis-server
(apt-get install redis-server) and the redis package (pip install -r requirements-redis.txt).
"""

import argparse
import json
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from run import Direct, McpConn, pct  # noqa: E402

import ollama_mcp  # noqa: E402
from fake_ollama import FakeOllama  # noqa: E402

REDIS = shutil.which("redis-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(folder):
    import redis

    port = free_port()
    args = [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args + ["--dir", str(folder)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return proc, url, client
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


class Server:
    """An ollama-mcp HTTP server in a thread of this process (as tests/conftest.py's LiveServer)."""

    def __init__(self, fake_url, data_dir, **overrides):
        import threading

        config = ollama_mcp.Config(
            host="127.0.0.1",
            port=0,
            ollama_url=fake_url,
            ollama_retries=0,
            tools_dir=str(ROOT / "bench" / "no-packs"),
            data_dir=str(data_dir),
            rate_limit=0,  # every benchmark client is one address: the limits out of the way
            max_concurrent=512,
            max_concurrent_per_client=512,
            max_connections=2000,
            max_connections_per_client=2000,
            max_sessions_per_client=2000,
            context_max_count=1_000_000,
            **overrides,
        )
        self.srv = ollama_mcp.make_http_server(config)
        self.url = f"http://127.0.0.1:{self.srv.port}/mcp"
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self):
        mcp = self.srv.app.server
        mcp.cancel_all()
        self.srv.shutdown()
        self.srv.server_close()
        mcp.close()


def messages_of(count, chars):
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": (f"message {i} " + "x" * chars)[:chars]} for i in range(count)]


def scenarios(url, messages):
    """name -> a zero-argument call on its own keep-alive connection to `url`."""
    stateless = McpConn(url, stateless=True)
    session = McpConn(url).initialize()
    saver = McpConn(url).initialize()
    save_args = {"session_id": "bench-latency", "messages": messages}
    saver.call("ollama_save_context", save_args)
    return {
        "list_stateless": lambda: stateless.call("ollama_list_models", {}),
        "list_session": lambda: session.call("ollama_list_models", {}),
        "save_context": lambda: saver.call("ollama_save_context", save_args),
        "load_context": lambda: saver.call("ollama_load_context", {"session_id": "bench-latency"}),
    }


def redis_commands(client):
    """Commands Redis has run so far by name, not counting the INFO that asks (Redis 7 counts the
    commands a Lua script runs too, so these are not all round trips: EVALSHA is one each)."""
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items() if k != "cmdstat_info"}


def latency(fake_url, plain, shared, messages, count, warmup, rounds, client):
    """Each scenario on both servers, alternating in `rounds` blocks so drift hits both alike;
    with Redis, also the Redis commands each call ran (INFO commandstats around the blocks)."""
    direct = Direct(fake_url)
    calls = {"without": scenarios(plain.url, messages), "with": scenarios(shared.url, messages)}
    per_block = max(1, count // rounds)
    pooled, commands = {}, {}
    for name in ["direct"] + list(calls["without"]):
        for side in ("without", "with"):
            pooled.setdefault(name, {})[side] = []
    for _ in range(rounds):
        for name in pooled:
            for side in ("without", "with"):
                call = direct.tags if name == "direct" else calls[side][name]
                ran = redis_commands(client)
                for _ in range(warmup):
                    call()
                for _ in range(per_block):
                    started = time.perf_counter()
                    call()
                    pooled[name][side].append((time.perf_counter() - started) * 1000)
                if side == "with":
                    now, made = redis_commands(client), warmup + per_block
                    delta = {k: (v - ran.get(k, 0)) / made for k, v in now.items() if v != ran.get(k, 0)}
                    commands.setdefault(name, []).append(delta)
    out = {}
    for name, sides in pooled.items():
        if name == "direct":
            samples = sides["without"] + sides["with"]
            out[name] = {"p50_ms": round(pct(samples, 50), 3), "p90_ms": round(pct(samples, 90), 3), "n": len(samples)}
            continue
        row = {}
        for side, samples in sides.items():
            row[side] = {q: round(pct(samples, n), 3) for q, n in (("p50_ms", 50), ("p90_ms", 90))} | {
                "n": len(samples)
            }
        row["added_p50_ms"] = round(row["with"]["p50_ms"] - row["without"]["p50_ms"], 3)
        row["added_p90_ms"] = round(row["with"]["p90_ms"] - row["without"]["p90_ms"], 3)
        row["ratio_p50"] = round(row["with"]["p50_ms"] / row["without"]["p50_ms"], 3)
        blocks = commands[name]
        names = sorted({k for block in blocks for k in block})
        by_name = {k: round(sum(block.get(k, 0) for block in blocks) / len(blocks), 2) for k in names}
        row["redis_commands_per_call"] = round(sum(by_name.values()), 2)
        row["redis_commands_by_name"] = by_name
        out[name] = row
    return out


def memory(url, client, prefix, messages, count):
    """Redis's used_memory before and after `count` contexts of `messages` saved through MCP."""
    conn = McpConn(url, stateless=True)
    conn.call("ollama_save_context", {"session_id": "mem-warm", "messages": messages})  # keys, scripts
    conn.call("ollama_clear_context", {"session_id": "mem-warm"})
    time.sleep(0.2)
    before = client.info("memory")["used_memory"]
    for i in range(count):
        conn.call("ollama_save_context", {"session_id": f"mem-{i:06d}", "messages": messages})
    time.sleep(0.2)
    after = client.info("memory")["used_memory"]
    payload = len(ollama_mcp.dumps(messages).encode())
    hashes = list(client.scan_iter(match=f"{prefix}*ctx:*mem-000000", count=1000))
    one = client.memory_usage(hashes[0], samples=0) if hashes else None
    per = (after - before) / count
    return {
        "contexts": count,
        "messages_per_context": len(messages),
        "payload_json_bytes": payload,
        "used_memory_before": before,
        "used_memory_after": after,
        "bytes_per_context": round(per, 1),
        "overhead_bytes_per_context": round(per - payload, 1),
        "ratio_to_payload": round(per / payload, 3),
        "memory_usage_one_hash": one,
        "one_hash_key": hashes[0].decode() if hashes else None,
        "redis_version": client.info("server")["redis_version"],
    }


def table(results):
    lat, mem = results["latency"], results["memory"]
    lines = [
        "| scenario | without Redis p50 / p90 (ms) | with Redis p50 / p90 (ms) | added p50 (ms) | ratio p50 "
        "| Redis commands per call |",
        "|---|---|---|---|---|---|",
        f"| direct fake /api/tags (baseline) | {lat['direct']['p50_ms']} / {lat['direct']['p90_ms']} | | | | |",
    ]
    for name in ("list_stateless", "list_session", "save_context", "load_context"):
        r = lat[name]
        lines.append(
            f"| {name} | {r['without']['p50_ms']} / {r['without']['p90_ms']} | {r['with']['p50_ms']} / "
            f"{r['with']['p90_ms']} | {r['added_p50_ms']:+} | {r['ratio_p50']} | {r['redis_commands_per_call']} |"
        )
    lines += [
        "",
        "| Redis memory per saved context | value |",
        "|---|---|",
        f"| contexts saved | {mem['contexts']} ({mem['messages_per_context']} messages each) |",
        f"| JSON payload (bytes) | {mem['payload_json_bytes']} |",
        f"| used_memory delta per context (bytes) | {mem['bytes_per_context']} |",
        f"| overhead over payload (bytes, ratio) | {mem['overhead_bytes_per_context']} ({mem['ratio_to_payload']}x) |",
        f"| MEMORY USAGE of one context hash (bytes) | {mem['memory_usage_one_hash']} |",
    ]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description="Per-call latency and per-context memory of MCP_STATE_URL (Redis).")
    p.add_argument("--calls", type=int, default=300, help="measured calls per scenario and side")
    p.add_argument("--warmup", type=int, default=30, help="unmeasured calls before each block")
    p.add_argument("--rounds", type=int, default=3, help="alternating blocks the calls are split into")
    p.add_argument("--contexts", type=int, default=1000, help="contexts saved for the memory figure")
    p.add_argument("--messages", type=int, default=10, help="messages per context")
    p.add_argument("--chars", type=int, default=100, help="characters per message")
    p.add_argument("--smoke", action="store_true", help="tiny counts: checks that the benchmark works")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "replicas.json")
    a = p.parse_args()
    if a.smoke:
        a.calls, a.warmup, a.rounds, a.contexts = 10, 2, 1, 20
    if REDIS is None:
        sys.exit("no redis-server (apt-get install redis-server)")
    messages = messages_of(a.messages, a.chars)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        redis_proc, redis_url, client = start_redis(tmp)
        fake = FakeOllama().start()
        servers = []
        try:
            plain = Server(fake.url, tmp / "plain")
            shared = Server(fake.url, tmp / "shared", state_url=redis_url, state_prefix="bench:")
            servers += [plain, shared]
            results = {"latency": latency(fake.url, plain, shared, messages, a.calls, a.warmup, a.rounds, client)}
            mem_server = Server(fake.url, tmp / "mem", state_url=redis_url, state_prefix="benchmem:")
            servers.append(mem_server)
            results["memory"] = memory(mem_server.url, client, "benchmem:", messages, a.contexts)
        finally:
            for server in servers:
                server.stop()
            fake.stop()
            redis_proc.terminate()
            redis_proc.wait(10)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    results["settings"] = {k: getattr(a, k) for k in ("calls", "warmup", "rounds", "contexts", "messages", "chars")}
    text = table(results)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2) + "\n")
    a.out.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
