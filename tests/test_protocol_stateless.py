"""The 2026-07-28 (stateless) era over raw HTTP and stdio: envelope, headers, errors, caching,
logging per request, subscriptions; beside it, the handshake era on the same endpoint."""

import base64
import io
import json

import pytest
import requests

import ollama_mcp
from conftest import ACCEPT, REGION_PACK, iter_sse, wait_for

VERSION = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "pytest", "version": "1"},
}
NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def modern(url, method, params=None, msg_id=1, headers=None, stream=False, meta=None):
    """POST one stateless-era request with the headers a conforming client sends."""
    params = dict(params or {})
    params["_meta"] = {**META, **params.get("_meta", {}), **(meta or {})}
    h = {"Accept": ACCEPT, "Content-Type": "application/json", "MCP-Protocol-Version": VERSION, "Mcp-Method": method}
    if method in NAMED and NAMED[method] in params:
        h["Mcp-Name"] = params[NAMED[method]]
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v is not None}
    return requests.post(
        url,
        data=json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}),
        headers=h,
        stream=stream,
        timeout=30,
    )


def modern_stream(url, msg_id=1):
    """Start a streaming generation with a progressToken; the streaming HTTP response."""
    arguments = {"model": "gemma3:270m", "prompt": "x"}
    params = {"name": "ollama_generate_stream", "arguments": arguments, "_meta": {**META, "progressToken": 1}}
    return modern(url, "tools/call", params, msg_id=msg_id, stream=True)


def messages(r):
    if r.headers["Content-Type"].startswith("application/json"):
        return [r.json()]
    return [json.loads(e["data"]) for e in iter_sse(r)]


def test_discover_names_versions_capabilities_and_the_server(server):
    r = modern(server.url, "server/discover")
    assert r.status_code == 200
    result = r.json()["result"]
    assert result["supportedVersions"] == [VERSION]
    assert result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "ollama-mcp"
    assert set(result["capabilities"]) == {
        "tools",
        "resources",
        "prompts",
        "completions",
        "extensions",
    }  # no logging capability: per request
    assert result["capabilities"]["extensions"] == {"io.modelcontextprotocol/tasks": {}}
    assert result["capabilities"]["resources"] == {"subscribe": True, "listChanged": True}
    assert result["ttlMs"] > 0 and result["cacheScope"] == "public"
    assert "Mcp-Session-Id" not in r.headers


def test_cache_scope_is_private_when_tokens_are_set(start_server):
    server = start_server(auth_tokens=("s3cret-token-for-tests-0123456789",))
    r = modern(server.url, "tools/list", headers={"Authorization": "Bearer s3cret-token-for-tests-0123456789"})
    assert r.json()["result"]["cacheScope"] == "private"


@pytest.mark.parametrize(
    "method", ["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe", "no/such"]
)
def test_removed_and_unknown_methods_are_404_with_the_id(server, method):
    r = modern(server.url, method, msg_id="abc")
    assert r.status_code == 404
    assert r.json() == {
        "jsonrpc": "2.0",
        "id": "abc",
        "error": {"code": -32601, "message": f"Method not found: {method}"},
    }


@pytest.mark.parametrize(
    "meta, code",
    [
        ({"io.modelcontextprotocol/protocolVersion": None}, -32020),  # the header says 2026-07-28: they disagree
        ({"io.modelcontextprotocol/clientCapabilities": "none"}, -32602),
        ({"io.modelcontextprotocol/logLevel": "loud"}, -32602),
    ],
)
def test_a_broken_envelope_is_invalid_params(server, meta, code):
    r = modern(server.url, "tools/list", meta=meta)
    assert r.status_code == 400 and r.json()["error"]["code"] == code and r.json()["id"] == 1


def test_an_unknown_version_lists_the_supported_ones(server):
    r = modern(
        server.url,
        "tools/list",
        meta={"io.modelcontextprotocol/protocolVersion": "2099-01-01"},
        headers={"MCP-Protocol-Version": "2099-01-01"},
    )
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": -32022,
        "message": "Unsupported protocol version",
        "data": {"supported": [VERSION], "requested": "2099-01-01"},
    }


@pytest.fixture
def region_server(start_server, tmp_path):
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "region.py").write_text(REGION_PACK)
    return start_server(tools_dir=str(packs))


@pytest.mark.parametrize(
    "headers",
    [
        {"Mcp-Method": "prompts/list"},
        {"Mcp-Method": None},
        {"MCP-Protocol-Version": None, "Mcp-Method": "tools/call"},
        {"Mcp-Name": "ollama_generate"},
        {"Mcp-Name": None},
    ],
)
def test_headers_that_disagree_with_the_body_are_400_header_mismatch(server, fake, headers):
    r = modern(
        server.url, "tools/call", {"name": "ollama_show_model", "arguments": {"model": "gemma3:270m"}}, headers=headers
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == -32020
    assert "/api/show" not in fake.paths()


@pytest.mark.parametrize(
    "header, accepted",
    [
        ("eu-west", True),
        ("=?base64?" + base64.b64encode(b"eu-west").decode() + "?=", True),
        (None, False),
        ("us-east", False),
        ("=?base64?ZXUtd2VzdA?=", False),  # no padding
        ("=?base64?not base64!?=", False),
    ],
)
def test_a_packs_x_mcp_header_argument_must_come_with_its_header(region_server, header, accepted):
    r = modern(
        region_server.url,
        "tools/call",
        {"name": "pack_echo_region", "arguments": {"region": "eu-west"}},
        headers={"Mcp-Param-Region": header},
    )
    if accepted:
        assert r.status_code == 200 and r.json()["result"]["structuredContent"] == {"region": "eu-west"}
    else:
        assert r.status_code == 400 and r.json()["error"]["code"] == -32020


def test_base64_names_and_white_space_are_accepted(server):
    encoded = "=?base64?" + base64.b64encode(b"ollama_show_model").decode() + "?="
    r = modern(
        server.url,
        "tools/call",
        {"name": "ollama_show_model", "arguments": {"model": "gemma3:270m"}},
        headers={"Mcp-Name": encoded},
    )
    assert r.status_code == 200 and r.json()["result"]["isError"] is False
    r = modern(
        server.url,
        "tools/call",
        {"name": "ollama_show_model", "arguments": {"model": "gemma3:270m"}},
        headers={"Mcp-Name": "ollama_show_model \t "},
    )
    assert r.status_code == 200


def test_a_session_header_is_ignored_and_none_is_minted(server):
    r = modern(server.url, "tools/list", headers={"Mcp-Session-Id": "deadbeef"})
    assert r.status_code == 200 and "Mcp-Session-Id" not in r.headers


def test_stream_events_carry_no_ids(server):
    r = modern(
        server.url,
        "tools/call",
        {
            "name": "ollama_generate_stream",
            "arguments": {"model": "gemma3:270m", "prompt": "x"},
            "_meta": {**META, "progressToken": "p"},
        },
        stream=True,
    )
    events = list(iter_sse(r))
    assert len(events) == 10 and all("id" not in e for e in events)
    final = json.loads(events[-1]["data"])
    assert final["result"]["resultType"] == "complete" and final["result"]["isError"] is False


def test_log_messages_only_for_a_request_that_asked(server):
    plain = messages(
        modern(
            server.url,
            "tools/call",
            {"name": "ollama_generate", "arguments": {"model": "gemma3:270m", "prompt": "x"}},
            stream=True,
        )
    )
    assert [m.get("method") for m in plain] == [None]
    asked = messages(
        modern(
            server.url,
            "tools/call",
            {"name": "ollama_generate", "arguments": {"model": "gemma3:270m", "prompt": "x"}},
            meta={"io.modelcontextprotocol/logLevel": "debug"},
            stream=True,
        )
    )
    assert asked[0]["method"] == "notifications/message" and asked[0]["params"]["data"]["completion_tokens"] == 9
    assert "result" in asked[-1]


def test_list_and_read_results_carry_cache_hints(server, client):
    for method, params in (
        ("tools/list", {}),
        ("prompts/list", {}),
        ("resources/list", {}),
        ("resources/templates/list", {}),
        ("resources/read", {"uri": "ollama://models"}),
    ):
        result = modern(server.url, method, params).json()["result"]
        assert (
            isinstance(result["ttlMs"], int) and result["ttlMs"] >= 0 and result["cacheScope"] in ("public", "private")
        ), method
        legacy, _ = client.request(method, params)
        assert "ttlMs" not in legacy["result"] and "resultType" not in legacy["result"], method
    context = modern(server.url, "resources/read", {"uri": "ollama://contexts/none"}).json()
    assert context["error"]["code"] == -32602


def test_both_eras_share_the_endpoint_at_once(server, client):
    assert modern(server.url, "tools/list").json()["result"]["tools"]
    assert client.request("ping")[0]["result"] == {}
    assert len(server.mcp.sessions) == 1


@pytest.mark.slow
def test_closing_the_stream_cancels_the_call_and_ollama(server, fake):
    fake.chunk_delay = 0.1
    r = modern_stream(server.url)
    next(iter_sse(r))
    r.close()
    assert fake.aborted.wait(3)
    assert wait_for(lambda: len(server.mcp.calls) == 0)


def test_calls_of_one_principal_are_visible_across_requests(server, fake):
    fake.chunk_delay = 0.1
    r = modern_stream(server.url, msg_id=41)
    events = iter_sse(r)
    next(events)
    listing = modern(
        server.url, "tools/call", {"name": "ollama_cancel_request", "arguments": {"request_id": "41"}}, msg_id=42
    ).json()["result"]
    assert listing["structuredContent"]["cancelled"] is True
    final = json.loads(list(events)[-1]["data"])
    assert (
        final["id"] == 41
        and final["result"]["isError"]
        and "cancelled by ollama_cancel_request" in final["result"]["content"][0]["text"]
    )


def listen(url, filters, msg_id="sub-1"):
    return modern(url, "subscriptions/listen", {"notifications": filters}, msg_id=msg_id, stream=True)


def test_listen_acknowledges_then_tags_every_change(server):
    r = listen(
        server.url,
        {
            "resourcesListChanged": True,
            "toolsListChanged": True,
            "resourceSubscriptions": ["ollama://models/tinyllama", "file:///etc/passwd"],
        },
    )
    events = iter_sse(r)
    ack = json.loads(next(events)["data"])
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    assert ack["params"] == {
        "_meta": {"io.modelcontextprotocol/subscriptionId": "sub-1"},
        "notifications": {"resourcesListChanged": True, "resourceSubscriptions": ["ollama://models/tinyllama"]},
    }
    assert (
        modern(server.url, "tools/call", {"name": "ollama_pull_model", "arguments": {"model": "tinyllama"}}).json()[
            "result"
        ]["isError"]
        is False
    )
    got = [json.loads(next(events)["data"]) for _ in range(2)]
    assert {m["method"] for m in got} == {"notifications/resources/updated", "notifications/resources/list_changed"}
    assert all(m["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1" for m in got)
    r.close()


def test_listen_ends_with_a_result_at_shutdown(server):
    r = listen(server.url, {"resourcesListChanged": True})
    events = iter_sse(r)
    next(events)
    server.mcp.cancel_all()
    final = json.loads(next(events)["data"])
    assert final["id"] == "sub-1" and final["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1"


def test_contexts_changes_reach_only_their_principal(start_server):
    tokens = {"alice": "a" * 24, "bob": "b" * 24}
    server = start_server(auth_tokens=tuple(f"{n}:{t}" for n, t in tokens.items()))
    auth = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
    streams = {}
    for name in tokens:
        streams[name] = modern(
            server.url,
            "subscriptions/listen",
            {"notifications": {"resourceSubscriptions": ["ollama://contexts/notes"]}},
            headers=auth[name],
            stream=True,
        )
    events = {name: iter_sse(r) for name, r in streams.items()}
    for name in tokens:
        next(events[name])  # the acknowledgement
    save = modern(
        server.url,
        "tools/call",
        {"name": "ollama_save_context", "arguments": {"session_id": "notes", "messages": []}},
        headers=auth["alice"],
    )
    assert save.json()["result"]["isError"] is False
    assert json.loads(next(events["alice"])["data"])["params"]["uri"] == "ollama://contexts/notes"
    # The change was offered to every subscription before the save answered: end them now (as at
    # shutdown, each with its result) and read what bob's stream holds.
    server.mcp.cancel_all()
    rest = [json.loads(event["data"]) for event in events["bob"] if "data" in event]
    assert [m.get("method") for m in rest] == [None] and "result" in rest[0], "bob hears nothing of alice's context"
    for r in streams.values():
        r.close()


# --- stdio ----------------------------------------------------------------------------------


def stdio_exchange(make_config, lines):
    stdin = io.BytesIO(b"".join(json.dumps(m).encode() + b"\n" for m in lines))
    stdout = io.BytesIO()
    ollama_mcp.StdioTransport(ollama_mcp.McpServer(make_config(transport="stdio")), stdin, stdout).serve()
    return [json.loads(line) for line in stdout.getvalue().splitlines()]


def test_stdio_serves_both_eras_on_one_stream(make_config):
    out = stdio_exchange(
        make_config,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": META}},
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/list",
                "params": {"_meta": {**META, "io.modelcontextprotocol/protocolVersion": "1999-01-01"}},
            },
            {"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"_meta": META}},
            {
                "jsonrpc": "2.0",
                "id": 4,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            },
            {"jsonrpc": "2.0", "id": 5, "method": "ping"},
        ],
    )
    by_id = {m["id"]: m for m in out}
    assert by_id[1]["result"]["supportedVersions"] == [VERSION]
    assert by_id[2]["error"]["code"] == -32022
    assert by_id[3]["error"]["code"] == -32601
    assert by_id[4]["result"]["protocolVersion"] == "2025-11-25"
    assert by_id[5]["result"] == {}


# --- exposure: resources and prompts follow their tools ------------------------------------------


def test_read_only_hides_the_prompt_that_creates_a_model(start_server):
    server = start_server(read_only=True)
    names = [p["name"] for p in modern(server.url, "prompts/list").json()["result"]["prompts"]]
    assert names == ["compare_models", "summarize_text"]
    r = modern(
        server.url, "prompts/get", {"name": "modelfile_persona", "arguments": {"base_model": "x", "persona": "y"}}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == -32602


def test_a_hidden_tool_hides_its_resource(start_server):
    server = start_server(tools_disabled=("ollama_load_context", "ollama_list_processes"))
    listed = [r["uri"] for r in modern(server.url, "resources/list").json()["result"]["resources"]]
    assert "ollama://running" not in listed and "ollama://models" in listed
    templates = [
        t["uriTemplate"] for t in modern(server.url, "resources/templates/list").json()["result"]["resourceTemplates"]
    ]
    assert templates == ["ollama://models/{name}"]
    assert modern(server.url, "resources/read", {"uri": "ollama://running"}).json()["error"]["code"] == -32602
    completion = modern(
        server.url,
        "completion/complete",
        {
            "ref": {"type": "ref/resource", "uri": "ollama://contexts/{session_id}"},
            "argument": {"name": "session_id", "value": ""},
        },
    )
    assert completion.json()["result"]["completion"]["values"] == []


def test_with_only_generation_exposed_there_is_nothing_to_read(start_server):
    server = start_server(tools_enabled=("ollama_generate",))
    discovered = modern(server.url, "server/discover").json()["result"]["capabilities"]
    assert "resources" not in discovered and set(discovered) == {"tools", "completions", "prompts"}
    assert modern(server.url, "resources/list").json()["result"]["resources"] == []
