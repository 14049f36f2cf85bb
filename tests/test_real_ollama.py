"""Against a real Ollama (OLLAMA_TEST_URL; ../shared/real-ollama/start.sh). Skipped when none answers.

Kept few and small: generation on 2 CPU cores is slow.
"""

import anyio
import pytest
from mcp import Client

pytestmark = pytest.mark.real_ollama

GEN = "gemma3:270m"
EMBED = "all-minilm"
SMALL = {"num_predict": 8, "temperature": 0, "seed": 1}


@pytest.fixture
def real_server(start_server, real_url):
    return start_server(ollama_url=real_url, ollama_timeout=120)


def call_all(url, calls, progress=None):
    async def main():
        out = []
        async with Client(url) as client:
            for name, args in calls:
                out.append(await client.call_tool(name, args, progress_callback=progress))
        return out

    return anyio.run(main)


def test_official_client_calls_the_core_tools_on_real_ollama(real_server):
    deltas = []

    async def on_progress(progress, total, message):
        deltas.append(message)

    calls = [
            ("ollama_check_health", {}),
            ("ollama_list_models", {}),
            ("ollama_show_model", {"model": GEN}),
            ("ollama_generate", {"model": GEN, "prompt": "The capital of France is", "options": SMALL}),
            ("ollama_generate_stream", {"model": GEN, "prompt": "Once upon a time", "options": SMALL}),
            ("ollama_chat", {"model": "gemma3-270m-assistant", "messages": [{"role": "user", "content": "Name a color."}], "options": SMALL}),
            ("ollama_chat_stream", {"model": GEN, "messages": [{"role": "user", "content": "Say hi."}], "options": SMALL}),
    ]
    results = dict(zip([name for name, _ in calls], call_all(real_server.url, calls, progress=on_progress)))
    for name, result in results.items():
        assert result.is_error is False, (name, result.content)
    health = results["ollama_check_health"].structured_content
    assert health["healthy"] and health["version"] == "0.24.0"
    names = [m["name"] for m in results["ollama_list_models"].structured_content["models"]]
    assert {GEN, "all-minilm:latest"} <= set(names)
    assert results["ollama_show_model"].structured_content["capabilities"] == ["completion"]
    gen = results["ollama_generate"].structured_content
    assert gen["response"] and gen["stats"]["completion_tokens"] <= 8 and gen["done_reason"] in ("length", "stop")
    stream = results["ollama_generate_stream"].structured_content
    assert stream["response"]
    assert len([d for d in deltas if d is not None]) >= 2, "streamed tokens and count progress arrived"
    assert results["ollama_chat"].structured_content["message"]["role"] == "assistant"


def test_real_errors_are_clear(real_server):
    pull, embed_gen, missing, think = call_all(
        real_server.url,
        [
            ("ollama_pull_model", {"model": EMBED}),  # no internet here: Ollama's own error
            ("ollama_generate", {"model": EMBED, "prompt": "x"}),
            ("ollama_show_model", {"model": "does-not-exist"}),
            ("ollama_generate", {"model": GEN, "prompt": "x", "think": True}),
        ],
    )
    assert all(r.is_error for r in (pull, embed_gen, missing, think))
    assert "pull model manifest" in pull.content[0].text
    assert "does not support generate" in embed_gen.content[0].text
    assert "ollama_pull_model" in missing.content[0].text
    assert "does not support thinking" in think.content[0].text


def test_cancel_closes_the_real_generation(real_server):
    seen = []

    async def main():
        async with Client(real_server.url) as client:
            with anyio.move_on_after(60):
                async with anyio.create_task_group() as tg:

                    async def on_progress(progress, total, message):
                        seen.append(message)
                        if len(seen) == 2:
                            tg.cancel_scope.cancel()

                    tg.start_soon(lambda: client.call_tool("ollama_generate_stream", {"model": GEN, "prompt": "Count to one hundred:", "options": {"num_predict": 200}}, progress_callback=on_progress))
            return await client.call_tool("ollama_check_health", {})

    health = anyio.run(main)
    assert len(seen) == 2
    assert health.is_error is False
