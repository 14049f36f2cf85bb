"""Saved chat contexts, and chat's session_id."""

import threading

import pytest

import ollama_mcp
from conftest import call_ok, error_text, structured


def test_show_model_reads_capabilities_parameters_and_context(client):
    out = structured(client.call("ollama_show_model", {"model": "gemma3:270m"})[0])
    assert out["capabilities"] == ["completion"]
    assert out["context_length"] == 32768
    assert out["embedding_length"] == 640
    assert out["parameters"] == {
        "temperature": 1,
        "top_k": 64,
        "top_p": 0.95,
        "num_predict": 128,
        "stop": ["<end_of_turn>"],
    }
    assert out["template"].startswith("{{- range")


def test_generate_returns_text_and_stats_and_context_only_when_asked(client):
    out = structured(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "hi"})[0])
    assert out["response"] == "The sky is blue because of Rayleigh scattering."
    assert out["done_reason"] == "stop"
    assert out["stats"] == {
        "prompt_tokens": 14,
        "completion_tokens": 9,
        "total_ms": 220.0,
        "load_ms": 10.0,
        "prompt_eval_ms": 5.0,
        "eval_ms": 180.0,
        "tokens_per_second": 50.0,
    }
    assert "context" not in out
    asked = structured(
        client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "hi", "return_context": True})[0]
    )
    assert asked["context"][:3] == [105, 2364, 107]
    continued = structured(
        client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "and?", "context": asked["context"]})[0]
    )
    assert continued["context"][:3] == [105, 2364, 107]  # a call that continues gets the context to continue again


def test_generate_raw_with_context_passes_the_400_on(client):
    text = error_text(
        client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "raw": True, "context": [1]})[0]
    )
    assert "raw mode does not support" in text


def test_save_load_append_clear(client, server):
    first = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    out, _ = call_ok(
        client, server, "ollama_save_context", {"session_id": "trip.plan-1", "messages": first, "model": "gemma3:270m"}
    )
    assert out["count"] == 2 and out["mode"] == "replace"
    out, _ = call_ok(
        client,
        server,
        "ollama_save_context",
        {"session_id": "trip.plan-1", "messages": [{"role": "user", "content": "more"}], "mode": "append"},
    )
    assert out["count"] == 3 and out["model"] == "gemma3:270m"
    out, _ = call_ok(client, server, "ollama_load_context", {"session_id": "trip.plan-1"})
    assert [m["content"] for m in out["messages"]] == ["hi", "hello", "more"]
    assert call_ok(client, server, "ollama_clear_context", {"session_id": "trip.plan-1"})[0]["deleted"] is True
    assert call_ok(client, server, "ollama_clear_context", {"session_id": "trip.plan-1"})[0]["deleted"] is False
    assert "no saved context" in error_text(client.call("ollama_load_context", {"session_id": "trip.plan-1"})[0])


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "..", ".", "x" * 129, "", "a b", "c:\\x"])
def test_session_ids_that_look_like_paths_are_rejected(client, bad):
    text = error_text(client.call("ollama_save_context", {"session_id": bad, "messages": []})[0])
    assert "$.session_id" in text


def test_context_limits(start_server):
    server = start_server(context_max_messages=2, context_max_bytes=2048)
    c = server.client()
    c.initialize()
    many = [{"role": "user", "content": "x"}] * 3
    assert "MCP_CONTEXT_MAX_MESSAGES" in error_text(
        c.call("ollama_save_context", {"session_id": "s", "messages": many})[0]
    )
    big = [{"role": "user", "content": "x" * 3000}]
    assert "MCP_CONTEXT_MAX_BYTES" in error_text(c.call("ollama_save_context", {"session_id": "s", "messages": big})[0])


def test_chat_with_session_id_persists_the_conversation(client, server, fake):
    first = structured(
        client.call(
            "ollama_chat",
            {
                "model": "gemma3:270m",
                "messages": [{"role": "user", "content": "one"}],
                "session_id": "conv",
                "options": {"num_predict": 2},
            },
        )[0]
    )
    assert first["session_id"] == "conv" and first["context_messages"] == 2
    client.call(
        "ollama_chat_stream",
        {
            "model": "gemma3:270m",
            "messages": [{"role": "user", "content": "two"}],
            "session_id": "conv",
            "options": {"num_predict": 2},
        },
    )
    sent = fake.bodies("/api/chat")[1]["messages"]
    assert sent == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "The sky"},
        {"role": "user", "content": "two"},
    ]
    saved = structured(client.call("ollama_load_context", {"session_id": "conv"})[0])
    assert saved["count"] == 4 and saved["model"] == "gemma3:270m"


def test_failed_chat_does_not_touch_the_saved_context(client):
    client.call("ollama_save_context", {"session_id": "keep", "messages": [{"role": "user", "content": "a"}]})
    error_text(
        client.call(
            "ollama_chat", {"model": "nope", "messages": [{"role": "user", "content": "b"}], "session_id": "keep"}
        )[0]
    )
    assert structured(client.call("ollama_load_context", {"session_id": "keep"})[0])["count"] == 1


def test_contexts_survive_a_server_restart(start_server, tmp_path):
    data = str(tmp_path / "shared-data")
    a = start_server(data_dir=data).client()
    a.initialize()
    a.call("ollama_save_context", {"session_id": "durable", "messages": [{"role": "user", "content": "remember me"}]})
    b = start_server(data_dir=data).client()
    b.initialize()
    assert (
        structured(b.call("ollama_load_context", {"session_id": "durable"})[0])["messages"][0]["content"]
        == "remember me"
    )


def test_context_store_is_safe_under_concurrent_appends(tmp_path):
    store = ollama_mcp.ContextStore(str(tmp_path / "c.sqlite3"), 10_000, 10_000_000)
    errors = []

    def worker(n):
        try:
            for i in range(25):
                store.save("", "shared", [{"role": "user", "content": f"{n}-{i}"}], append=True)
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    saved = store.load("", "shared")
    assert saved["count"] == 200
    assert len({m["content"] for m in saved["messages"]}) == 200


@pytest.mark.parametrize("session_id", ["..", ".", "a/b", "", "A" * 129, "a\n"])
def test_ids_the_contexts_refuse_chat_refuses_too(client, session_id):
    result, _ = client.call(
        "ollama_chat",
        {"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}], "session_id": session_id},
    )
    assert result["isError"] and "session_id" in error_text(result)


def test_chat_and_contexts_share_one_session_id_schema():
    tools = {t.name: t for t in ollama_mcp.BUILTIN_TOOLS}
    chat = tools["ollama_chat"].input_schema["properties"]["session_id"]
    saved = tools["ollama_load_context"].input_schema["properties"]["session_id"]

    def undescribed(schema):  # the checked keywords and the published form, descriptions aside
        return {k: undescribed(v) if isinstance(v, dict) else v for k, v in schema.items() if k != "description"}

    assert undescribed(chat) == undescribed(saved)
