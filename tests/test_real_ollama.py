"""Against a real Ollama (OLLAMA_TEST_URL). Skipped when none answers.

Kept few and small: generation on 2 CPU cores is slow.
"""

import json
import os

import anyio
import pytest
from mcp import Client

from conftest import cancel_after_progress

pytestmark = pytest.mark.real_ollama

GEN = "gemma3:270m"
EMBED = "all-minilm"
SMALL = {"num_predict": 8, "temperature": 0, "seed": 1}


@pytest.fixture
def real_server(start_server, real_url):
    return start_server(ollama_url=real_url, ollama_timeout=120)


ERAS = ["2026-07-28", "legacy"]


def call_all(url, calls, progress=None, mode="auto"):
    async def main():
        out = []
        async with Client(url, mode=mode) as client:
            for name, args in calls:
                out.append(await client.call_tool(name, args, progress_callback=progress))
        return out

    return anyio.run(main)


@pytest.mark.parametrize("mode", ERAS)
def test_official_client_calls_the_core_tools_on_real_ollama(real_server, mode):
    deltas = []

    async def on_progress(progress, total, message):
        deltas.append(message)

    calls = [
        ("ollama_check_health", {}),
        ("ollama_list_models", {}),
        ("ollama_show_model", {"model": GEN}),
        ("ollama_generate", {"model": GEN, "prompt": "The capital of France is", "options": SMALL}),
        ("ollama_generate_stream", {"model": GEN, "prompt": "Once upon a time", "options": SMALL}),
        (
            "ollama_chat",
            {
                "model": "gemma3-270m-assistant",
                "messages": [{"role": "user", "content": "Name a color."}],
                "options": SMALL,
            },
        ),
        ("ollama_chat_stream", {"model": GEN, "messages": [{"role": "user", "content": "Say hi."}], "options": SMALL}),
    ]
    results = dict(
        zip(
            [name for name, _ in calls], call_all(real_server.url, calls, progress=on_progress, mode=mode), strict=False
        )
    )
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
    async def main():
        async with Client(real_server.url) as client:
            seen = await cancel_after_progress(
                client,
                "ollama_generate_stream",
                {"model": GEN, "prompt": "Count to one hundred:", "options": {"num_predict": 200}},
                2,
                timeout=60,
            )
            return seen, await client.call_tool("ollama_check_health", {})

    seen, health = anyio.run(main)
    assert len(seen) == 2
    assert health.is_error is False


@pytest.mark.parametrize("mode", ERAS)
def test_official_client_calls_the_other_tools_on_real_ollama(start_server, real_url, tmp_path, mode):
    import secrets

    # The library URL points at a closed local port: tests send no traffic off this machine.
    real_server = start_server(ollama_url=real_url, ollama_timeout=120, model_library_url="http://127.0.0.1:9")

    name = f"ollama-mcp-test-{secrets.token_hex(3)}"
    copy = f"{name}-copy"
    calls = [
        ("ollama_get_version", {}),
        (
            "ollama_create_model",
            {"model": name, "modelfile": "FROM gemma3:270m\nSYSTEM You answer in French.\nPARAMETER temperature 0.1\n"},
        ),
        ("ollama_update_model", {"model": name, "modelfile": "PARAMETER top_k 10\n"}),
        ("ollama_get_modelfile", {"model": name}),
        ("ollama_copy_model", {"source": name, "destination": copy}),
        ("ollama_get_model_size", {"model": copy}),
        ("ollama_check_blobs", {"digest": "sha256:a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"}),
        ("ollama_embeddings", {"model": EMBED, "input": "Hello world"}),
        (
            "ollama_create_embeddings",
            {"model": EMBED, "inputs": ["a cat", "a dog", "the stock market"], "dimensions": 64},
        ),
        ("ollama_list_processes", {}),
        ("ollama_get_models_info", {}),
        ("ollama_cancel_request", {}),
        (
            "ollama_batch_generate",
            {"model": GEN, "prompts": ["1, 2, 3,", "a, b, c,"], "options": SMALL, "concurrency": 2},
        ),
        (
            "ollama_compare_models",
            {"models": [GEN, "gemma3-270m-assistant"], "prompt": "Hello", "options": {"num_predict": 4}},
        ),
        ("ollama_validate_model", {"model": EMBED}),
        ("ollama_search_models", {"query": "embedding", "remote": True}),
        ("ollama_save_context", {"session_id": name, "messages": [{"role": "user", "content": "My name is Ada."}]}),
        (
            "ollama_chat",
            {
                "model": GEN,
                "messages": [{"role": "user", "content": "What is my name?"}],
                "session_id": name,
                "options": SMALL,
            },
        ),
        ("ollama_load_context", {"session_id": name}),
        ("ollama_clear_context", {"session_id": name}),
        ("ollama_delete_model", {"model": copy}),
        ("ollama_delete_model", {"model": name}),
    ]
    results = dict(
        zip([f"{i}:{n}" for i, (n, _) in enumerate(calls)], call_all(real_server.url, calls, mode=mode), strict=False)
    )
    for key, result in results.items():
        assert result.is_error is False, (key, result.content[0].text)
    out = {key.split(":", 1)[1]: r.structured_content for key, r in results.items()}
    assert out["ollama_get_version"]["version"] == "0.24.0"
    assert out["ollama_update_model"]["changed"]["parameters"]["after"]["top_k"] == 10
    assert "You answer in French." in out["ollama_get_modelfile"]["modelfile"]
    assert out["ollama_check_blobs"]["exists"] is True
    assert out["ollama_embeddings"]["dimensions"] == 384
    assert out["ollama_create_embeddings"]["dimensions"] == 64 and out["ollama_create_embeddings"]["count"] == 3
    assert out["ollama_batch_generate"]["succeeded"] == 2
    assert [r["model"] for r in out["ollama_compare_models"]["results"]] == [GEN, "gemma3-270m-assistant"]
    assert out["ollama_validate_model"]["valid"] is True
    assert [h["name"] for h in out["ollama_search_models"]["local"]] == ["all-minilm:latest"]
    assert "could not reach the model library" in out["ollama_search_models"]["remote_error"]
    assert out["ollama_load_context"]["count"] == 3
    assert out["ollama_clear_context"]["deleted"] is True


@pytest.mark.parametrize("mode", ERAS)
def test_resources_and_prompts_on_real_ollama(real_server, mode):
    async def main():
        async with Client(real_server.url, mode=mode) as client:
            listed = [str(r.uri) for r in (await client.list_resources()).resources]
            model = json.loads((await client.read_resource(f"ollama://models/{GEN}")).contents[0].text)
            running = json.loads((await client.read_resource("ollama://running")).contents[0].text)
            prompt = await client.get_prompt(
                "modelfile_persona", {"base_model": "gemma3-270m-assistant", "persona": "a pirate"}
            )
            return client.protocol_version, listed, model, running, prompt

    version, listed, model, running, prompt = anyio.run(main)
    assert version == ("2026-07-28" if mode == "2026-07-28" else "2025-11-25")
    assert {
        "ollama://models",
        "ollama://running",
        f"ollama://models/{GEN}",
        "ollama://models/all-minilm:latest",
    } <= set(listed)
    assert model["capabilities"] == ["completion"] and model["context_length"] == 32768
    assert isinstance(running["models"], list)
    assert "You are a terse assistant." in prompt.messages[0].content.text  # the base model's own system prompt


def test_two_real_ollamas_behind_one_server(start_server, real_url):
    """OLLAMA_TEST_URL_2: a second real Ollama beside the first (.ci/run starts one on 11435)."""
    second = os.environ.get("OLLAMA_TEST_URL_2")
    if not second or ollama_answers(second) is False:
        pytest.skip("no second real Ollama: set OLLAMA_TEST_URL_2 (REAL_OLLAMA_PORT=11435 start.sh)")
    server = start_server(ollama_hosts=(real_url, second), ollama_url=real_url, ollama_timeout=120)
    calls = [
        ("ollama_check_health", {}),
        ("ollama_list_models", {}),
        (
            "ollama_batch_generate",
            {"model": GEN, "prompts": ["1, 2,", "a, b,", "x, y,", "red, green,"], "options": SMALL, "concurrency": 4},
        ),
        ("ollama_list_processes", {}),
    ]
    health, listed, batch, processes = call_all(server.url, calls, mode="2026-07-28")
    assert all(not r.is_error for r in (health, listed, batch, processes)), [
        r.content[0].text for r in (health, listed, batch, processes)
    ]
    assert [h["url"] for h in health.structured_content["hosts"]] == [real_url, second]
    by_name = {m["name"]: m["hosts"] for m in listed.structured_content["models"]}
    assert by_name[GEN] == [real_url, second]
    assert batch.structured_content["succeeded"] == 4
    hosts_with_gen = {p["host"] for p in processes.structured_content["models"] if p["name"] == GEN}
    assert hosts_with_gen == {real_url, second}, "the batch's prompts were spread over both hosts"


def ollama_answers(url):
    import requests

    try:
        requests.get(f"{url}/api/version", timeout=2)
        return True
    except requests.RequestException:
        return False


def test_a_prompt_over_a_small_num_ctx_is_said_to_be_cut(real_server):
    words = " ".join(f"word{i}" for i in range(400))
    generate, chat = call_all(
        real_server.url,
        [
            (
                "ollama_generate",
                {"model": GEN, "prompt": words, "options": {**SMALL, "num_predict": 2, "num_ctx": 256}},
            ),
            (
                "ollama_chat",
                {
                    "model": GEN,
                    "messages": [{"role": "user", "content": words[i : i + 400]} for i in range(0, 2000, 400)],
                    "options": {**SMALL, "num_predict": 2, "num_ctx": 256},
                },
            ),
        ],
    )
    cut = generate.structured_content
    assert cut["truncated"] is True and cut["truncation"]["num_ctx"] == 256
    assert cut["truncation"]["prompt_tokens"] == 256 and cut["truncation"]["prompt_tokens_before"] > 1000
    assert chat.structured_content["truncated"] is True


def test_a_cancel_during_prompt_evaluation_is_answered_and_named_by_the_heartbeat(start_server, real_url):
    # A long prompt keeps a 2-core Ollama evaluating for many seconds; the heartbeat says so, the
    # cancelled call ends at once, and the next call is served (Ollama v0.24 first finishes the
    # cancelled prompt: with or without MCP_UNLOAD_ON_CANCEL the next call waited 40-43 s here).
    server = start_server(ollama_url=real_url, ollama_timeout=120, heartbeat=0.5)
    prompt = " ".join(f"item{i}" for i in range(300))  # about 1,800 tokens: a minute on 2 cores
    options = {**SMALL, "num_predict": 4, "num_ctx": 4096}
    import time

    async def main():
        async with Client(server.url) as client:
            await client.call_tool("ollama_generate", {"model": GEN, "prompt": "Hi", "options": options})  # loaded
            asked = time.monotonic()
            seen = await cancel_after_progress(
                client, "ollama_generate", {"model": GEN, "prompt": prompt, "options": options}, 3, timeout=60
            )
            assert time.monotonic() - asked < 4.0, "three heartbeats at 0.5 s, then the cancel ends the call"
            started = time.monotonic()
            after = await client.call_tool("ollama_generate", {"model": GEN, "prompt": "Hi", "options": options})
            return seen, after, time.monotonic() - started

    seen, after, elapsed = anyio.run(main)
    # /api/ps may not list the model for a moment after a request reaches it, so a first heartbeat
    # can say "loading"; the prompt evaluation itself must be named.
    assert any(m.startswith("Ollama is reading the prompt") for m in seen), seen
    assert all(m.startswith(("Ollama is reading the prompt", f"Ollama is loading {GEN}")) for m in seen), seen
    assert after.is_error is False, after
    print(f"the call after the cancelled one took {elapsed:.1f} s")
