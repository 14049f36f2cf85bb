"""The official `mcp` Python client as a real peer, over Streamable HTTP and over stdio."""

import json
import sys

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import PromptReference, ResourceTemplateReference

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


# Every built-in tool, in an order that leaves the fake as it found it.
ALL_CALLS = [
    ("ollama_check_health", {}),
    ("ollama_get_version", {}),
    ("ollama_list_models", {}),
    ("ollama_show_model", {"model": "gemma3:270m"}),
    ("ollama_get_modelfile", {"model": "gemma3:270m"}),
    ("ollama_get_model_size", {"model": "gemma3:270m"}),
    ("ollama_get_models_info", {}),
    ("ollama_list_processes", {}),
    ("ollama_unload_model", {"model": "gemma3:270m"}),
    ("ollama_search_models", {"query": "gemma"}),
    ("ollama_pull_model", {"model": "tinyllama"}),
    ("ollama_push_model", {"model": "me/gemma3:270m"}),  # refused: no MCP_PUSH_REGISTRIES by default
    ("ollama_web_search", {"query": "ollama"}),  # refused: no OLLAMA_API_KEY
    ("ollama_web_fetch", {"url": "https://ollama.com"}),  # refused: no OLLAMA_API_KEY
    ("ollama_copy_model", {"source": "gemma3:270m", "destination": "client-copy"}),
    ("ollama_create_model", {"model": "client-persona", "modelfile": "FROM gemma3:270m\nSYSTEM You are terse.\n"}),
    ("ollama_update_model", {"model": "client-persona", "modelfile": "PARAMETER temperature 0.2\n"}),
    ("ollama_delete_model", {"model": "client-copy"}),
    ("ollama_delete_model", {"model": "client-persona"}),
    ("ollama_delete_model", {"model": "tinyllama"}),
    ("ollama_check_blobs", {"digest": "sha256:" + "0" * 64}),
    ("ollama_generate", {"model": "gemma3:270m", "prompt": "hi", "options": {"num_predict": 4}}),
    ("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "hi"}),
    ("ollama_chat", {"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}]}),
    ("ollama_chat_stream", {"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}]}),
    ("ollama_embeddings", {"model": "all-minilm", "input": "hi"}),
    ("ollama_create_embeddings", {"model": "all-minilm", "inputs": ["a", "b"]}),
    ("ollama_batch_generate", {"model": "gemma3:270m", "prompts": ["a", "b"]}),
    ("ollama_compare_models", {"models": ["gemma3:270m", "qwen3:0.6b"], "prompt": "hi"}),
    ("ollama_validate_model", {"model": "gemma3:270m"}),
    ("ollama_cancel_request", {}),
    (
        "ollama_save_context",
        {"session_id": "client-talk", "messages": [{"role": "user", "content": "My name is Ada."}]},
    ),
    ("ollama_load_context", {"session_id": "client-talk"}),
    ("ollama_clear_context", {"session_id": "client-talk"}),
]
MODES = ["2026-07-28", "legacy"]
EXPECTED_VERSION = {"2026-07-28": "2026-07-28", "legacy": "2025-11-25", "auto": "2026-07-28"}


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


def test_tool_errors_reach_the_client_as_is_error(target):
    async def main():
        async with Client(target) as client:
            return await client.call_tool("ollama_show_model", {"model": "nope"})

    result = anyio.run(main)
    assert result.is_error is True
    assert "ollama_list_models" in result.content[0].text


# --- both eras: the official client pinned to 2026-07-28, and in legacy (handshake) mode -----------


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.mark.parametrize("connect", ["2026-07-28", "legacy", "auto"])
def test_the_client_settles_on_the_era_it_asks_for(target, connect):
    async def main():
        async with Client(target, mode=connect) as client:
            await client.list_tools()
            return client.protocol_version

    assert anyio.run(main) == EXPECTED_VERSION[connect]


def test_every_tool_works_in_both_eras(target, mode):
    async def main():
        async with Client(target, mode=mode) as client:
            listed = [t.name for t in (await client.list_tools()).tools]
            return listed, [(name, await client.call_tool(name, args)) for name, args in ALL_CALLS]

    listed, results = anyio.run(main)
    assert listed == [t.name for t in ollama_mcp.BUILTIN_TOOLS]
    assert sorted({name for name, _ in ALL_CALLS}) == sorted(listed), "ALL_CALLS covers every tool"
    refused = {"ollama_push_model": "MCP_PUSH_REGISTRIES", "ollama_web_search": "OLLAMA_API_KEY"}
    refused["ollama_web_fetch"] = "OLLAMA_API_KEY"  # their success: tests/test_ollama_now_cloud.py
    for name, result in results:
        if name in refused:
            assert result.is_error is True and refused[name] in result.content[0].text, (name, result.content)
            continue
        assert result.is_error is False, (name, result.content)
        assert result.structured_content, name
    out = dict(results)
    assert out["ollama_load_context"].structured_content["messages"][0]["content"] == "My name is Ada."
    assert out["ollama_batch_generate"].structured_content["succeeded"] == 2


@pytest.mark.slow
def test_progress_and_cancellation_in_both_eras(target, mode, fake):
    async def main():
        seen = []

        async def on_progress(progress, total, message):
            seen.append(message)

        async with Client(target, mode=mode) as client:
            result = await client.call_tool(
                "ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, progress_callback=on_progress
            )
            fake.chunk_delay = 0.1
            cancelled = await cancel_after_progress(
                client,
                "ollama_chat_stream",
                {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}]},
                2,
                timeout=10,
            )
            with anyio.fail_after(5):
                while not fake.aborted.is_set():
                    await anyio.sleep(0.05)
            fake.chunk_delay = 0
            after = await client.call_tool("ollama_list_models", {})
        return seen, result, cancelled, after

    seen, result, cancelled, after = anyio.run(main)
    assert seen == ["The", " sky", " is", " blue", " because", " of", " Rayleigh", " scattering", "."]
    assert result.structured_content["response"] == "The sky is blue because of Rayleigh scattering."
    assert len(cancelled) == 2 and fake.streams_aborted == 1
    assert after.is_error is False


def test_every_resource_reads_in_both_eras(target, mode):
    async def main():
        async with Client(target, mode=mode) as client:
            await client.call_tool(
                "ollama_save_context", {"session_id": "res-talk", "messages": [{"role": "user", "content": "hello"}]}
            )
            listed = [str(r.uri) for r in (await client.list_resources()).resources]
            templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
            uris = [
                "ollama://models",
                "ollama://running",
                "ollama://models/gemma3:270m",
                "ollama://models/gemma3%3A270m",
                "ollama://contexts/res-talk",
            ]
            reads = {uri: await client.read_resource(uri) for uri in uris}
            model_names = await client.complete(
                ResourceTemplateReference(type="ref/resource", uri="ollama://models/{name}"),
                {"name": "name", "value": "gem"},
            )
            context_ids = await client.complete(
                ResourceTemplateReference(type="ref/resource", uri="ollama://contexts/{session_id}"),
                {"name": "session_id", "value": "res"},
            )
            return listed, templates, reads, model_names, context_ids

    listed, templates, reads, model_names, context_ids = anyio.run(main)
    assert listed[:2] == ["ollama://models", "ollama://running"] and "ollama://models/gemma3:270m" in listed
    assert templates == ["ollama://models/{name}", "ollama://contexts/{session_id}"]
    for uri, read in reads.items():
        (content,) = read.contents
        assert content.mime_type == "application/json", uri
        assert json.loads(content.text), uri
    assert json.loads(reads["ollama://models"].contents[0].text)["count"] == 4
    assert json.loads(reads["ollama://models/gemma3%3A270m"].contents[0].text)["capabilities"] == ["completion"]
    assert json.loads(reads["ollama://contexts/res-talk"].contents[0].text)["messages"][0]["content"] == "hello"
    assert model_names.completion.values == ["gemma3-270m-assistant:latest", "gemma3:270m"]
    assert context_ids.completion.values == ["res-talk"]


def test_an_unknown_resource_is_the_eras_own_error(target, mode):
    async def main():
        async with Client(target, mode=mode) as client:
            with pytest.raises(Exception) as caught:
                await client.read_resource("ollama://models/no-such-model")
            return caught.value

    error = anyio.run(main)
    assert error.error.code == (-32602 if mode == "2026-07-28" else -32002)
    assert error.error.data == {"uri": "ollama://models/no-such-model"}


def test_every_prompt_renders_in_both_eras(target, mode):
    arguments = {
        "compare_models": {"prompt": "Why is the sky blue?", "models": "gemma3:270m,qwen3:0.6b"},
        "modelfile_persona": {"base_model": "gemma3:270m", "persona": "a pirate"},
        "summarize_text": {"text": "A long text.", "model": "gemma3:270m", "style": "one sentence"},
    }

    async def main():
        async with Client(target, mode=mode) as client:
            listed = {p.name: p for p in (await client.list_prompts()).prompts}
            got = {name: await client.get_prompt(name, args) for name, args in arguments.items()}
            completion = await client.complete(
                PromptReference(type="ref/prompt", name="modelfile_persona"), {"name": "base_model", "value": "qw"}
            )
            return listed, got, completion

    listed, got, completion = anyio.run(main)
    assert sorted(listed) == sorted(arguments)
    assert [a.name for a in listed["modelfile_persona"].arguments] == ["base_model", "persona", "name"]
    assert "ollama_compare_models" in got["compare_models"].messages[0].content.text
    assert '"gemma3:270m", "qwen3:0.6b"' in got["compare_models"].messages[0].content.text
    assert "FROM gemma3:270m" in got["modelfile_persona"].messages[0].content.text
    assert "ollama_create_model" in got["modelfile_persona"].messages[0].content.text
    assert "A long text." in got["summarize_text"].messages[0].content.text
    assert completion.completion.values == ["qwen3:0.6b"]


def test_a_listen_stream_hears_models_change(target):
    async def main():
        async with Client(target, mode="2026-07-28") as client:
            async with client.listen(
                resources_list_changed=True, resource_subscriptions=["ollama://models/tinyllama", "ollama://nowhere"]
            ) as sub:
                honored = sub.honored
                await client.call_tool("ollama_pull_model", {"model": "tinyllama"})
                events = []
                with anyio.fail_after(5):
                    async for event in sub:
                        events.append(event)
                        if len(events) == 2:
                            break
            await client.call_tool("ollama_delete_model", {"model": "tinyllama"})
            return honored, events

    honored, events = anyio.run(main)
    assert honored.resources_list_changed is True and honored.resource_subscriptions == ["ollama://models/tinyllama"]
    kinds = sorted(type(e).__name__ for e in events)
    assert kinds == ["ResourceUpdated", "ResourcesListChanged"]


# --- long work: heartbeats and tasks through the official client ----------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("connect", MODES)
def test_heartbeats_reach_the_progress_callback_while_ollama_is_silent(start_server, fake, connect):
    fake.silence = 1.6
    server = start_server(heartbeat=0.3)
    seen = []

    async def main():
        async with Client(server.url, mode=connect) as client:

            async def on_progress(progress, total, message):
                seen.append(message)

            return await client.call_tool("ollama_generate", {"model": "gemma3:270m", "prompt": "hi"},
                                          progress_callback=on_progress)  # fmt: skip

    result = anyio.run(main)
    assert result.is_error is False
    assert len([m for m in seen if m and m.startswith("Ollama is reading the prompt")]) >= 2, seen


def tasks_extension():
    """The 2026-07-28 tasks extension, as a client of the official SDK declares and drives it
    (the SDK has no built-in support: ClientExtension and ResultClaim are its hooks)."""
    from typing import Any, Literal

    import mcp.types as types
    from mcp.client import ClaimContext, ClientExtension, ResultClaim

    class CreateTaskResult(types.Result):
        result_type: Literal["task"] = "task"
        task_id: str
        status: str
        status_message: str | None = None
        created_at: str
        last_updated_at: str
        ttl_ms: int | None
        poll_interval_ms: int | None = None

    class GetTaskResult(types.Result):
        task_id: str
        status: str
        status_message: str | None = None
        created_at: str
        last_updated_at: str
        ttl_ms: int | None
        poll_interval_ms: int | None = None
        result: dict[str, Any] | None = None
        error: dict[str, Any] | None = None

    class TaskIdParams(types.RequestParams):
        task_id: str

    class GetTaskRequest(types.Request[TaskIdParams, Literal["tasks/get"]]):
        method: Literal["tasks/get"] = "tasks/get"
        params: TaskIdParams
        name_param = "taskId"

    seen = []

    async def resolve(handle: CreateTaskResult, ctx: ClaimContext) -> types.CallToolResult:
        seen.append(handle)
        while True:
            task = await ctx.session.send_request(
                GetTaskRequest(params=TaskIdParams(task_id=handle.task_id)), GetTaskResult
            )
            if task.status == "completed":
                return types.CallToolResult.model_validate(task.result)
            if task.status in ("failed", "cancelled"):
                raise RuntimeError(f"task {task.status}: {task.error or task.status_message}")
            await anyio.sleep(0.05)

    class Tasks(ClientExtension):
        identifier = "io.modelcontextprotocol/tasks"

        def claims(self):
            return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=resolve)]

    return Tasks(), seen


@pytest.mark.slow
def test_the_official_client_runs_a_pull_as_a_task(server, fake):
    fake.chunk_delay = 0.05
    extension, handles = tasks_extension()

    async def main():
        async with Client(server.url, mode="2026-07-28", extensions=[extension]) as client:
            return await client.call_tool("ollama_pull_model", {"model": "tinyllama"})

    result = anyio.run(main)
    assert len(handles) == 1 and handles[0].status == "working", "the call became a task"
    assert result.is_error is False and result.structured_content["status"] == "success"


def test_without_the_extension_the_official_client_gets_an_ordinary_result(server, fake):
    async def main():
        async with Client(server.url, mode="2026-07-28") as client:
            return await client.call_tool("ollama_pull_model", {"model": "tinyllama"})

    assert anyio.run(main).structured_content["status"] == "success"
