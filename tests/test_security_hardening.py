"""The findings of the outside attack review (issue 10), each reproduced against a live server."""

import inspect
import json
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
import requests

import ollama_mcp
from conftest import ACCEPT, INIT, ROOT, TOKEN, post, process_env, slow_stream, start_process, wait_for

OTHER_TOKEN = "another-token-0123456789"


def port_of(url):
    return int(url.split(":")[2].split("/")[0])


def raw_http(port, data, timeout=5):
    """Send raw bytes; return everything the server answers until it closes (or the timeout)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(timeout)
    s.sendall(data)
    chunks = []
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except TimeoutError:
        chunks.append(b"<timeout>")
    s.close()
    return b"".join(chunks)


# --- 1. patterns: no catastrophic backtracking, anchored at the real end ------------------------


def all_patterns(schema):
    """Every `pattern` in a JSON Schema, at any depth."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from all_patterns(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from all_patterns(item)


PATTERN_PROBE = inspect.getsource(all_patterns) + textwrap.dedent(
    """
    import json, re, sys, time
    sys.path.insert(0, sys.argv[1])
    import ollama_mcp

    tools = ollama_mcp.BUILTIN_TOOLS + ollama_mcp.load_tool_packs(ollama_mcp.default_tools_dir())
    found = {p for t in tools for p in all_patterns(t.input_schema)}
    pieces = ["0", "01", "0.", "1.5", "a", "a.", "a:", "a/", "_", "-", "5m", "1h", "µs", "sha256:", "ab", ".", "@", "+"]
    worst = (0.0, None)
    for pattern in sorted(found):
        compiled = re.compile(pattern)
        for piece in pieces:
            for n in (30, 300, 3000):
                for tail in ("x", "!", "\\n", " ", "", "\\n\\n", "::"):
                    text = piece * n + tail
                    started = time.perf_counter()
                    compiled.search(text)
                    elapsed = time.perf_counter() - started
                    if elapsed > worst[0]:
                        worst = (elapsed, pattern, piece, n, tail)
    print(json.dumps({"patterns": len(found), "worst": worst}))
    """
)


def test_no_schema_pattern_backtracks_catastrophically():
    # Runs in its own process: a backtracking pattern holds the GIL, so only a kill can stop it.
    r = subprocess.run([sys.executable, "-c", PATTERN_PROBE, str(ROOT)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["patterns"] >= 4
    assert report["worst"][0] < 0.05, report


def test_every_builtin_pattern_is_anchored_at_the_real_end():
    for t in ollama_mcp.BUILTIN_TOOLS:
        for pattern in all_patterns(t.input_schema):
            # `$` is the end of the input for the validator (ECMAScript's meaning), so no lookahead guard is needed
            assert pattern.startswith("^") and pattern.endswith("$") and "(?!" not in pattern, (t.name, pattern)


@pytest.mark.parametrize(
    "tool, arguments",
    [
        ("ollama_show_model", {"model": "gemma3:270m\n"}),
        ("ollama_check_blobs", {"digest": "sha256:" + "0" * 64 + "\n"}),
        ("ollama_load_context", {"session_id": "abc\n"}),
        ("ollama_generate", {"model": "gemma3:270m", "keep_alive": "5m\n"}),
        ("ollama_chat", {"model": "gemma3:270m", "messages": [], "session_id": "..\n"}),
    ],
)
def test_a_trailing_newline_is_refused(tool, arguments):
    t = next(t for t in ollama_mcp.BUILTIN_TOOLS if t.name == tool)
    with pytest.raises(ollama_mcp.ToolError, match="does not match|is not valid under"):
        t.check_arguments(arguments)


@pytest.mark.parametrize("value", ["5m", "1h30m", "-1", "0", "300", "1.5h", "10ms", "250us", "3µs", "1h2m3s4ms5us6ns"])
def test_keep_alive_still_takes_go_durations(value):
    t = next(t for t in ollama_mcp.BUILTIN_TOOLS if t.name == "ollama_generate")
    t.check_arguments({"model": "gemma3:270m", "keep_alive": value})


def test_hostile_keep_alive_is_refused_at_once_and_the_server_stays_responsive(server, client):
    base = server.url.rsplit("/", 1)[0]
    started = time.monotonic()
    result, _ = client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "keep_alive": "1" * 40 + "x"})
    assert time.monotonic() - started < 2
    assert result["isError"] and "keep_alive" in result["content"][0]["text"]
    assert requests.get(f"{base}/healthz", timeout=2).status_code == 200


# --- 2. metric labels never come from the client ---------------------------------------------


def test_invented_http_methods_share_one_metric_label(server):
    base = server.url.rsplit("/", 1)[0]
    for i in range(30):
        requests.request(f"INVENTED{i}", server.url, timeout=5)
    text = requests.get(f"{base}/metrics", timeout=5).text
    assert "INVENTED" not in text
    assert 'method="other",status="405"} 30' in text


# --- 3. sessions: never evict a busy one; a cap per client --------------------------------------


@pytest.mark.slow
def test_a_session_with_a_running_call_is_never_evicted(start_server, fake):
    server = start_server(max_sessions=2)
    busy = server.client()
    busy.initialize()
    idle = server.client()
    idle.initialize()
    r, events = slow_stream(busy, fake, 7)
    assert (
        idle.post({"jsonrpc": "2.0", "id": 9, "method": "ping"}).status_code == 200
    )  # now the busy one is the longest unseen
    newcomer = server.client()
    newcomer.initialize()  # room made by evicting the idle session, not the busy one
    assert idle.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 404
    messages = [json.loads(e["data"]) for e in events]
    assert messages[-1]["id"] == 7 and messages[-1]["result"]["isError"] is False
    assert busy.post({"jsonrpc": "2.0", "id": 2, "method": "ping"}).status_code == 200


@pytest.mark.slow
def test_when_every_session_is_busy_a_new_one_gets_503(start_server, fake):
    server = start_server(max_sessions=1)
    busy = server.client()
    busy.initialize()
    r, events = slow_stream(busy, fake, 3)
    refused = post(server.url, INIT)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    body = refused.json()
    assert body["id"] == 1 and body["error"]["code"] == -32000 and "MCP_MAX_SESSIONS=1" in body["error"]["message"]
    assert json.loads(list(events)[-1]["data"])["result"]["isError"] is False


def test_one_client_cannot_push_the_others_out(start_server):
    server = start_server(max_sessions=10, max_sessions_per_client=2, auth_tokens=(TOKEN, OTHER_TOKEN))
    other = server.client()
    other.http.headers["Authorization"] = f"Bearer {OTHER_TOKEN}"
    other.initialize()
    greedy = []
    for _ in range(6):
        c = server.client()
        c.http.headers["Authorization"] = f"Bearer {TOKEN}"
        c.initialize()
        greedy.append(c)
    assert len(server.mcp.sessions) == 3
    assert other.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 200
    assert [c.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code for c in greedy] == [404] * 4 + [200] * 2


# --- 4. a body that would inflate when parsed --------------------------------------------------

MEMORY_PROBE = "\n".join(
    [
        "import json, requests, sys",
        "url = sys.argv[1]",
        "body = b'[' + b','.join([b'[]'] * 10_000_000) + b']'",
        "r = requests.post(url, data=body, headers={'Accept': 'application/json, text/event-stream', 'Content-Type': "
        "'application/json'}, timeout=60)",
        "print(json.dumps({'status': r.status_code, 'body': r.json(), 'size': len(body)}))",
    ]
)


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_a_body_of_ten_million_empty_arrays_is_refused_without_inflating(fake, tmp_path):
    env = process_env(tmp_path)
    proc, url = start_process(fake, env, tmp_path)
    try:
        r = subprocess.run([sys.executable, "-c", MEMORY_PROBE, url], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        answer = json.loads(r.stdout)
        assert answer["size"] < ollama_mcp.Config.max_body_bytes  # under the body cap: the value bound must refuse it
        assert answer["status"] == 400 and "JSON values" in answer["body"]["error"]["message"]
        peak = peak_rss_mb(proc.pid)
        assert peak < 250, f"the server peaked at {peak:.0f} MB for one request"
        assert post(url, INIT).status_code == 200
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_commas_inside_strings_do_not_count_as_values(client):
    text = "a, " * 300_000  # 900 KB of commas inside one string: one value
    result, _ = client.call("ollama_embeddings", {"model": "all-minilm", "input": text})
    assert result["isError"] is False


# --- 5. sessions belong to the principal that made them ------------------------------------------


@pytest.fixture
def two_tokens(start_server):
    return start_server(auth_tokens=(TOKEN, OTHER_TOKEN))


def as_token(server, token):
    c = server.client()
    c.http.headers["Authorization"] = f"Bearer {token}"
    return c


@pytest.mark.slow
def test_another_token_cannot_use_list_cancel_or_delete_a_session(two_tokens, fake):
    owner = as_token(two_tokens, TOKEN)
    owner.initialize()
    thief = as_token(two_tokens, OTHER_TOKEN)
    thief.session_id = owner.session_id  # the id leaked somehow
    r, events = slow_stream(owner, fake, 11)
    assert (
        thief.post(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "ollama_cancel_request", "arguments": {}},
            }
        ).status_code
        == 404
    )
    assert (
        thief.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 11}}).status_code
        == 404
    )
    assert thief.http.delete(thief.url, headers=thief.headers(), timeout=5).status_code == 404
    final = json.loads(list(events)[-1]["data"])
    assert final["id"] == 11 and final["result"]["isError"] is False
    assert owner.post({"jsonrpc": "2.0", "id": 2, "method": "ping"}).status_code == 200


@pytest.mark.slow
def test_logs_carry_a_short_hash_of_the_session_id_not_the_id(fake, tmp_path):
    env = process_env(tmp_path, LOG_FORMAT="json")
    proc, url = start_process(fake, env, tmp_path)
    try:
        sid = post(url, INIT).headers["Mcp-Session-Id"]
        post(
            url,
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "ollama_list_models", "arguments": {}},
            },
            **{"Mcp-Session-Id": sid},
        )
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert sid not in err
    assert f'"session":"{ollama_mcp.short_hash(sid)}"' in err.replace(" ", "")


# --- 6. saved contexts are namespaced by principal ----------------------------------------------


def test_contexts_of_one_token_are_invisible_to_another(two_tokens):
    alice, bob = as_token(two_tokens, TOKEN), as_token(two_tokens, OTHER_TOKEN)
    alice.initialize()
    bob.initialize()
    alice.call(
        "ollama_save_context", {"session_id": "plans", "messages": [{"role": "user", "content": "alice's secret"}]}
    )
    result, _ = bob.call("ollama_load_context", {"session_id": "plans"})
    assert result["isError"] and "no saved context" in result["content"][0]["text"]
    assert bob.call("ollama_clear_context", {"session_id": "plans"})[0]["structuredContent"]["deleted"] is False
    assert (
        alice.call("ollama_load_context", {"session_id": "plans"})[0]["structuredContent"]["messages"][0]["content"]
        == "alice's secret"
    )


def test_a_named_principal_keeps_its_contexts_when_its_token_rotates(start_server):
    old, new = "alice:" + TOKEN, "alice:rotated-token-0123456789"
    first = start_server(auth_tokens=(old,))
    c = as_token(first, TOKEN)
    c.initialize()
    c.call("ollama_save_context", {"session_id": "notes", "messages": [{"role": "user", "content": "kept"}]})
    second = start_server(auth_tokens=(new,), data_dir=first.config.data_dir)
    c = as_token(second, "rotated-token-0123456789")
    c.initialize()
    assert (
        c.call("ollama_load_context", {"session_id": "notes"})[0]["structuredContent"]["messages"][0]["content"]
        == "kept"
    )


def test_token_names_are_checked_at_start_up():
    with pytest.raises(ollama_mcp.ConfigError, match="token name"):
        ollama_mcp.load_config({}, environ={"MCP_AUTH_TOKEN": "bad name!:" + TOKEN}, env_file="")


def test_contexts_per_principal_are_capped(start_server):
    server = start_server(context_max_count=2)
    c = server.client()
    c.initialize()
    for name in ("a", "b"):
        assert c.call("ollama_save_context", {"session_id": name, "messages": []})[0]["isError"] is False
    result, _ = c.call("ollama_save_context", {"session_id": "c", "messages": []})
    assert result["isError"] and "MCP_CONTEXT_MAX_COUNT=2" in result["content"][0]["text"]
    assert (
        c.call("ollama_save_context", {"session_id": "a", "messages": [{"role": "user", "content": "update"}]})[0][
            "isError"
        ]
        is False
    )


def test_contexts_saved_before_owners_existed_are_kept(tmp_path):
    path = tmp_path / "contexts.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE contexts (id TEXT PRIMARY KEY, model TEXT, messages TEXT NOT NULL, count INTEGER NOT NULL, "
            "bytes INTEGER NOT NULL, created REAL NOT NULL, updated REAL NOT NULL)"
        )
        db.execute('INSERT INTO contexts VALUES (\'old\', \'m\', \'[{"role":"user","content":"hi"}]\', 1, 30, 0, 0)')
    db.close()
    store = ollama_mcp.ContextStore(str(path), 100, 100_000)
    assert store.load("", "old")["messages"] == [{"role": "user", "content": "hi"}]
    assert store.load("token-x", "old") is None


# --- 7. JSON-RPC batches: every message counts, and they stop with their client ------------------


def batch_session(server):
    r = post(server.url, {**INIT, "params": {**INIT["params"], "protocolVersion": "2025-03-26"}})
    return r.headers["Mcp-Session-Id"]


def test_every_message_of_a_batch_counts_against_the_rate_limit(start_server):
    server = start_server(rate_limit=6, rate_burst=6)
    sid = batch_session(server)
    ping = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(4)]
    first = post(server.url, ping, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-03-26"})
    assert first.status_code == 200 and len(first.json()) == 4
    second = post(server.url, ping, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-03-26"})
    assert second.status_code == 429


def test_a_batch_larger_than_the_burst_is_refused(start_server):
    server = start_server(rate_limit=6, rate_burst=6)
    sid = batch_session(server)
    batch = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(20)]
    r = post(server.url, batch, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-03-26"})
    assert r.status_code == 400 and "MCP_RATE_BURST" in r.json()["error"]["message"]


@pytest.mark.slow
def test_a_batch_stops_when_its_client_leaves(start_server, fake):
    server = start_server()
    sid = batch_session(server)
    fake.chunk_delay = 0.1
    calls = [
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "tools/call",
            "params": {"name": "ollama_generate", "arguments": {"model": "gemma3:270m", "prompt": "x"}},
        }
        for i in range(20)
    ]
    body = json.dumps(calls).encode()
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {ACCEPT}\r\nContent-Type: "
        f"application/json\r\nMcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-03-26\r\nContent-Length: "
        f"{len(body)}\r\n\r\n"
    )
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(head.encode() + body)
    deadline = time.monotonic() + 5
    while fake.streams_started == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    s.close()
    assert fake.aborted.wait(5), "the running generation was stopped"
    time.sleep(0.5)  # a window in which the next batch item would start, were it going to
    assert fake.streams_started <= 2, f"{fake.streams_started} of 20 batch calls started after the client left"


@pytest.mark.slow
def test_batch_generate_takes_a_slot_for_each_parallel_prompt(start_server, fake):
    server = start_server(max_concurrent_per_client=3)
    c = server.client()
    c.initialize()
    fake.chunk_delay = 0.05
    result, _ = c.call(
        "ollama_batch_generate", {"model": "gemma3:270m", "prompts": ["a", "b", "c", "d", "e", "f"], "concurrency": 8}
    )
    assert result["structuredContent"]["concurrency"] == 3  # its own slot and the two the cap leaves
    assert result["structuredContent"]["succeeded"] == 6
    assert server.mcp.slots.running == 0


# --- 8. HTTP framing --------------------------------------------------------------------------

PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def request_head(extra):
    return (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: "
        b"application/json\r\n" + extra + b"\r\n"
    )


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: 40\r\nContent-Length: 45\r\n",
        b"Content-Length: 40, 45\r\n",
        b"Transfer-Encoding: identity\r\nContent-Length: 40\r\n",
        b"Transfer-Encoding: xchunked\r\n",
        b"Transfer-Encoding : chunked\r\nContent-Length: 40\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n",
        b"Content-Length: +40\r\n",
        b"Content-Length: 4e1\r\n",
    ],
)
def test_ambiguous_framing_gets_400_and_a_closed_connection(server, headers):
    answer = raw_http(server.port, request_head(headers) + PING + SMUGGLED)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert any(word in body for word in (b"Content-Length", b"Transfer-Encoding", b"header line")), (
        "refused for its framing"
    )
    assert answer.count(b"HTTP/1.1") == 1, "the bytes after the body were answered as a second request"
    assert b"<timeout>" not in answer


@pytest.mark.slow
def test_a_malformed_request_line_gets_400_and_no_traceback(fake, tmp_path):
    env = process_env(tmp_path, LOG_FORMAT="json")
    proc, url = start_process(fake, env, tmp_path)
    try:
        port = port_of(url)
        assert raw_http(port, b"THIS IS NOT HTTP\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert raw_http(port, request_head(b"Content-Length: abc\r\n") + PING).startswith(b"HTTP/1.1 400")
        assert post(url, INIT).status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err
    assert all(line.startswith("{") for line in err.splitlines() if line.strip()), err


def test_chunk_extensions_and_trailers_are_understood(server):
    body = b"%x;name=value\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(PING), PING)
    answer = raw_http(server.port, request_head(b"Transfer-Encoding: chunked\r\n") + body)
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.1 200")
    # No session for a ping: the handshake era needs one, so this is an ordinary 400 from MCP,
    # not a framing failure or a 500.
    assert b"Mcp-Session-Id header is required" in answer


def test_a_bad_chunk_size_is_400(server):
    body = b"zz\r\n" + PING + b"\r\n0\r\n\r\n"
    answer = raw_http(server.port, request_head(b"Transfer-Encoding: chunked\r\n") + body)
    assert answer.startswith(b"HTTP/1.1 400") and b"chunk" in answer


def test_expect_100_continue_gets_one_interim_answer(server):
    body = json.dumps(INIT).encode()
    answer = raw_http(
        server.port,
        request_head(b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n" % len(body)) + body,
    )
    assert answer.count(b"100 Continue") == 1
    assert b"HTTP/1.1 200 OK" in answer


# --- 9. Host and Origin on every path ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/metrics", "/readyz", "/healthz", "/mcp", "/elsewhere"])
def test_a_rebinding_page_reads_no_path(server, path):
    base = server.url.rsplit("/", 1)[0]
    assert requests.get(base + path, headers={"Host": "evil.example"}, timeout=5).status_code == 403
    assert requests.get(base + path, headers={"Origin": "http://evil.example"}, timeout=5).status_code == 403


def test_readyz_without_a_token_says_only_ready_or_not(start_server, fake):
    server = start_server(auth_tokens=(TOKEN,))
    base = server.url.rsplit("/", 1)[0]
    anonymous = requests.get(f"{base}/readyz", timeout=5)
    assert anonymous.status_code == 200 and anonymous.text == "ready\n"
    detailed = requests.get(f"{base}/readyz", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert fake.url in detailed.text and "0.24.0" in detailed.text


# --- 11. pulls only from allowed registries ------------------------------------------------------


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"model": "169.254.169.254:80/latest/meta-data", "insecure": True}, "does not pull from"),
        ({"model": "evil.example/ns/model"}, "does not pull from"),
        ({"model": "tinyllama", "insecure": True}, "insecure=true is refused"),
    ],
)
def test_pulls_from_other_registries_are_refused_before_ollama_is_asked(client, fake, arguments, expected):
    result, _ = client.call("ollama_pull_model", arguments)
    assert result["isError"] and expected in result["content"][0]["text"]
    assert "/api/pull" not in fake.paths()


def test_operator_named_registries_are_allowed(start_server, fake):
    server = start_server(pull_registries=("registry.ollama.ai", "box.lan:5000"), insecure_registries=("box.lan:5000",))
    c = server.client()
    c.initialize()
    c.call("ollama_pull_model", {"model": "box.lan:5000/team/model", "insecure": True})
    assert fake.bodies("/api/pull")[-1] == {"model": "box.lan:5000/team/model", "insecure": True, "stream": True}


def test_create_from_a_foreign_registry_is_refused(client, fake):
    result, _ = client.call(
        "ollama_create_model", {"model": "x", "modelfile": "FROM 169.254.169.254:80/latest/meta-data"}
    )
    assert result["isError"] and "does not pull from" in result["content"][0]["text"]
    assert "/api/create" not in fake.paths()


# --- 12. stdio lines are capped ------------------------------------------------------------------


def test_an_oversized_stdio_line_is_refused_and_serving_goes_on(make_config):
    import io

    config = make_config(transport="stdio", max_body_bytes=4096)
    big = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"a" * 100_000 + b'"}}\n'
    init = json.dumps({**INIT, "id": 2}).encode() + b"\n"
    stdin = io.BytesIO(big + init)
    stdout = io.BytesIO()
    ollama_mcp.StdioTransport(ollama_mcp.McpServer(config), stdin, stdout).serve()
    answers = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert answers[0]["error"]["code"] == -32600 and "MCP_MAX_BODY_BYTES" in answers[0]["error"]["message"]
    assert answers[1]["id"] == 2 and "result" in answers[1]


# --- 13. smaller ones ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["~nosuchuser0123/x.gguf", "./loop/x.gguf"])
def test_unreadable_paths_are_plain_refusals(make_config, tmp_path, monkeypatch, source):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    monkeypatch.chdir(tmp_path)
    config = make_config(transport="stdio")
    server = ollama_mcp.McpServer(config)
    msg = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "ollama_create_model", "arguments": {"model": "x", "modelfile": f"FROM {source}"}},
    }
    result = server.handle(msg, ollama_mcp.RequestContext(session=ollama_mcp.Session()))["result"]
    text = result["content"][0]["text"]
    assert result["isError"] and "refused" in text
    assert "internal error" not in text and "home directory" not in text and str(tmp_path) not in text


@pytest.mark.slow
def test_a_request_id_reused_while_running_is_refused(client, fake):
    r, events = slow_stream(client, fake, 5)
    response, _ = client.request("tools/call", {"name": "ollama_list_models", "arguments": {}}, msg_id=5)
    assert response["error"]["code"] == -32600 and "already used" in response["error"]["message"]
    cancel_list, _ = client.call("ollama_cancel_request", {})
    assert [c["request_id"] for c in cancel_list["structuredContent"]["calls"]] == [5]
    assert json.loads(list(events)[-1]["data"])["result"]["isError"] is False


def test_idle_sockets_of_one_address_do_not_lock_out_the_rest(start_server):
    server = start_server(max_connections=8, max_connections_per_client=3, client_timeout=5)
    port = server.port
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    assert wait_for(lambda: server.srv._open_total == 3)
    extra = socket.create_connection(("127.0.0.1", port))
    extra.settimeout(3)
    assert extra.recv(100).startswith(b"HTTP/1.1 503")
    extra.close()
    # Another address (127.0.0.2 is loopback too) still gets in.
    other = socket.socket()
    other.bind(("127.0.0.2", 0))
    other.connect(("127.0.0.1", port))
    other.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    other.settimeout(3)
    assert other.recv(100).startswith(b"HTTP/1.1 200")
    other.close()
    for s in idle:
        s.close()
