"""Load and faults: many streams with random cancels and disconnects, Ollama dying, a killed server."""

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, iter_sse, wait_for

STREAMS = [
    ("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}),
    ("ollama_chat_stream", {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}]}),
]


@pytest.mark.slow
def test_many_streams_with_random_cancels_and_disconnects_leak_nothing(start_server, fake):
    server = start_server(rate_limit=0, max_concurrent_per_client=64, max_concurrent=64)
    fake.chunk_delay = 0.02
    baseline_threads = threading.active_count()
    rng = random.Random(1234)
    outcomes = {"completed": 0, "cancelled": 0, "disconnected": 0}
    lock = threading.Lock()

    def worker(n):
        client = server.client()
        client.initialize()
        for i in range(4):
            action = rng.choice(["complete", "cancel", "disconnect"])
            msg_id = n * 100 + i
            tool, args = rng.choice(STREAMS)
            r = client.post(
                {
                    "jsonrpc": "2.0",
                    "id": msg_id,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": args, "_meta": {"progressToken": msg_id}},
                },
                stream=True,
            )
            events = iter_sse(r)
            stop_after = rng.randint(1, 5)
            final = None
            for count, event in enumerate(events, 1):
                message = json.loads(event["data"])
                if "id" in message:
                    final = message
                    break
                if action != "complete" and count >= stop_after:
                    if action == "cancel":
                        client.post(
                            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": msg_id}}
                        )
                        rest = [json.loads(e["data"]) for e in events]
                        final = next((m for m in rest if "id" in m), None)
                    else:
                        r.close()
                    break
            with lock:
                if final is not None:
                    assert final["result"]["isError"] is False
                    outcomes["completed"] += 1
                else:
                    outcomes["cancelled" if action == "cancel" else "disconnected"] += 1
            r.close()
        client.http.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(outcomes.values()) == 64
    assert outcomes["cancelled"] > 0 and outcomes["disconnected"] > 0 and outcomes["completed"] > 0
    assert wait_for(lambda: fake.open_streams == 0), f"open Ollama streams left: {fake.open_streams}"
    assert fake.streams_started == fake.streams_finished + fake.streams_aborted
    assert wait_for(lambda: server.mcp.slots.running == 0)
    assert wait_for(lambda: len(server.mcp.calls) == 0)
    server.mcp.ollama.close()  # idle keep-alive connections to Ollama hold a thread in the fake
    assert wait_for(lambda: threading.active_count() <= baseline_threads + 2), (
        f"threads: {threading.active_count()} vs {baseline_threads}"
    )


def test_ollama_dying_mid_stream_then_coming_back(start_server, fake):
    server = start_server()
    client = server.client()
    client.initialize()
    fake.chunk_delay = 0.1
    port = fake.port
    r = client.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id=1)
    events = iter_sse(r)
    next(events)
    fake.die_after_chunks = 0  # the next chunk kills the connection, as a crashing Ollama would
    messages = [json.loads(e["data"]) for e in events]
    final = messages[-1]
    assert final["result"]["isError"] is True
    assert "closed the connection" in final["result"]["content"][0]["text"]
    fake.stop()
    result, _ = client.call("ollama_list_models")
    assert result["isError"] is True and "not reachable" in result["content"][0]["text"]
    fake.start(port)
    fake.chunk_delay = 0
    result, _ = client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})
    assert result["isError"] is False


WRITER = r"""
import sys, json
sys.path.insert(0, sys.argv[1])
import ollama_mcp
store = ollama_mcp.ContextStore(sys.argv[2], 1_000_000, 100_000_000)
i = 0
while True:
    store.save("", "c%d" % (i % 5), [{"role": "user", "content": "message %d " % i + "x" * 500}], append=True)
    print(i, flush=True)
    i += 1
"""


def test_context_store_survives_a_killed_process(tmp_path):
    db = tmp_path / "contexts.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(ROOT), str(db)], stdout=subprocess.PIPE, text=True)
    acknowledged = -1
    deadline = time.monotonic() + 20
    while acknowledged < 300 and time.monotonic() < deadline:
        acknowledged = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    import ollama_mcp

    store = ollama_mcp.ContextStore(str(db), 1_000_000, 100_000_000)
    total = sum(store.load("", f"c{k}")["count"] for k in range(5))
    assert total >= acknowledged + 1, "every save that returned is on disk"
    contents = {m["content"].split(" x")[0] for k in range(5) for m in store.load("", f"c{k}")["messages"]}
    assert {f"message {i}" for i in range(acknowledged + 1)} <= contents


@pytest.mark.slow
def test_server_process_killed_keeps_saved_contexts(fake, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MCP_TOOLS_DIR": str(tmp_path), "MCP_DATA_DIR": str(tmp_path / "data")}
    cmd = [sys.executable, str(ROOT / "ollama_mcp.py"), "--transport", "stdio", "--ollama-url", fake.url]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path
    )
    save = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "ollama_save_context",
            "arguments": {"session_id": "kept", "messages": [{"role": "user", "content": "before the crash"}]},
        },
    }
    proc.stdin.write((json.dumps(save) + "\n").encode())
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["result"]["isError"] is False
    proc.kill()
    proc.wait(10)
    for stream in (proc.stdin, proc.stdout):
        stream.close()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path
    )
    load = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "ollama_load_context", "arguments": {"session_id": "kept"}},
    }
    proc.stdin.write((json.dumps(load) + "\n").encode())
    proc.stdin.flush()
    reply = json.loads(proc.stdout.readline())
    proc.communicate(timeout=20)
    assert reply["result"]["structuredContent"]["messages"][0]["content"] == "before the crash"
