"""Generation: generate and chat, plain and streaming, their arguments and Ollama's errors."""

import json

import pytest

import ollama_mcp
from conftest import error_text, stream_request, structured, wait_for

ALL_GENERATE_ARGS = {
    "model": "gemma3:270m",
    "prompt": "Why is the sky blue?",
    "system": "Be brief.",
    "template": "{{ .Prompt }}",
    "context": [1, 2, 3],
    "format": {"type": "object", "properties": {"a": {"type": "string"}}},
    "keep_alive": "10m",
    "options": {
        "temperature": 0,
        "seed": 42,
        "num_predict": 4,
        "num_ctx": 2048,
        "stop": ["\n"],
        "top_k": 10,
        "top_p": 0.9,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
    },
    "logprobs": True,
    "top_logprobs": 2,
}


OLD_OPTIONS = {
    "num_parts": 2,
    "use_mlock": True,
    "low_vram": True,
    "f16_kv": True,
    "vocab_only": False,
    "embedding_only": False,
}


def test_generate_forwards_every_parameter(client, fake):
    out = structured(client.call("ollama_generate", ALL_GENERATE_ARGS)[0])
    sent = fake.bodies("/api/generate")[0]
    assert sent == dict(ALL_GENERATE_ARGS, stream=True, truncate=False)  # a prompt over num_ctx is never cut silently
    assert out["response"] == "The sky is blue"
    assert out["done_reason"] == "length"


def test_generate_never_defaults_format_to_json(client, fake):
    client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "hi"})
    assert "format" not in fake.bodies("/api/generate")[0]


def test_generate_with_think_returns_thinking(client):
    out = structured(client.call("ollama_generate", {"model": "qwen3:0.6b", "prompt": "hi", "think": True})[0])
    assert out["thinking"] == "Let me think."
    assert out["response"].startswith("The sky")


def test_generate_think_on_a_model_without_it(client):
    text = error_text(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "hi", "think": "high"})[0])
    assert '"gemma3:270m" does not support thinking' in text
    assert "without `think`" in text


def test_generate_unknown_model(client):
    text = error_text(client.call("ollama_generate", {"model": "nope", "prompt": "hi"})[0])
    assert "model 'nope' not found" in text and "ollama_pull_model" in text


def test_generate_images_on_a_text_model(client):
    text = error_text(
        client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "what?", "images": ["iVBORw0KGgo="]})[0]
    )
    assert "image input" in text and "vision" in text


def test_generate_empty_prompt_loads_the_model(client):
    out = structured(client.call("ollama_generate", {"model": "gemma3:270m"})[0])
    assert out["done_reason"] == "load" and out["response"] == ""
    assert out["stats"]["tokens_per_second"] is None


def test_generate_without_token_sends_json_not_sse(client):
    r = client.post(
        {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "tools/call",
            "params": {"name": "ollama_generate", "arguments": {"model": "gemma3:270m", "prompt": "x"}},
        }
    )
    assert r.headers["Content-Type"] == "application/json"


@pytest.mark.slow
def test_generate_with_token_sends_count_progress_a_few_times_a_second(client, fake):
    fake.chunk_delay = 0.1
    result, notes = client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"}, progress=True)
    structured(result)
    assert 1 <= len(notes) < 9, "a count a few times a second, not a note per token"
    assert all(n["params"]["message"].endswith("tokens") for n in notes)


def test_chat_returns_the_reply_and_stats(client, fake):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    out = structured(
        client.call("ollama_chat", {"model": "gemma3:270m", "messages": messages, "options": {"num_predict": 3}})[0]
    )
    assert out["message"] == {"role": "assistant", "content": "The sky is"}
    assert out["done_reason"] == "length"
    assert out["stats"]["completion_tokens"] == 3
    assert fake.bodies("/api/chat")[0]["messages"] == messages


def test_chat_with_tools_returns_tool_calls(client, fake):
    fake.tool_calls = [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    out = structured(
        client.call(
            "ollama_chat",
            {"model": "qwen3:0.6b", "messages": [{"role": "user", "content": "weather?"}], "tools": tools},
        )[0]
    )
    assert out["message"]["tool_calls"] == fake.tool_calls
    assert fake.bodies("/api/chat")[0]["tools"] == tools


def test_chat_accepts_tool_result_messages(client, fake):
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    structured(client.call("ollama_chat", {"model": "qwen3:0.6b", "messages": messages})[0])
    assert fake.bodies("/api/chat")[0]["messages"] == messages


def test_chat_tools_on_a_model_without_them(client):
    tools = [{"type": "function", "function": {"name": "f"}}]
    text = error_text(
        client.call(
            "ollama_chat", {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}], "tools": tools}
        )[0]
    )
    assert "does not support tools" in text


def test_chat_with_think(client):
    out = structured(
        client.call(
            "ollama_chat", {"model": "qwen3:0.6b", "messages": [{"role": "user", "content": "x"}], "think": True}
        )[0]
    )
    assert out["message"]["thinking"] == "Let me think."


def test_chat_rejects_a_bad_role(client):
    text = error_text(
        client.call("ollama_chat", {"model": "gemma3:270m", "messages": [{"role": "robot", "content": "x"}]})[0]
    )
    assert "$.messages[0].role" in text


def test_chat_tools_must_be_objects_not_strings(client):
    text = error_text(
        client.call("ollama_chat", {"model": "gemma3:270m", "messages": [], "tools": '[{"type": "function"}]'})[0]
    )
    assert "$.tools" in text


@pytest.mark.parametrize("tool", ["ollama_generate_stream", "ollama_chat_stream"])
def test_stream_tools_send_one_notification_per_token(client, tool):
    args = (
        {"model": "gemma3:270m", "prompt": "x"}
        if tool == "ollama_generate_stream"
        else {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}]}
    )
    result, notes = client.call(tool, args, progress=True)
    out = structured(result)
    deltas = [n["params"]["message"] for n in notes]
    assert deltas == ["The", " sky", " is", " blue", " because", " of", " Rayleigh", " scattering", "."]
    assert [n["params"]["progress"] for n in notes] == list(range(1, 10))
    text = out["response"] if "response" in out else out["message"]["content"]
    assert text == "".join(deltas)


def test_stream_tool_without_token_still_returns_the_result(client):
    result, notes = client.call("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"})
    assert structured(result)["response"].startswith("The sky") and notes == []


def test_stream_sends_thinking_deltas_then_text(client):
    result, notes = client.call(
        "ollama_chat_stream",
        {"model": "qwen3:0.6b", "messages": [{"role": "user", "content": "x"}], "think": True},
        progress=True,
    )
    deltas = [n["params"]["message"] for n in notes]
    assert deltas[:4] == ["[thinking] Let", "[thinking]  me", "[thinking]  think", "[thinking] ."]  # marked apart
    assert structured(result)["message"]["thinking"] == "Let me think."


def test_sse_frames_have_event_id_and_headers(client):
    r = client.post(stream_request(5))
    assert r.headers["Content-Type"] == "text/event-stream"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Accel-Buffering"] == "no"
    assert "Content-Length" not in r.headers
    frames = [f for f in r.text.split("\n\n") if f]
    assert all(f.startswith("event: message\nid: ") for f in frames)
    ids = [int(f.split("\n")[1][4:]) for f in frames]
    assert ids == sorted(set(ids))
    assert json.loads(frames[-1].split("data: ", 1)[1])["id"] == 5


def test_ollama_not_running_names_the_url_and_the_fix(start_server):
    server = start_server(ollama_url="http://127.0.0.1:9")
    c = server.client()
    c.initialize()
    text = error_text(c.call("ollama_list_models")[0])
    assert "http://127.0.0.1:9" in text and "ollama serve" in text and "OLLAMA_HOST" in text


def test_ollama_timeout_says_which_and_how_to_raise_it(start_server, fake):
    server = start_server(ollama_timeout=0.2)
    fake.latency = 0.5
    c = server.client()
    c.initialize()
    text = error_text(c.call("ollama_list_models")[0])
    assert "OLLAMA_TIMEOUT" in text and "0.2 s" in text


def test_ollama_500_with_text_body(client, fake):
    fake.fail("/api/tags", 500, "internal explosion")
    assert "internal explosion" in error_text(client.call("ollama_list_models")[0])


def test_ollama_wrong_option_type_error_passes_through(client, fake):
    fake.fail("/api/generate", 500, {"error": 'option "num_predict" must be of type integer'})
    assert 'option "num_predict" must be of type integer' in error_text(
        client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})[0]
    )


def test_ollama_dying_mid_stream_is_a_clean_error_and_the_next_call_works(client, fake):
    fake.die_after_chunks = 3
    text = error_text(client.call("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, progress=True)[0])
    assert "closed" in text
    assert structured(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})[0])["response"]


def test_error_line_inside_a_stream_becomes_a_tool_error(client, fake):
    def failing_pull(start_response, body, environ, raw):
        return fake._ndjson(start_response, iter([{"status": "pulling manifest"}, {"error": "max retries exceeded"}]))

    fake.route("POST", "/api/pull", failing_pull)
    result = client.call("ollama_pull_model", {"model": "tinyllama"})[0]
    assert result["isError"] and "max retries exceeded" in error_text(result)
    # The fake counts a stream as ended once it is asked for the line after the last: just after our answer.
    assert fake.streams_started == 1 and wait_for(lambda: fake.open_streams == 0)


def test_debug_log_level_adds_a_generation_summary(client):
    result, notes = client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})
    assert notes == [], "nothing below the default level (info) is sent"
    client.request("logging/setLevel", {"level": "debug"})
    result, notes = client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})
    (note,) = notes
    assert note["method"] == "notifications/message"
    assert note["params"]["level"] == "debug" and note["params"]["logger"] == "ollama-mcp"
    assert note["params"]["data"]["done_reason"] == "stop" and note["params"]["data"]["completion_tokens"] == 9
    assert structured(result)["response"].startswith("The sky")


def test_every_builtin_tool_is_listed(client):
    response, _ = client.request("tools/list")
    assert [t["name"] for t in response["result"]["tools"]] == [t.name for t in ollama_mcp.BUILTIN_TOOLS]


@pytest.mark.parametrize(
    "tool, arguments",
    [
        ("ollama_generate", {"model": "gemma3:270m", "prompt": "x"}),
        ("ollama_chat", {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}]}),
    ],
)
def test_stream_true_sends_every_token_like_the_stream_tools(client, tool, arguments):
    result, notes = client.call(tool, {**arguments, "stream": True}, progress=True)
    assert [n["params"]["message"] for n in notes] == [
        "The",
        " sky",
        " is",
        " blue",
        " because",
        " of",
        " Rayleigh",
        " scattering",
        ".",
    ]
    assert result["isError"] is False
    _, quiet = client.call(tool, {**arguments, "stream": False}, progress=True)
    assert len(quiet) <= 1  # a token count at most, never the text


def test_old_options_are_accepted_left_out_and_reported(client, fake):
    out = structured(
        client.call(
            "ollama_generate", {"model": "gemma3:270m", "prompt": "x", "options": {"temperature": 0, **OLD_OPTIONS}}
        )[0]
    )
    assert set(out["ignored_options"]) == set(OLD_OPTIONS)
    assert "OLLAMA_KV_CACHE_TYPE" in out["ignored_options"]["f16_kv"]
    assert fake.bodies("/api/generate")[-1]["options"] == {"temperature": 0}


@pytest.mark.parametrize(
    "tool, arguments",
    [
        ("ollama_chat", {"model": "gemma3:270m", "messages": [{"role": "user", "content": "x"}]}),
        ("ollama_embeddings", {"model": "all-minilm", "prompt": "x"}),
        ("ollama_batch_generate", {"model": "gemma3:270m", "prompts": ["x"]}),
        ("ollama_compare_models", {"models": ["gemma3:270m"], "prompt": "x"}),
    ],
)
def test_every_tool_with_options_reports_the_ignored_ones(client, tool, arguments):
    out = structured(client.call(tool, {**arguments, "options": {"use_mlock": True}})[0])
    assert list(out["ignored_options"]) == ["use_mlock"]


def test_a_misspelt_option_is_still_an_error(client):
    result, _ = client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "options": {"use_mlok": True}})
    assert result["isError"] and "use_mlok" in error_text(result)


@pytest.mark.parametrize("session_id", ["a", "chat.2026-11-25", "x_y-z", "." * 2 + "a", "A" * 128])
def test_every_id_chat_accepts_can_be_loaded_and_cleared(client, session_id):
    result, _ = client.call(
        "ollama_chat",
        {"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}], "session_id": session_id},
    )
    assert result["isError"] is False
    assert structured(client.call("ollama_load_context", {"session_id": session_id})[0])["count"] == 2
    assert structured(client.call("ollama_clear_context", {"session_id": session_id})[0])["deleted"] is True
