"""The stdio transport as a subprocess: JSON lines only on stdout, concurrency, cancellation, EOF."""

import json
import subprocess
import sys
import time

import pytest

from conftest import ROOT, stream_request, wait_for


@pytest.fixture
def proc(fake, tmp_path):
    p = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "ollama_mcp.py"),
            "--transport",
            "stdio",
            "--ollama-url",
            fake.url,
            "--log-level",
            "DEBUG",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "MCP_TOOLS_DIR": str(tmp_path / "none"), "MCP_DATA_DIR": str(tmp_path / "data")},
    )
    yield p
    if p.poll() is None:
        p.kill()
    p.wait(5)
    for stream in (p.stdin, p.stdout, p.stderr):
        stream.close()


def send(p, msg):
    p.stdin.write((msg if isinstance(msg, str) else json.dumps(msg)).encode() + b"\n")
    p.stdin.flush()


def read(p):
    line = p.stdout.readline()
    assert line, "stdout closed"
    return json.loads(line)


def initialize(p):
    send(
        p,
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
    )
    assert read(p)["result"]["serverInfo"]["name"] == "ollama-mcp"
    send(p, {"jsonrpc": "2.0", "method": "notifications/initialized"})


def test_every_stdout_line_is_json_and_logs_go_to_stderr(proc):
    initialize(proc)
    send(
        proc,
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ollama_list_models", "arguments": {}}},
    )
    assert read(proc)["id"] == 1
    proc.stdin.close()
    rest, err = proc.stdout.read(), proc.stderr.read()
    assert proc.wait(10) == 0
    assert rest == b""
    assert b"tool call" in err


def test_bad_json_line_gets_parse_error(proc):
    send(proc, "{nope")
    reply = read(proc)
    assert reply["error"]["code"] == -32700 and reply["id"] is None


@pytest.mark.slow
def test_ping_is_answered_while_a_call_streams_and_cancel_stops_it(proc, fake):
    fake.chunk_delay = 0.1
    initialize(proc)
    send(proc, stream_request(5, token="p"))
    assert read(proc)["method"] == "notifications/progress"
    send(proc, {"jsonrpc": "2.0", "id": 6, "method": "ping"})
    while True:
        msg = read(proc)
        if msg.get("id") == 6:
            break
    send(proc, {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}})
    assert fake.aborted.wait(3)
    send(proc, {"jsonrpc": "2.0", "id": 7, "method": "ping"})
    while True:
        msg = read(proc)
        assert msg.get("id") != 5, "a cancelled call gets no response"
        if msg.get("id") == 7:
            break


@pytest.mark.slow
def test_eof_cancels_in_flight_calls_and_exits(proc, fake):
    fake.chunk_delay = 0.2
    initialize(proc)
    send(
        proc,
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "tools/call",
            "params": {"name": "ollama_generate", "arguments": {"model": "gemma3:270m", "prompt": "x"}},
        },
    )
    assert wait_for(lambda: fake.streams_started == 1)
    started = time.monotonic()
    proc.stdin.close()
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 5
    assert fake.aborted.wait(2)


def test_concurrent_calls_interleave_without_corrupting_lines(proc, fake):
    fake.chunk_delay = 0.01
    initialize(proc)
    for i in range(5):
        send(
            proc,
            {
                "jsonrpc": "2.0",
                "id": 100 + i,
                "method": "tools/call",
                "params": {
                    "name": "ollama_chat_stream",
                    "arguments": {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}]},
                    "_meta": {"progressToken": i},
                },
            },
        )
    done = set()
    lines = 0
    while len(done) < 5:
        msg = read(proc)
        lines += 1
        if "id" in msg:
            done.add(msg["id"])
            assert msg["result"]["isError"] is False
    assert done == {100, 101, 102, 103, 104}
    assert lines == 5 * 10
