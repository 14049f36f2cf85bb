"""Access control, limits and operations over real sockets."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

import ollama_mcp
from conftest import ACCEPT, INIT, ROOT, TOKEN, post, process_env, slow_stream, start_process, stream_request, wait_for

# --- bearer tokens ------------------------------------------------------------------------------


@pytest.fixture
def locked(start_server):
    return start_server(auth_tokens=(TOKEN, "another-token-0123456789"))


def test_without_a_token_every_mcp_request_is_401(locked):
    r = post(locked.url, INIT)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["error"]["message"].startswith("Unauthorized")
    assert requests.delete(locked.url, timeout=5).status_code == 401
    assert requests.get(locked.url, timeout=5).status_code == 401


@pytest.mark.parametrize(
    "header", ["Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", f"bearer  {TOKEN[:-1]}"]
)
def test_wrong_tokens_are_401(locked, header):
    assert post(locked.url, INIT, Authorization=header).status_code == 401


def test_any_configured_token_works(locked):
    for token in (TOKEN, "another-token-0123456789"):
        assert post(locked.url, INIT, Authorization=f"Bearer {token}").status_code == 200


def test_metrics_needs_the_token_but_health_checks_do_not(locked):
    base = locked.url.rsplit("/", 1)[0]
    assert requests.get(f"{base}/metrics", timeout=5).status_code == 401
    assert requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).status_code == 200
    assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{base}/readyz", timeout=5).status_code == 200


def test_open_server_needs_no_token(server):
    assert post(server.url, INIT).status_code == 200


@pytest.mark.slow
def test_token_and_authorization_header_never_reach_the_logs(fake, tmp_path):
    env = process_env(tmp_path, MCP_AUTH_TOKEN=TOKEN, LOG_LEVEL="DEBUG", LOG_FORMAT="json")
    proc, url = start_process(fake, env, tmp_path)
    try:
        r = post(url, INIT, Authorization=f"Bearer {TOKEN}")
        sid = r.headers["Mcp-Session-Id"]
        post(
            url,
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "ollama_list_models", "arguments": {}},
            },
            Authorization=f"Bearer {TOKEN}",
            **{"Mcp-Session-Id": sid},
        )
        post(url, INIT, Authorization=f"Bearer {TOKEN}-wrong")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert TOKEN not in err and "Bearer" not in err
    assert '"tool": "ollama_list_models"' in err or '"tool":"ollama_list_models"' in err
    assert "token(s)>" not in err


def test_check_masks_tokens(fake, tmp_path):
    r = subprocess.run(
        [sys.executable, str(ROOT / "ollama_mcp.py"), "--check", "--ollama-url", fake.url],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "MCP_AUTH_TOKEN": TOKEN},
        cwd=tmp_path,
        timeout=30,
    )
    assert TOKEN not in r.stdout and "<1 token(s)>" in r.stdout


def test_short_tokens_are_refused_at_start_up():
    with pytest.raises(ollama_mcp.ConfigError, match="16"):
        ollama_mcp.load_config({}, environ={"MCP_AUTH_TOKEN": "short"}, env_file="")


def test_token_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# ops team\n{TOKEN}\n\nsecond-token-abcdefghijkl\n")
    config = ollama_mcp.load_config({}, environ={"MCP_AUTH_TOKEN_FILE": str(path)}, env_file="")
    assert config.auth_tokens == (TOKEN, "second-token-abcdefghijkl")
    assert TOKEN not in repr(config)
    with pytest.raises(ollama_mcp.ConfigError, match="MCP_AUTH_TOKEN_FILE"):
        ollama_mcp.load_config({}, environ={"MCP_AUTH_TOKEN_FILE": str(tmp_path / "missing")}, env_file="")


def test_exposure_warning_only_beyond_loopback_without_token():
    warning = ollama_mcp._exposure_warning(ollama_mcp.Config(host="0.0.0.0"))
    assert "anyone who can reach this machine" in warning and "MCP_AUTH_TOKEN" in warning and "127.0.0.1" in warning
    assert ollama_mcp._exposure_warning(ollama_mcp.Config(host="127.0.0.1")) is None
    assert ollama_mcp._exposure_warning(ollama_mcp.Config(host="0.0.0.0", auth_tokens=(TOKEN,))) is None


# --- read-only and tool filters -------------------------------------------------------------------

CHANGING = {
    "ollama_pull_model",
    "ollama_push_model",
    "ollama_delete_model",
    "ollama_copy_model",
    "ollama_create_model",
    "ollama_update_model",
    "ollama_unload_model",
    "ollama_save_context",
    "ollama_clear_context",
}


def listed(server):
    c = server.client()
    c.initialize()
    response, _ = c.request("tools/list")
    return c, {t["name"] for t in response["result"]["tools"]}


def test_read_only_hides_and_refuses_every_changing_tool(start_server, fake):
    c, names = listed(start_server(read_only=True))
    assert names.isdisjoint(CHANGING)
    assert len(names) == len(ollama_mcp.BUILTIN_TOOLS) - len(CHANGING)
    for name in CHANGING:
        response, _ = c.request("tools/call", {"name": name, "arguments": {"model": "gemma3:270m"}})
        assert response["error"]["code"] == -32602 and "Unknown tool" in response["error"]["message"]
    assert "/api/delete" not in fake.paths() and "/api/pull" not in fake.paths()


def test_read_only_chat_refuses_to_save_a_session(start_server):
    c, _ = listed(start_server(read_only=True))
    result, _ = c.call(
        "ollama_chat", {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}], "session_id": "s"}
    )
    assert result["isError"] and "MCP_READ_ONLY" in result["content"][0]["text"]
    result, _ = c.call("ollama_chat", {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}]})
    assert result["isError"] is False


def test_tool_globs_choose_the_exposed_set(start_server):
    _, names = listed(start_server(tools_enabled=("ollama_list_*", "ollama_chat*")))
    assert names == {"ollama_list_models", "ollama_list_processes", "ollama_chat", "ollama_chat_stream"}
    c, names = listed(start_server(tools_disabled=("ollama_delete_model", "*_context")))
    assert "ollama_delete_model" not in names and "ollama_load_context" not in names and "ollama_generate" in names
    response, _ = c.request("tools/call", {"name": "ollama_delete_model", "arguments": {"model": "x"}})
    assert response["error"]["code"] == -32602


# --- rate limit, concurrency and connection caps ---------------------------------------------------


@pytest.mark.slow
def test_rate_limit_gives_429_with_retry_after_then_recovers(start_server):
    server = start_server(rate_limit=120, rate_burst=3)  # 2 per second after a burst of 3
    c = server.client()
    c.initialize()  # 2 requests: initialize and initialized
    assert c.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 200
    r = c.post({"jsonrpc": "2.0", "id": 2, "method": "ping"})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["code"] == -32000 and "MCP_RATE_LIMIT" in r.json()["error"]["message"]
    time.sleep(0.6)  # the bucket refills with time: waiting longer than needed is always fine
    assert c.post({"jsonrpc": "2.0", "id": 3, "method": "ping"}).status_code == 200
    base = server.url.rsplit("/", 1)[0]
    assert "ollama_mcp_rate_limited_total 1" in requests.get(f"{base}/metrics", timeout=5).text


def test_rate_limit_is_per_client(start_server):
    server = start_server(rate_limit=60, rate_burst=2, auth_tokens=(TOKEN, "another-token-0123456789"))
    for token in (TOKEN, "another-token-0123456789"):
        assert post(server.url, INIT, Authorization=f"Bearer {token}").status_code == 200
        assert post(server.url, INIT, Authorization=f"Bearer {token}").status_code == 200
    assert post(server.url, INIT, Authorization=f"Bearer {TOKEN}").status_code == 429


@pytest.mark.slow
def test_per_client_concurrency_cap_then_recovers(start_server, fake):
    server = start_server(max_concurrent_per_client=1)
    c = server.client()
    c.initialize()
    r, events = slow_stream(c, fake, 10)
    response, _ = c.request("tools/call", {"name": "ollama_list_models", "arguments": {}})
    assert response["error"]["code"] == -32000 and "MCP_MAX_CONCURRENT_PER_CLIENT=1" in response["error"]["message"]
    list(events)
    result, _ = c.call("ollama_list_models")
    assert result["isError"] is False


@pytest.mark.slow
def test_total_concurrency_cap(start_server, fake):
    server = start_server(max_concurrent=1, auth_tokens=(TOKEN, "another-token-0123456789"))
    first = server.client()
    first.http.headers["Authorization"] = f"Bearer {TOKEN}"
    first.initialize()
    second = server.client()
    second.http.headers["Authorization"] = "Bearer another-token-0123456789"
    second.initialize()
    r, events = slow_stream(first, fake, 10)
    response, _ = second.request("tools/call", {"name": "ollama_list_models", "arguments": {}})
    assert "MCP_MAX_CONCURRENT=1" in response["error"]["message"]
    list(events)
    assert second.call("ollama_list_models")[0]["isError"] is False


def test_connection_cap_answers_503_at_once_and_recovers(start_server):
    server = start_server(max_connections=2, client_timeout=5)
    port = server.port
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    assert wait_for(lambda: server.srv._open_total == 2)
    extra = socket.create_connection(("127.0.0.1", port))
    extra.settimeout(3)
    assert extra.recv(100).startswith(b"HTTP/1.1 503")
    extra.close()
    for s in idle:
        s.close()
    assert wait_for(lambda: server.srv._open_total == 0)
    assert post(server.url, INIT).status_code == 200


@pytest.mark.slow
def test_a_silent_client_is_dropped_after_the_timeout(start_server):
    server = start_server(client_timeout=0.5)
    port = server.port
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    started = time.monotonic()
    assert s.recv(100) == b""
    assert time.monotonic() - started < 3
    s.close()


@pytest.mark.slow
def test_a_slow_drip_client_is_dropped_at_the_deadline(start_server):
    server = start_server(client_timeout=0.6)
    port = server.port
    s = socket.create_connection(("127.0.0.1", port))
    started = time.monotonic()
    closed_at = None
    for byte in b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
        try:
            s.sendall(bytes([byte]))
        except OSError:
            closed_at = time.monotonic()
            break
        time.sleep(0.1)
        if time.monotonic() - started > 5:
            break
    if closed_at is None:
        s.settimeout(2)
        try:
            s.recv(100)
        except OSError:
            pass
        closed_at = time.monotonic()
    assert closed_at - started < 3, "the request deadline holds even when bytes keep trickling in"
    s.close()
    assert post(server.url, INIT).status_code == 200


def test_deeply_nested_json_is_refused(client):
    deep = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "ollama_generate", "arguments": {"format": {}}},
    }
    node = deep["params"]["arguments"]["format"]
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    r = client.post(deep)
    assert r.status_code == 400 and r.json()["error"]["code"] == -32600 and "nested" in r.json()["error"]["message"]


# --- SSE keep-alive -----------------------------------------------------------------------------


@pytest.mark.slow
def test_silent_stream_gets_keepalive_comments(start_server, fake):
    server = start_server(keepalive_interval=0.1)
    c = server.client()
    c.initialize()
    fake.chunk_delay = 0.25
    fake.pullable["tinyllama"] = 1
    r = c.post(
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "ollama_pull_model", "arguments": {"model": "tinyllama"}, "_meta": {"progressToken": 1}},
        }
    )
    assert r.headers["Content-Type"] == "text/event-stream"
    assert ": keep-alive" in r.text
    assert json.loads(r.text.rstrip().rsplit("data: ", 1)[1])["result"]["structuredContent"]["status"] == "success"


@pytest.mark.slow
def test_silent_call_without_progress_token_is_kept_alive_too(start_server, fake):
    server = start_server(keepalive_interval=0.1)
    c = server.client()
    c.initialize()
    fake.latency = 0.5
    r = c.post(
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "ollama_list_models", "arguments": {}}}
    )
    assert r.headers["Content-Type"] == "text/event-stream"
    assert r.text.startswith(": keep-alive")
    assert json.loads(r.text.rstrip().rsplit("data: ", 1)[1])["id"] == 4


def test_the_keepalive_ticker_outlives_a_pause_between_calls(start_server):
    server = start_server(keepalive_interval=0.1)  # it looks every 0.05 s
    c = server.client()
    c.initialize()
    c.call("ollama_list_models", {})
    first = server.app.transport._ticker
    time.sleep(0.3)  # six looks with no request running: it must not end and be started again
    c.call("ollama_list_models", {})
    assert first is not None and first.is_alive() and server.app.transport._ticker is first


# --- health, readiness, metrics ---------------------------------------------------------------------


def test_healthz_and_readyz(start_server, fake):
    server = start_server()
    base = server.url.rsplit("/", 1)[0]
    assert requests.get(f"{base}/healthz", timeout=5).text == "ok\n"
    r = requests.get(f"{base}/readyz", timeout=5)
    assert r.status_code == 200 and "0.24.0" in r.text
    down = start_server(ollama_url="http://127.0.0.1:9")
    base = down.url.rsplit("/", 1)[0]
    r = requests.get(f"{base}/readyz", timeout=5)
    assert r.status_code == 503 and "ollama serve" in r.text
    assert requests.get(f"{base}/healthz", timeout=5).status_code == 200


def test_metrics_count_calls_outcomes_tokens_and_rejections(server, client):
    client.call("ollama_list_models")
    client.call("ollama_show_model", {"model": "nope"})
    client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "options": {"num_predict": 3}})
    post(server.url, INIT, Origin="http://evil.example")
    text = requests.get(server.url.rsplit("/", 1)[0] + "/metrics", timeout=5).text
    assert 'ollama_mcp_tool_calls_total{outcome="ok",tool="ollama_list_models"} 1' in text
    assert 'ollama_mcp_tool_calls_total{outcome="error",tool="ollama_show_model"} 1' in text
    assert 'ollama_mcp_tokens_streamed_total{tool="ollama_generate"} 3' in text
    assert 'ollama_mcp_rejected_requests_total{reason="origin"} 1' in text
    assert 'ollama_mcp_tool_call_duration_seconds_bucket{tool="ollama_list_models",le="+Inf"} 1' in text
    assert 'ollama_mcp_http_requests_total{method="POST",status="200"}' in text
    assert "ollama_mcp_tool_calls_in_flight 0" in text and "ollama_mcp_sessions 1" in text


# --- the process: graceful shutdown and structured logs ----------------------------------------------


@pytest.mark.slow
def test_sigterm_answers_streams_it_cancels_after_the_grace_period_and_exits_promptly(fake, tmp_path):
    env = process_env(tmp_path, LOG_FORMAT="json", MCP_SHUTDOWN_GRACE="0.3")
    proc, url = start_process(fake, env, tmp_path)
    fake.chunk_delay = 0.2
    sid = post(url, INIT).headers["Mcp-Session-Id"]
    got = {}

    def stream():
        h = {"Accept": ACCEPT, "Content-Type": "application/json", "Mcp-Session-Id": sid}
        msg = stream_request(9, prompt="secret prompt text")
        try:
            got["body"] = requests.post(url, json=msg, headers=h, timeout=20).text
        except requests.RequestException as e:
            got["error"] = e

    t = threading.Thread(target=stream)
    t.start()
    assert wait_for(lambda: fake.streams_started == 1)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert time.monotonic() - started < 5
    assert fake.aborted.wait(3), "in-flight Ollama streams are closed"
    t.join(10)
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert len(records) == len([line for line in err.splitlines() if line.strip()]), "every log line is one JSON object"
    call = next(r for r in records if r["message"].startswith("tool call "))
    assert {"time", "level", "tool", "session", "request_id", "duration_ms", "outcome"} <= set(call)
    assert call["outcome"] == "cancelled"
    final = json.loads(got["body"].strip().split("data: ")[-1])
    assert final["id"] == 9 and final["result"]["isError"] is True
    assert "the server is stopping" in final["result"]["content"][0]["text"]
    assert "the text generated so far:\nThe" in final["result"]["content"][0]["text"]
    assert "secret prompt text" not in err, "prompts are never logged at INFO"
    assert records[-1]["message"] == "ollama-mcp stopped"
    assert fake.open_streams == 0
