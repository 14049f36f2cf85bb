"""The MCP protocol contract of DESIGN.md, item by item, over a real socket."""

import json

import pytest
import requests

import ollama_mcp
from conftest import ACCEPT, INIT, post, read_messages, stream_request

# --- HTTP surface -------------------------------------------------------------------------


def test_get_on_endpoint_is_405_with_allow(server):
    r = requests.get(server.url, headers={"Accept": "text/event-stream"}, timeout=5)
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST, DELETE"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_other_methods_are_405(server, method):
    r = requests.request(method, server.url, timeout=5)
    assert r.status_code == 405
    assert "POST" in r.headers["Allow"]


def test_other_paths_are_404(server):
    r = requests.post(server.url.replace("/mcp", "/other"), json=INIT, timeout=5)
    assert r.status_code == 404


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream", "text/html", ""])
def test_post_needs_accept_for_json_and_sse(server, accept):
    r = post(server.url, INIT, Accept=accept)
    assert r.status_code == 406


@pytest.mark.parametrize("accept", ["*/*", "application/json, text/event-stream", "application/*, text/*"])
def test_post_accepts_wildcards(server, accept):
    assert post(server.url, INIT, Accept=accept).status_code == 200


def test_post_needs_json_content_type(server):
    r = post(server.url, INIT, **{"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_bad_json_is_400_with_parse_error_and_null_id(server):
    r = post(server.url, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["code"] == -32700
    assert body["id"] is None


def test_invalid_jsonrpc_object_is_invalid_request(client):
    r = client.post({"jsonrpc": "1.0", "id": 5, "method": "ping"})
    assert r.status_code == 200
    assert r.json()["error"]["code"] == -32600
    assert r.json()["id"] == 5


def test_body_over_the_cap_is_413(start_server):
    server = start_server(max_body_bytes=2048)
    big = dict(INIT, params=dict(INIT["params"], padding="x" * 4096))
    assert post(server.url, big).status_code == 413


# --- sessions -----------------------------------------------------------------------------


def test_initialize_sets_a_visible_ascii_session_id(server):
    r = post(server.url, INIT)
    session_id = r.headers["Mcp-Session-Id"]
    assert session_id and all(0x21 <= ord(c) <= 0x7E for c in session_id)
    assert r.headers["Content-Type"] == "application/json"


def test_request_without_session_is_400(server):
    r = post(server.url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert r.status_code == 400


def test_unknown_session_is_404(server):
    r = post(server.url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, **{"Mcp-Session-Id": "nope"})
    assert r.status_code == 404


def test_delete_ends_the_session(client):
    r = requests.delete(client.url, headers={"Mcp-Session-Id": client.session_id}, timeout=5)
    assert r.status_code == 200
    assert client.post({"jsonrpc": "2.0", "id": 3, "method": "ping"}).status_code == 404


def test_idle_session_expires(start_server, monkeypatch):
    server = start_server(session_ttl=1)
    c = server.client()
    c.initialize()
    session = server.mcp.sessions.get(c.session_id)
    session.last_seen -= 5
    assert c.post({"jsonrpc": "2.0", "id": 3, "method": "ping"}).status_code == 404


def test_session_count_is_capped_by_evicting_the_oldest(start_server):
    server = start_server(max_sessions=2)
    clients = [server.client() for _ in range(3)]
    for c in clients:
        c.initialize()
    assert len(server.mcp.sessions) == 2
    assert clients[0].post({"jsonrpc": "2.0", "id": 3, "method": "ping"}).status_code == 404
    assert clients[2].post({"jsonrpc": "2.0", "id": 3, "method": "ping"}).status_code == 200


def test_notification_and_response_get_202_empty(client):
    r = client.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert (r.status_code, r.content) == (202, b"")
    r = client.post({"jsonrpc": "2.0", "id": 99, "result": {}})
    assert (r.status_code, r.content) == (202, b"")


# --- protocol version ---------------------------------------------------------------------


@pytest.mark.parametrize("version", ollama_mcp.PROTOCOL_VERSIONS)
def test_initialize_echoes_a_supported_version(server, version):
    body = dict(INIT, params=dict(INIT["params"], protocolVersion=version))
    assert post(server.url, body).json()["result"]["protocolVersion"] == version


def test_initialize_with_unknown_version_answers_the_newest(server):
    body = dict(INIT, params=dict(INIT["params"], protocolVersion="1999-01-01"))
    assert post(server.url, body).json()["result"]["protocolVersion"] == ollama_mcp.LATEST_PROTOCOL_VERSION


def test_unsupported_protocol_version_header_is_400(client):
    r = client.post({"jsonrpc": "2.0", "id": 3, "method": "ping"}, **{"MCP-Protocol-Version": "2099-01-01"})
    assert r.status_code == 400


def test_missing_protocol_version_header_is_accepted(client):
    h = client.headers()
    del h["MCP-Protocol-Version"]
    r = requests.post(client.url, json={"jsonrpc": "2.0", "id": 3, "method": "ping"}, headers=h, timeout=5)
    assert r.status_code == 200


def test_initialize_result_has_capabilities_and_server_info(server):
    result = post(server.url, INIT).json()["result"]
    assert result["capabilities"] == {
        "tools": {"listChanged": False},
        "logging": {},
        "completions": {},
        "resources": {"subscribe": False, "listChanged": False},  # no change feed before 2026-07-28
        "prompts": {"listChanged": False},
    }
    assert result["serverInfo"]["name"] == "ollama-mcp"
    assert result["serverInfo"]["version"] == ollama_mcp.__version__


def test_server_discover_without_its_envelope_is_a_modern_invalid_params(server):
    # A dual-era client reads a recognised 2026-07-28 error as "this server is modern".
    r = post(server.url, {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32602 and r.json()["id"] == 1


# --- batches ------------------------------------------------------------------------------


def test_batch_is_rejected_after_2025_03_26(client):
    r = client.post([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    assert r.status_code == 400


def test_batch_is_answered_in_2025_03_26(server):
    c = server.client(protocol_version="2025-03-26")
    c.initialize()
    r = c.post(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        ]
    )
    assert r.status_code == 200
    replies = r.json()
    assert [m["id"] for m in replies] == [1, 2]
    assert len(replies[1]["result"]["tools"]) == len(ollama_mcp.BUILTIN_TOOLS)


# --- Origin and Host ----------------------------------------------------------------------


def test_foreign_origin_is_403(server):
    assert post(server.url, INIT, Origin="http://evil.example.com").status_code == 403


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://127.0.0.1", "https://[::1]:8080"])
def test_loopback_origins_pass(server, origin):
    assert post(server.url, INIT, Origin=origin).status_code == 200


def test_configured_origin_passes(start_server):
    server = start_server(allowed_origins=("https://app.example.com",))
    assert post(server.url, INIT, Origin="https://app.example.com").status_code == 200
    assert post(server.url, INIT, Origin="https://other.example.com").status_code == 403


def test_foreign_host_on_loopback_bind_is_403(server):
    assert post(server.url, INIT, Host="evil.example.com").status_code == 403


def test_host_is_not_checked_on_a_public_bind_without_allow_list(make_config):
    app = ollama_mcp.make_app(make_config(host="0.0.0.0"))
    app._check_origin_and_host({"HTTP_HOST": "my-server.lan:4838"})  # no exception


# --- methods ------------------------------------------------------------------------------


def test_ping_returns_empty_result(client):
    response, _ = client.request("ping")
    assert response["result"] == {}


def test_unknown_method_is_32601(client):
    response, _ = client.request("unknown/method")
    assert response["error"]["code"] == -32601


def test_set_level_accepts_mcp_levels_and_rejects_others(client, server):
    response, _ = client.request("logging/setLevel", {"level": "warning"})
    assert response["result"] == {}
    assert server.mcp.sessions.get(client.session_id).log_level == "warning"
    response, _ = client.request("logging/setLevel", {"level": "loud"})
    assert response["error"]["code"] == -32602


def test_tools_list_paginates_with_cursor(start_server):
    server = start_server(page_size=3)
    c = server.client()
    c.initialize()
    names, cursor = [], None
    while True:
        response, _ = c.request("tools/list", {"cursor": cursor} if cursor else {})
        names += [t["name"] for t in response["result"]["tools"]]
        cursor = response["result"].get("nextCursor")
        if not cursor:
            break
    assert names == [t.name for t in server.mcp.registry]
    response, _ = c.request("tools/list", {"cursor": "bogus"})
    assert response["error"]["code"] == -32602


def test_every_tool_is_fully_described(client):
    response, _ = client.request("tools/list")
    for spec in response["result"]["tools"]:
        assert spec["inputSchema"]["additionalProperties"] is False, spec["name"]
        assert spec["outputSchema"]["type"] == "object"
        assert set(spec["annotations"]) >= {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
        # Lean (a model reads every description on every turn) but a sentence that says what the tool does.
        assert len(spec["description"].split()) >= 5 and len(spec["description"]) <= 200, spec["name"]
        assert spec["title"]


def test_unknown_tool_is_32602(client):
    response, _ = client.request("tools/call", {"name": "ollama_fly", "arguments": {}})
    assert response["error"]["code"] == -32602


@pytest.mark.parametrize("params", [{"arguments": {}}, {"name": 5}, {"name": "ollama_list_models", "arguments": [1]}])
def test_malformed_tools_call_params_are_32602(client, params):
    response, _ = client.request("tools/call", params)
    assert response["error"]["code"] == -32602


def test_params_that_are_not_an_object_are_invalid_request(client):
    r = client.post({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": [1, 2]})
    assert r.json()["error"]["code"] == -32600


def test_completion_offers_installed_model_names(client):
    response, _ = client.request(
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "summarize_text"}, "argument": {"name": "model", "value": "gem"}},
    )
    values = response["result"]["completion"]["values"]
    assert values == ["gemma3-270m-assistant:latest", "gemma3:270m"]


def test_completion_for_other_arguments_is_empty(client):
    response, _ = client.request(
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "x"}, "argument": {"name": "prompt", "value": "a"}},
    )
    assert response["result"]["completion"]["values"] == []


def test_bad_arguments_are_a_tool_error_naming_the_path(client):
    result, _ = client.call("ollama_generate", {"model": "gemma3:270m", "options": {"temperature": "hot"}})
    assert result["isError"] is True
    assert "$.options.temperature" in result["content"][0]["text"]
    assert "number" in result["content"][0]["text"]


def test_missing_required_argument_names_it(client):
    result, _ = client.call("ollama_show_model", {})
    assert result["isError"] is True
    assert "'model' is a required property" in result["content"][0]["text"]


def test_unknown_option_key_is_rejected_with_the_allowed_keys(client):
    result, _ = client.call("ollama_generate", {"model": "gemma3:270m", "options": {"temprature": 0.5}})
    text = result["content"][0]["text"]
    assert result["isError"] is True and "'temprature' was unexpected" in text and "temperature" in text


def test_read_messages_helper_handles_json(client):
    r = client.post({"jsonrpc": "2.0", "id": 42, "method": "ping"})
    assert list(read_messages(r)) == [{"jsonrpc": "2.0", "id": 42, "result": {}}]


# --- connection handling --------------------------------------------------------------------


def test_connections_are_kept_alive_across_requests_and_streams(server):
    import http.client

    port = server.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
    conn.request("POST", "/mcp", json.dumps(INIT), headers)
    first = conn.getresponse()
    assert first.getheader("Connection") is None
    headers["Mcp-Session-Id"] = first.getheader("Mcp-Session-Id")
    first.read()
    sock = conn.sock
    stream = stream_request(2)
    conn.request("POST", "/mcp", json.dumps(stream), headers)
    sse = conn.getresponse()
    assert sse.getheader("Transfer-Encoding") == "chunked"
    assert sse.read().count(b"event: message") == 10
    conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": 3, "method": "ping"}), headers)
    assert json.loads(conn.getresponse().read())["result"] == {}
    assert conn.sock is sock, "one connection served all three requests"
    conn.close()


def test_a_refused_request_with_an_unread_body_closes_the_connection(start_server):
    server = start_server(max_body_bytes=1024)
    import http.client

    port = server.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/mcp", b"x" * 4096, {"Accept": ACCEPT, "Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 413 and r.getheader("Connection") == "close"
    conn.close()


def test_http_1_0_clients_get_a_closed_unchunked_stream(server, client):
    import socket

    port = server.port
    body = json.dumps(stream_request(2)).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        f"POST /mcp HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: {ACCEPT}\r\nContent-Type: "
        f"application/json\r\nMcp-Session-Id: {client.session_id}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert rest.startswith(b"event: message") and rest.count(b"event: message") == 10
