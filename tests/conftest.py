"""Fixtures: a fake Ollama and a live ollama-mcp server, each on an ephemeral port."""

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ollama_mcp  # noqa: E402
from fake_ollama import FakeOllama  # noqa: E402

ACCEPT = "application/json, text/event-stream"


def real_ollama_url():
    """OLLAMA_TEST_URL when a real Ollama answers there, else None."""
    url = os.environ.get("OLLAMA_TEST_URL")
    if not url:
        return None
    try:
        requests.get(f"{url}/api/version", timeout=2)
    except requests.RequestException:
        return None
    return url


def pytest_collection_modifyitems(config, items):
    if real_ollama_url() is None:
        skip = pytest.mark.skip(
            reason="no real Ollama: set OLLAMA_TEST_URL to one (with gemma3:270m and all-minilm pulled)"
        )
        for item in items:
            if "real_ollama" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def fake():
    server = FakeOllama().start()
    yield server
    server.stop()


@pytest.fixture
def make_config(fake, tmp_path):
    """Config for a test server: loopback, ephemeral port, the fake Ollama, no tool packs."""

    def make(**overrides):
        base = {
            "host": "127.0.0.1",
            "port": 0,
            "ollama_url": fake.url,
            "ollama_retries": 0,
            "tools_dir": str(tmp_path / "no-packs"),
            "data_dir": str(tmp_path / "data"),
        }
        base.update(overrides)
        return ollama_mcp.Config(**base)

    return make


class LiveServer:
    """An ollama-mcp HTTP server running in a thread."""

    def __init__(self, config):
        self.srv = ollama_mcp.make_http_server(config)
        self.app = self.srv.app
        self.mcp = self.app.server
        self.config = config
        self.port = self.srv.port
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self):
        self.mcp.cancel_all()
        self.srv.shutdown()
        self.srv.server_close()
        self.mcp.close()

    def client(self, **kwargs):
        return McpHttpClient(self.url, **kwargs)


@pytest.fixture
def start_server(make_config):
    servers = []

    def start(**overrides):
        server = LiveServer(make_config(**overrides))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture
def client(server):
    c = server.client()
    c.initialize()
    return c


class McpHttpClient:
    """A small raw Streamable HTTP client: every request and reply is visible to the test."""

    def __init__(self, url, protocol_version="2025-11-25"):
        self.url = url
        self.protocol_version = protocol_version
        self.session_id = None
        self.http = requests.Session()
        self._ids = iter(range(1, 1_000_000))

    def headers(self, **extra):
        h = {"Accept": ACCEPT, "Content-Type": "application/json"}
        if self.session_id:
            h["Mcp-Session-Id"] = self.session_id
            h["MCP-Protocol-Version"] = self.protocol_version
        h.update(extra)
        return h

    def post(self, payload, stream=False, **headers):
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        return self.http.post(self.url, data=data, headers=self.headers(**headers), stream=stream, timeout=30)

    def initialize(self):
        r = self.post(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": self.protocol_version,
                    "capabilities": {},
                    "clientInfo": {"name": "pytest", "version": "1"},
                },
            }
        )
        assert r.status_code == 200, r.text
        self.session_id = r.headers["Mcp-Session-Id"]
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r.json()["result"]

    def next_id(self):
        return next(self._ids)

    def request(self, method, params=None, msg_id=None):
        """Send a request; return (final response, notifications before it)."""
        msg = {"jsonrpc": "2.0", "id": self.next_id() if msg_id is None else msg_id, "method": method}
        if params is not None:
            msg["params"] = params
        r = self.post(msg, stream=True)
        assert r.status_code == 200, r.text
        messages = list(read_messages(r))
        return messages[-1], messages[:-1]

    def start(self, name, arguments, msg_id=1):
        """Start a tools/call with a progressToken and return the streaming HTTP response."""
        msg = {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call"}
        msg["params"] = {"name": name, "arguments": arguments, "_meta": {"progressToken": 1}}
        return self.post(msg, stream=True)

    def call(self, name, arguments=None, progress=False, **kw):
        params = {"name": name, "arguments": arguments or {}}
        if progress:
            params["_meta"] = {"progressToken": "tok"}
        response, notes = self.request("tools/call", params, **kw)
        return response["result"], notes


def read_messages(response):
    """The JSON-RPC messages of a response, JSON or SSE."""
    ctype = response.headers.get("Content-Type", "")
    if ctype.startswith("application/json"):
        yield response.json()
        return
    assert ctype.startswith("text/event-stream"), ctype
    for event in iter_sse(response):
        yield json.loads(event["data"])


def iter_sse(response):
    """Parse SSE events from a streaming requests response, as they arrive."""
    event = {}
    for raw in response.iter_lines(chunk_size=None, decode_unicode=False):
        line = raw.decode()
        if not line:
            if event:
                yield event
                event = {}
            continue
        field, _, value = line.partition(":")
        event[field] = value[1:] if value.startswith(" ") else value
    if event:
        yield event


@pytest.fixture
def real_url():
    url = real_ollama_url()
    if url is None:
        pytest.skip("no real Ollama")
    return url


def replace(config, **changes):
    return dataclasses.replace(config, **changes)


async def cancel_after_progress(client, tool, arguments, count, timeout):
    """Call `tool` with the official client and cancel the call after `count` progress
    notifications (the client then sends notifications/cancelled). Returns the messages seen."""
    import anyio

    seen = []
    with anyio.move_on_after(timeout):
        async with anyio.create_task_group() as tg:

            async def on_progress(progress, total, message):
                seen.append(message)
                if len(seen) == count:
                    tg.cancel_scope.cancel()

            tg.start_soon(lambda: client.call_tool(tool, arguments, progress_callback=on_progress))
    return seen


# --- helpers the test modules share -------------------------------------------------------


def wait_for(predicate, timeout=5.0):
    """Wait until `predicate()` is true (polling), at most `timeout` seconds; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def call_ok(client, server, name, args=None, **kw):
    """Call a tool that must succeed; its structured result, checked against its output schema, and the notes."""
    result, notes = client.call(name, args or {}, **kw)
    out = structured(result)
    jsonschema.validate(out, server.mcp.registry.get(name).output_schema)
    return out, notes


def structured(result):
    assert result["isError"] is False, result["content"][0]["text"]
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
    return result["structuredContent"]


def error_text(result):
    assert result["isError"] is True
    return result["content"][0]["text"]


TOKEN = "s3cret-token-for-tests-0123456789"


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def post(url, payload, **headers):
    """POST one JSON-RPC payload (or raw text) with the headers an MCP client sends."""
    h = {"Accept": ACCEPT, "Content-Type": "application/json"}
    h.update(headers)
    data = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return requests.post(url, data=data, headers=h, timeout=10)


def stream_request(msg_id, token=1, prompt="x", **meta):
    """A tools/call of ollama_generate_stream with a progressToken; meta adds to its _meta."""
    params = {"name": "ollama_generate_stream", "arguments": {"model": "gemma3:270m", "prompt": prompt}}
    params["_meta"] = {"progressToken": token, **meta}
    return {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": params}


def slow_stream(client, fake, msg_id):
    fake.chunk_delay = 0.1
    r = client.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id=msg_id)
    events = iter_sse(r)
    next(events)
    return r, events


def process_env(tmp_path, **extra):
    """The environment of a server started as its own process: no packs, a data folder of its own,
    and nothing of the caller's environment but what is given."""
    return {"PATH": "/usr/bin:/bin", "MCP_TOOLS_DIR": str(tmp_path), "MCP_DATA_DIR": str(tmp_path / "d"), **extra}


def start_process(fake, env, tmp_path, *args):
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "ollama_mcp.py"),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--ollama-url",
            fake.url,
            *args,
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 20
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if "serving MCP on http://" in line:
            port = line.split("http://127.0.0.1:")[1].split("/")[0]
            return proc, f"http://127.0.0.1:{port}/mcp"
    proc.kill()
    raise AssertionError("server did not start: " + "".join(lines))


REGION_PACK = """
from ollama_mcp import open_object, strict_object, tool


@tool(
    title="Echo a region",
    description="Return the region it was given (a tool whose argument is mirrored into a header).",
    input_schema=strict_object({"region": {"type": "string", "x-mcp-header": "Region"}}, ["region"]),
    output_schema=open_object({"region": {"type": "string"}}, ["region"]),
    read_only=True,
)
def pack_echo_region(call, args):
    return {"region": args["region"]}
"""
