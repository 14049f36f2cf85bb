"""The in-process transport: MCP through the dispatcher's opening call, no socket; the same
protocol, eras, cancellation and progress as over HTTP and stdio."""

import inspect
import threading

import pytest

import ollama_mcp
from conftest import wait_for


@pytest.fixture
def mcp(make_config):
    return ollama_mcp.McpServer(make_config())


def test_a_handshake_era_client_initializes_and_calls_tools(mcp):
    client = ollama_mcp.InProcessClient(mcp)
    assert client.initialize()["protocolVersion"] == ollama_mcp.LATEST_PROTOCOL_VERSION
    result = client.call_tool("ollama_list_models")
    assert result["isError"] is False and result["structuredContent"]["count"] == 4
    assert len(client.request("tools/list")["tools"]) == len(mcp.registry)


def test_a_stateless_era_client_needs_no_handshake(mcp):
    client = ollama_mcp.InProcessClient(mcp, modern=True)
    result = client.request("server/discover")
    assert result["supportedVersions"] == ["2026-07-28"] and result["resultType"] == "complete"
    assert client.call_tool("ollama_list_models")["resultType"] == "complete"
    with pytest.raises(ollama_mcp.ProtocolError) as refused:
        client.request("initialize", {"protocolVersion": "2025-11-25"})
    assert refused.value.code == -32601, "initialize is gone in 2026-07-28"


def test_progress_reaches_the_callback_token_by_token(mcp):
    client = ollama_mcp.InProcessClient(mcp)
    client.initialize()
    seen = []
    args = {"model": "gemma3:270m", "prompt": "Hi"}
    result = client.call_tool("ollama_generate_stream", args, progress=lambda p: seen.append(p["message"]))
    assert "".join(seen) == result["structuredContent"]["response"] and len(seen) == 9


def test_a_bad_argument_is_an_error_result_and_a_bad_method_a_protocol_error(mcp):
    client = ollama_mcp.InProcessClient(mcp)
    client.initialize()
    assert client.call_tool("ollama_show_model", {"model": "-rf"})["isError"] is True
    with pytest.raises(ollama_mcp.ProtocolError) as refused:
        client.request("tools/fly")
    assert refused.value.code == -32601


def test_two_clients_are_two_channels_and_a_cancel_finds_its_own_call(mcp, fake):
    fake.chunk_delay = 0.2
    first, second = ollama_mcp.InProcessClient(mcp), ollama_mcp.InProcessClient(mcp)
    first.initialize()
    second.initialize()
    outcome = {}

    def call():
        try:
            outcome["result"] = first.call_tool("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"})
        except ollama_mcp.Cancelled:
            outcome["cancelled"] = True

    worker = threading.Thread(target=call)
    worker.start()
    assert wait_for(lambda: fake.streams_started == 1)
    request_id = mcp.calls.all()[0].request_id
    second.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}})
    assert fake.open_streams == 1, "another channel's cancel does not reach it"
    first.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}})
    worker.join(5)
    assert outcome == {"cancelled": True} and fake.aborted.wait(2)


def test_the_transport_is_a_page():
    # what a transport must do besides framing bytes, measured: the dispatcher's open() does the rest
    lines = len(inspect.getsource(ollama_mcp.InProcessClient).splitlines())
    assert lines <= 66, f"{lines} lines"
