"""Streaming and cancellation with real timing: real sockets on both sides."""

import http.client
import json
import os
import socket
import threading
import time

import pytest

from conftest import ACCEPT, INIT, iter_sse, process_env, start_process, wait_for

STREAM_ARGS = {"model": "gemma3:270m", "prompt": "Tell me a story"}


def start_stream(client, tool="ollama_generate_stream", args=STREAM_ARGS, msg_id=77, token="tok"):
    params = {"name": tool, "arguments": args}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return client.post({"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": params}, stream=True)


@pytest.mark.slow
def test_tokens_arrive_as_they_are_generated(client, fake):
    fake.chunk_delay = 0.15  # 9 tokens: the whole answer takes about 1.5 s
    started = time.monotonic()
    r = start_stream(client)
    arrivals = []
    for event in iter_sse(r):
        arrivals.append((time.monotonic() - started, json.loads(event["data"])))
    notes = [a for a in arrivals if "method" in a[1]]
    assert len(notes) == 9
    first_at, last_at = notes[0][0], arrivals[-1][0]
    assert first_at < last_at - 0.8, "the first token must arrive long before the end (no buffering)"
    gaps = [b[0] - a[0] for a, b in zip(notes, notes[1:], strict=False)]
    paced = [g for g in gaps if g > 0.05]
    assert len(paced) >= len(gaps) - 2, "each token is its own event, sent when Ollama sends it"


def test_cancel_notification_stops_ollama_and_sends_no_response(client, fake, server):
    fake.chunk_delay = 0.1
    r = start_stream(client)
    events = iter_sse(r)
    seen = [json.loads(next(events)["data"]) for _ in range(2)]
    assert all(m["method"] == "notifications/progress" for m in seen)
    client.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77, "reason": "user"}})
    assert fake.aborted.wait(2), "Ollama's stream must be closed"
    rest = [json.loads(e["data"]) for e in events]
    assert all("id" not in m for m in rest), "a cancelled request gets no response"
    assert len(seen) + len(rest) < 9
    assert server.mcp.calls.in_scope(client.session_id) == []
    assert fake.streams_aborted == 1


def test_client_dropping_the_sse_stream_stops_ollama(client, fake, server):
    fake.chunk_delay = 0.1
    r = start_stream(client)
    events = iter_sse(r)
    next(events)
    r.close()
    assert fake.aborted.wait(3), "closing the client connection must close Ollama's stream"
    deadline = time.monotonic() + 2
    while server.mcp.calls.in_scope(client.session_id) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.mcp.calls.in_scope(client.session_id) == []


def test_cancel_of_a_call_without_progress_token_stops_ollama(client, fake):
    fake.chunk_delay = 0.1
    result = {}

    def run():
        r = start_stream(client, tool="ollama_generate", token=None, msg_id=81)
        result["status"] = r.status_code
        result["body"] = r.content

    t = threading.Thread(target=run)
    t.start()
    assert wait_for(lambda: fake.streams_started == 1)
    client.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 81}})
    assert fake.aborted.wait(2)
    t.join(3)
    assert result["status"] == 200
    assert b'"id":81' not in result["body"]


@pytest.mark.slow
def test_client_leaving_a_json_mode_call_stops_ollama(server, client, fake):
    """Without a progressToken the answer is one JSON body at the end; leaving early still stops Ollama."""
    fake.chunk_delay = 0.1
    port = server.port
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 90,
            "method": "tools/call",
            "params": {
                "name": "ollama_chat",
                "arguments": {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}]},
            },
        }
    ).encode()
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nMcp-Session-Id: {client.session_id}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head + body)
    assert wait_for(lambda: fake.streams_started == 1)
    s.close()
    assert fake.aborted.wait(3), "the server must notice the client left and close Ollama's stream"


def test_cancel_with_unknown_id_is_ignored(client):
    r = client.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 12345}})
    assert r.status_code == 202
    response, _ = client.request("ping")
    assert response["result"] == {}


@pytest.mark.slow
def test_cancel_from_another_session_does_not_reach_the_call(server, client, fake):
    fake.chunk_delay = 0.05
    other = server.client()
    other.initialize()
    r = start_stream(client)
    events = iter_sse(r)
    next(events)
    other.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77}})
    messages = [json.loads(e["data"]) for e in events]
    assert messages[-1]["id"] == 77 and messages[-1]["result"]["isError"] is False
    assert fake.streams_aborted == 0


@pytest.mark.slow
def test_concurrent_streams_are_independent(server, fake):
    fake.chunk_delay = 0.05
    clients = [server.client() for _ in range(4)]
    for c in clients:
        c.initialize()
    results = [None] * 4

    def run(i):
        result, notes = clients[i].call("ollama_generate_stream", STREAM_ARGS, progress=True)
        results[i] = (result, len(notes))

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - started
    assert all(r is not None and r[0]["isError"] is False and r[1] == 9 for r in results)
    assert elapsed < 4 * 9 * 0.05, "streams run in parallel, not one after another"


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="Linux scheduling policies")
@pytest.mark.parametrize("setting, policy", [(None, "SCHED_BATCH"), ("false", "SCHED_OTHER")])
def test_every_server_thread_yields_to_ollama_unless_told_not_to(fake, tmp_path, setting, policy):
    env = process_env(tmp_path, **({"MCP_YIELD_CPU": setting} if setting else {}))
    proc, url = start_process(fake, env, tmp_path)
    try:
        port = int(url.split(":")[2].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # kept open: its thread lives
        conn.request("POST", "/mcp", json.dumps(INIT), {"Accept": ACCEPT, "Content-Type": "application/json"})
        assert conn.getresponse().read()
        threads = os.listdir(f"/proc/{proc.pid}/task")
        assert len(threads) >= 3, "main, the log writer and the connection's thread"
        assert {os.sched_getscheduler(int(t)) for t in threads} == {getattr(os, policy)}
        conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
