"""The official `mcp` Python client as a real peer, over Streamable HTTP and over stdio."""

import sys

import anyio
import pytest
from mcp import Client, StdioServerParameters

import ollama_mcp
from conftest import ROOT, cancel_after_progress

CALLS = {
    "ollama_check_health": {},
    "ollama_list_models": {},
    "ollama_show_model": {"model": "gemma3:270m"},
    "ollama_pull_model": {"model": "tinyllama"},
    "ollama_generate": {"model": "gemma3:270m", "prompt": "hi", "options": {"num_predict": 4}},
    "ollama_generate_stream": {"model": "gemma3:270m", "prompt": "hi", "options": {"num_predict": 4}},
    "ollama_chat": {"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}]},
    "ollama_chat_stream": {"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}]},
}


def stdio_params(fake, tmp_path):
    return StdioServerParameters(
        command=sys.executable,
        args=[str(ROOT / "ollama_mcp.py"), "--transport", "stdio", "--ollama-url", fake.url],
        env={"MCP_TOOLS_DIR": str(tmp_path / "none"), "MCP_DATA_DIR": str(tmp_path / "data"), "OLLAMA_RETRIES": "0"},
        cwd=str(tmp_path),
    )


def targets(server, fake, tmp_path):
    return {"http": server.url, "stdio": stdio_params(fake, tmp_path)}


@pytest.fixture(params=["http", "stdio"])
def target(request, server, fake, tmp_path):
    return targets(server, fake, tmp_path)[request.param]


def test_initialize_and_list_tools(target):
    async def main():
        async with Client(target) as client:
            assert client.server_info.name == "ollama-mcp"
            tools = await client.list_tools()
            return [t.name for t in tools.tools]

    assert anyio.run(main) == [t.name for t in ollama_mcp.BUILTIN_TOOLS]


def test_every_core_tool_is_callable(target):
    async def main():
        results = {}
        async with Client(target) as client:
            for name, args in CALLS.items():
                result = await client.call_tool(name, args)
                results[name] = result
        return results

    results = anyio.run(main)
    for name, result in results.items():
        assert result.is_error is False, (name, result.content)
        assert result.structured_content, name
    assert results["ollama_generate"].structured_content["response"] == "The sky is blue"
    assert results["ollama_chat"].structured_content["message"]["content"].startswith("The sky")


def test_streamed_progress_reaches_the_client(target):
    async def main():
        seen = []

        async def on_progress(progress, total, message):
            seen.append((progress, message))

        async with Client(target) as client:
            result = await client.call_tool("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, progress_callback=on_progress)
        return seen, result

    seen, result = anyio.run(main)
    assert [m for _, m in seen] == ["The", " sky", " is", " blue", " because", " of", " Rayleigh", " scattering", "."]
    assert result.structured_content["response"] == "The sky is blue because of Rayleigh scattering."


def test_tool_errors_reach_the_client_as_is_error(target):
    async def main():
        async with Client(target) as client:
            return await client.call_tool("ollama_show_model", {"model": "nope"})

    result = anyio.run(main)
    assert result.is_error is True
    assert "ollama_list_models" in result.content[0].text


def test_cancelling_a_stream_midway_stops_ollama(target, fake):
    fake.chunk_delay = 0.1

    async def main():
        async with Client(target) as client:
            seen = await cancel_after_progress(client, "ollama_chat_stream", {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}]}, 2, timeout=10)
            with anyio.fail_after(5):
                while not fake.aborted.is_set():
                    await anyio.sleep(0.05)
            # the session still works after a cancel
            after = await client.call_tool("ollama_list_models", {})
        return seen, after

    seen, after = anyio.run(main)
    assert len(seen) == 2
    assert fake.streams_aborted == 1
    assert after.is_error is False
