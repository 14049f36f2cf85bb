"""make_app under gunicorn's threaded worker (docs/deploy.md): tools, streaming, and a call
cancelled by its client leaving."""

import json
import os
import socket
import subprocess
import sys
import time

import anyio
import pytest
from mcp import Client

from conftest import ACCEPT, ROOT, stream_request, wait_for

pytest.importorskip("gunicorn")


@pytest.fixture
def gunicorn(fake, tmp_path):
    with socket.socket() as s:  # gunicorn prints no port it chose: ask the kernel for a free one
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "OLLAMA_HOST": fake.url,
        "MCP_TOOLS_DIR": str(tmp_path / "none"),
        "MCP_DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-b", f"127.0.0.1:{port}"]
    proc = subprocess.Popen([*cmd, "ollama_mcp:from_environment()"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"

    def answers():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    assert wait_for(answers, timeout=20), "gunicorn did not start"
    yield url, port
    proc.terminate()
    proc.wait(10)


@pytest.mark.slow
def test_tools_and_streaming_work_under_gunicorn(gunicorn):
    url, _ = gunicorn

    async def main():
        seen = []

        async def on_progress(progress, total, message):
            seen.append(message)

        async with Client(url, mode="2026-07-28") as client:
            listed = await client.call_tool("ollama_list_models", {})
            streamed = await client.call_tool(
                "ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, progress_callback=on_progress
            )
        async with Client(url, mode="legacy") as client:
            legacy = await client.call_tool("ollama_list_models", {})
        return listed, streamed, seen, legacy

    listed, streamed, seen, legacy = anyio.run(main)
    assert listed.structured_content["count"] == 4 and legacy.structured_content["count"] == 4
    assert len(seen) == 9 and streamed.structured_content["response"].startswith("The sky")


@pytest.mark.slow
def test_a_client_leaving_a_stream_cancels_it_under_gunicorn(gunicorn, fake):
    _, port = gunicorn
    fake.chunk_delay = 0.1
    modern = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    body = json.dumps(stream_request(1, **modern)).encode()
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {ACCEPT}\r\nContent-Type: application/json\r\n"
        f"MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: ollama_generate_stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head + body)
    s.settimeout(5)
    received = b""
    while b"notifications/progress" not in received:
        chunk = s.recv(4096)
        assert chunk, "the stream ended before its first notification"
        received += chunk
    s.close()
    assert fake.aborted.wait(5), "the client left: the Ollama stream is closed"
    time.sleep(0.1)
    assert fake.open_streams == 0
