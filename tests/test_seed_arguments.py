"""The plan's argument names and semantics (issue 13): aliases, `stream`, options Ollama no
longer honours, results written for a model, the unload tool, chat's session ids."""

import json

import pytest

import ollama_mcp
from conftest import error_text, iter_sse, structured

# --- embeddings: the plan's names, Ollama's names as aliases ------------------------------------


@pytest.mark.parametrize("key", ["prompt", "input"])
def test_embeddings_take_prompt_or_input(client, fake, key):
    out = structured(client.call("ollama_embeddings", {"model": "all-minilm", key: "hello"})[0])
    assert out["dimensions"] == 384
    assert fake.bodies("/api/embed")[-1]["input"] == ["hello"]


@pytest.mark.parametrize("key", ["prompts", "inputs"])
def test_create_embeddings_take_prompts_or_inputs(client, key):
    out = structured(client.call("ollama_create_embeddings", {"model": "all-minilm", key: ["a", "b", "c"]})[0])
    assert out["count"] == 3


@pytest.mark.parametrize(
    "tool, arguments, names",
    [
        ("ollama_embeddings", {"model": "all-minilm"}, "`prompt` or `input`"),
        ("ollama_embeddings", {"model": "all-minilm", "prompt": "a", "input": "b"}, "`prompt` or `input`"),
        (
            "ollama_create_embeddings",
            {"model": "all-minilm", "prompts": ["a"], "inputs": ["b"]},
            "`prompts` or `inputs`",
        ),
    ],
)
def test_exactly_one_of_the_two_names(client, tool, arguments, names):
    result, _ = client.call(tool, arguments)
    assert result["isError"] and f"give exactly one of {names}" in error_text(result)


# --- stream on generate and chat ----------------------------------------------------------------


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


# --- options Ollama no longer honours ----------------------------------------------------------


OLD_OPTIONS = {
    "num_parts": 2,
    "use_mlock": True,
    "low_vram": True,
    "f16_kv": True,
    "vocab_only": False,
    "embedding_only": False,
}


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


def test_a_modelfile_parameter_ollama_ignores_is_refused(client, fake):
    result, _ = client.call(
        "ollama_create_model", {"model": "x", "modelfile": "FROM gemma3:270m\nPARAMETER use_mlock true"}
    )
    assert result["isError"] and "line 2" in error_text(result) and "use_mlock" in error_text(result)
    assert "/api/create" not in fake.paths()


# --- the license is left out unless asked -------------------------------------------------------

LICENSE = "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\n" + "Terms and conditions. " * 2000


@pytest.fixture
def licensed(fake):
    model = fake.models["gemma3:270m"]
    model.show = {**model.show, "license": LICENSE, "modelfile": model.show["modelfile"] + f'LICENSE """{LICENSE}"""\n'}
    return fake


def test_show_and_modelfile_leave_the_license_out_unless_asked(client, licensed):
    shown = client.call("ollama_show_model", {"model": "gemma3:270m"})[0]
    assert len(shown["content"][0]["text"]) < 12_000
    out = structured(shown)
    assert (
        out["license"].startswith("LLAMA 3.2 COMMUNITY LICENSE AGREEMENT") and "include_license: true" in out["license"]
    )
    assert "Terms and conditions. " * 50 not in out["modelfile"] and "# LICENSE left out" in out["modelfile"]
    modelfile = structured(client.call("ollama_get_modelfile", {"model": "gemma3:270m"})[0])["modelfile"]
    assert "# LICENSE left out" in modelfile and "TEMPLATE" in modelfile
    full = structured(client.call("ollama_show_model", {"model": "gemma3:270m", "include_license": True})[0])
    assert full["license"] == LICENSE and LICENSE in full["modelfile"]
    assert (
        LICENSE
        in structured(client.call("ollama_get_modelfile", {"model": "gemma3:270m", "include_license": True})[0])[
            "modelfile"
        ]
    )


# --- unload -------------------------------------------------------------------------------------


def test_unload_frees_a_loaded_model_and_keeps_it_installed(client, fake):
    client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})
    out = structured(client.call("ollama_unload_model", {"model": "gemma3:270m"})[0])
    assert out["was_loaded"] is True and out["unloaded"] is True and out["message"].startswith("unloaded gemma3:270m")
    assert fake.bodies("/api/generate")[-1] == {"model": "gemma3:270m", "keep_alive": 0, "stream": False}
    assert structured(client.call("ollama_list_processes")[0])["count"] == 0
    assert "gemma3:270m" in [m["name"] for m in structured(client.call("ollama_list_models")[0])["models"]]
    again = structured(client.call("ollama_unload_model", {"model": "gemma3:270m"})[0])
    assert again["was_loaded"] is False and "nothing to free" in again["message"]


def test_unload_of_an_unknown_model_says_how_to_list_models(client):
    result, _ = client.call("ollama_unload_model", {"model": "nope"})
    assert result["isError"] and "ollama_list_models" in error_text(result)


# --- chat's session_id is the contexts' session_id ----------------------------------------------


@pytest.mark.parametrize("session_id", ["a", "chat.2026-11-25", "x_y-z", "." * 2 + "a", "A" * 128])
def test_every_id_chat_accepts_can_be_loaded_and_cleared(client, session_id):
    result, _ = client.call(
        "ollama_chat",
        {"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}], "session_id": session_id},
    )
    assert result["isError"] is False
    assert structured(client.call("ollama_load_context", {"session_id": session_id})[0])["count"] == 2
    assert structured(client.call("ollama_clear_context", {"session_id": session_id})[0])["deleted"] is True


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
    assert {k: v for k, v in chat.items() if k != "description"} == {
        k: v for k, v in saved.items() if k != "description"
    }


# --- a call cancelled by another call is still answered -----------------------------------------


def test_a_call_cancelled_by_the_tool_gets_an_error_with_its_text_so_far(client, fake):
    fake.chunk_delay = 0.1
    r = client.post(
        {
            "jsonrpc": "2.0",
            "id": "34",
            "method": "tools/call",
            "params": {
                "name": "ollama_generate_stream",
                "arguments": {"model": "gemma3:270m", "prompt": "x"},
                "_meta": {"progressToken": 1},
            },
        },
        stream=True,
    )
    events = iter_sse(r)
    for _ in range(3):
        next(events)
    out = structured(client.call("ollama_cancel_request", {"request_id": "34"})[0])
    assert out["cancelled"] is True
    final = json.loads(list(events)[-1]["data"])
    assert final["id"] == "34" and final["result"]["isError"] is True
    assert "cancelled by ollama_cancel_request" in final["result"]["content"][0]["text"]
    assert "The sky is" in final["result"]["content"][0]["text"]
