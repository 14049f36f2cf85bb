"""Fuzzing the running server with malformed JSON-RPC, wrong types, huge and deep values, bad headers.

CI runs a sample (FUZZ_EXAMPLES, default 600 per test); the full run is
    FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz.py
Each example is one HTTP request; the server must never answer 5xx nor die, and a normal
call must still work afterwards.
"""

import json
import os

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ollama_mcp

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "600"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=False, database=None
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)
methods = st.sampled_from(
    [
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "logging/setLevel",
        "completion/complete",
        "notifications/cancelled",
        "notifications/initialized",
        "resources/list",
        "",
        "tools/call\u0000",
    ]
) | st.text(max_size=30)
ids = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=10)
    | st.floats(allow_nan=False)
    | st.lists(st.integers(), max_size=2)
)
tool_names = st.sampled_from([t.name for t in ollama_mcp.BUILTIN_TOOLS]) | st.text(max_size=20)

messages = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | json_values,
        "id": ids,
        "method": methods,
        "params": json_values,
        "result": json_values,
        "error": json_values,
    },
)
tool_calls = st.builds(
    lambda i, name, args, meta: {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {"name": name, "arguments": args, "_meta": meta},
    },
    st.integers(0, 10**6),
    tool_names,
    st.dictionaries(
        st.sampled_from(
            [
                "model",
                "prompt",
                "messages",
                "options",
                "input",
                "inputs",
                "prompts",
                "models",
                "session_id",
                "digest",
                "modelfile",
                "format",
                "think",
                "keep_alive",
                "images",
                "request_id",
                "query",
            ]
        ),
        json_values,
        max_size=5,
    ),
    st.fixed_dictionaries({}, optional={"progressToken": json_values}),
)
deep = st.integers(1, 3000).map(lambda n: "[" * n + "]" * n)
raw_bodies = st.binary(max_size=300) | deep | st.text(max_size=200).map(str.encode)
payloads = (
    messages.map(json.dumps) | tool_calls.map(json.dumps) | st.lists(messages, max_size=4).map(json.dumps) | raw_bodies
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Accept": st.sampled_from(["application/json, text/event-stream", "*/*", "text/html", "", "application/json"]),
        "Content-Type": st.sampled_from(
            [
                "application/json",
                "application/json; charset=utf-8",
                "text/plain",
                "",
                "application/x-www-form-urlencoded",
            ]
        ),
        "Mcp-Session-Id": st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
        "MCP-Protocol-Version": st.sampled_from(["2025-11-25", "2024-11-05", "1.0", "", "2099-01-01"]),
        "Origin": st.sampled_from(["http://localhost:1", "http://evil.example", "null"]),
    },
)


@pytest.fixture
def fuzz_server(start_server):
    server = start_server(rate_limit=0, max_concurrent_per_client=1000, max_concurrent=1000, ollama_timeout=5)
    client = server.client()
    client.initialize()
    return server, client


def check_alive_and_working(client):
    result, _ = client.call("ollama_list_models")
    assert result["isError"] is False


def test_fuzz_payloads_and_headers(fuzz_server):
    server, client = fuzz_server
    http = requests.Session()
    statuses = {}

    @FUZZ
    @given(body=payloads, extra=headers, use_session=st.booleans())
    def run(body, extra, use_session):
        h = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if use_session:
            h["Mcp-Session-Id"] = client.session_id
        h.update(extra)
        data = body if isinstance(body, bytes) else body.encode()
        r = http.post(server.url, data=data, headers=h, timeout=30)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, (r.status_code, body[:200], r.text[:300])
        if r.status_code == 200 and r.headers.get("Content-Type") == "application/json":
            r.json()

    run()
    assert sum(statuses.values()) >= min(EXAMPLES, 100)
    check_alive_and_working(client)


MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
metas = (
    st.just(MODERN_META)
    | st.dictionaries(
        st.sampled_from([*MODERN_META, "io.modelcontextprotocol/logLevel", "progressToken"]), json_values, max_size=4
    )
    | json_values
)
# subscriptions/listen is left out: a valid one is a stream that stays open, by design.
modern_methods = st.sampled_from(
    [
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "initialize",
        "ping",
    ]
) | st.text(max_size=20)
modern_messages = st.builds(
    lambda i, method, meta, extra: {"jsonrpc": "2.0", "id": i, "method": method, "params": {**extra, "_meta": meta}},
    ids,
    modern_methods,
    metas,
    st.dictionaries(
        st.sampled_from(["name", "uri", "arguments", "cursor", "ref", "argument", "notifications"]),
        json_values,
        max_size=3,
    ),
)


def header_safe(value):
    """Whether the HTTP client will send `value` as a header value (it refuses the others itself)."""
    return isinstance(value, str) and value.isascii() and value.isprintable() and value == value.strip() and value != ""


def test_fuzz_stateless_requests(fuzz_server):
    server, _ = fuzz_server
    http = requests.Session()

    @FUZZ
    @given(
        msg=modern_messages,
        mirror=st.booleans(),
        version=st.sampled_from(["2026-07-28", "2099-01-01", "2026-07-28 \t"]),
    )
    def run(msg, mirror, version):
        h = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": version,
        }
        if mirror and header_safe(msg["method"]):
            h["Mcp-Method"] = msg["method"]
            name = msg["params"].get("name", msg["params"].get("uri"))
            if header_safe(name):
                h["Mcp-Name"] = name
        r = http.post(server.url, data=json.dumps(msg), headers=h, timeout=30)
        assert r.status_code < 500, (r.status_code, msg, r.text[:300])
        if r.headers.get("Content-Type") == "application/json":
            reply = r.json()
            assert "result" in reply or isinstance(reply["error"]["code"], int)

    run()
    assert server.mcp.calls.all() == []


def test_fuzz_tool_arguments(fuzz_server):
    server, client = fuzz_server

    @FUZZ
    @given(call=tool_calls)
    def run(call):
        r = client.post(call)
        assert r.status_code < 500, r.text[:300]
        if r.headers.get("Content-Type") == "application/json":
            reply = r.json()
            assert "result" in reply or reply["error"]["code"] in (-32602, -32600, -32000)

    run()
    check_alive_and_working(client)


def test_fuzz_stdio_lines(fake, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT, process_env

    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "ollama_mcp.py"), "--transport", "stdio", "--ollama-url", fake.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=process_env(tmp_path),
    )
    lines = []

    @settings(
        max_examples=max(50, EXAMPLES // 4), deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(body=payloads)
    def collect(body):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        lines.append(text.replace("\n", " ").replace("\r", " "))

    collect()
    ping = json.dumps({"jsonrpc": "2.0", "id": "final-ping", "method": "ping"})
    out, _ = proc.communicate(("\n".join(lines) + "\n" + ping + "\n").encode(), timeout=120)
    assert proc.returncode == 0
    replies = [json.loads(line) for line in out.splitlines()]
    assert any(r.get("id") == "final-ping" and r.get("result") == {} for r in replies if isinstance(r, dict))
