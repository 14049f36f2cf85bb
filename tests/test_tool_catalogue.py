"""The catalogue as clients and models see it: truthful hints, a lean published view, and exact
validation on the server behind it (a null means "not given"; what was refused is still refused)."""

import json
import logging

import jsonschema
import pytest

import ollama_mcp
from conftest import error_text, post, structured

R, W = (True, False), (False, False)  # (readOnly, destructive) of a reading tool, of an additive one
# For every tool: (readOnly, destructive, idempotent, openWorld) and why it has each of them.
HINTS = {
    "ollama_check_health": (*R, True, False, "asks Ollama for its version and lists; changes nothing"),
    "ollama_list_models": (*R, True, False, "reads /api/tags"),
    "ollama_show_model": (*R, True, False, "reads /api/show"),
    "ollama_get_modelfile": (*R, True, False, "reads /api/show"),
    "ollama_check_blobs": (*R, True, False, "a HEAD request on the blob store"),
    "ollama_embeddings": (*R, True, False, "computes vectors; nothing is stored"),
    "ollama_create_embeddings": (*R, True, False, "computes vectors; nothing is stored"),
    "ollama_list_processes": (*R, True, False, "reads /api/ps"),
    "ollama_get_version": (*R, True, False, "reads /api/version"),
    "ollama_get_model_size": (*R, True, False, "reads /api/tags and /api/ps"),
    "ollama_get_models_info": (*R, True, False, "reads /api/tags and /api/show"),
    "ollama_validate_model": (*R, True, False, "reads, then one token or one embedding: nothing is written"),
    "ollama_load_context": (*R, True, False, "reads a saved context"),
    "ollama_rank_texts": (*R, True, False, "computes vectors; nothing is stored"),
    "ollama_search_models": (*R, True, True, "reads the installed models; remote=true asks ollama.com (open world)"),
    "ollama_generate": (*R, False, False, "a completion writes nothing, but it is sampled: a retry is not free"),
    "ollama_generate_stream": (*R, False, False, "as ollama_generate"),
    "ollama_batch_generate": (*R, False, False, "completions of many prompts: nothing written; sampled"),
    "ollama_compare_models": (*R, False, False, "completions on several models: nothing written; sampled"),
    "ollama_pull_model": (
        False, True, True, True,
        "downloads from a registry (open world); replaces an installed model of that name with the registry's "
        "(destructive); pulling again changes nothing more",
    ),
    "ollama_push_model": (
        False, True, True, True,
        "sends a model out to a registry (open world); replaces the registry's model of that name (destructive); "
        "pushing again changes nothing more",
    ),
    "ollama_web_search": (
        *R, False, True, "asks Ollama's web search API on the internet (open world); results change over time",
    ),
    "ollama_web_fetch": (*R, False, True, "fetches a page from the internet (open world); pages change over time"),
    "ollama_delete_model": (False, True, True, False, "removes a model for good; deleting again changes nothing"),
    "ollama_copy_model": (
        False, True, True, False, "writes the destination, replacing a model of that name; the same copy twice is one",
    ),
    "ollama_create_model": (
        False, True, True, True,
        "replaces a model of that name; the same Modelfile twice gives the same model; a FROM Ollama lacks is "
        "pulled from a registry (open world)",
    ),
    "ollama_update_model": (
        False, True, True, True,
        "rewrites a model's definition (destructive); the same lines merged twice change nothing more; a FROM "
        "line may make Ollama pull (open world)",
    ),
    "ollama_unload_model": (*W, True, False, "frees memory: the model stays installed and loads on use; twice is once"),
    "ollama_chat": (
        *W, False, False,
        "with session_id it saves the turn after the stored conversation (a write that only appends; a second "
        "call appends again)",
    ),
    "ollama_chat_stream": (*W, False, False, "as ollama_chat"),
    "ollama_cancel_request": (
        False, True, True, False, "ends another running call, whose work is lost; cancelling it again changes nothing",
    ),
    "ollama_save_context": (
        False, True, False, False,
        "mode replace overwrites the saved messages (destructive); mode append adds them again on every call",
    ),
    "ollama_clear_context": (False, True, True, False, "deletes saved messages; clearing again changes nothing"),
}  # fmt: skip


def catalogue():
    """Every tool a default server exposes: the built-ins and the packs in tools/."""
    return list(ollama_mcp.build_registry(ollama_mcp.Config()))


def test_every_tool_has_a_stated_reason_for_its_hints():
    assert {t.name for t in catalogue()} == set(HINTS)


@pytest.mark.parametrize("t", catalogue(), ids=lambda t: t.name)
def test_hints_tell_the_truth(t):
    a = t.annotations
    got = (a["readOnlyHint"], a["destructiveHint"], a["idempotentHint"], a["openWorldHint"])
    assert got == HINTS[t.name][:4], HINTS[t.name][4]


@pytest.mark.parametrize("name", ["ollama_chat", "ollama_cancel_request"])
def test_read_only_mode_keeps_tools_that_write_only_what_it_refuses_inside_them(make_config, name):
    # chat refuses session_id under MCP_READ_ONLY; cancelling one's own calls touches no model or context
    registry = ollama_mcp.build_registry(make_config(read_only=True))
    assert name in registry and registry.get(name).annotations["readOnlyHint"] is False


# --- the published view ----------------------------------------------------------------------


@pytest.mark.parametrize("t", catalogue(), ids=lambda t: t.name)
def test_the_published_view_is_valid_json_schema_without_server_only_parts(t):
    shown = t.spec()["inputSchema"]
    jsonschema.Draft202012Validator.check_schema(shown)
    assert ollama_mcp.PUBLISHED not in json.dumps(shown)
    assert not {"oneOf", "anyOf", "allOf", "not"} & set(shown)
    assert shown["type"] == "object" and shown["additionalProperties"] is False


def test_options_are_published_open_but_checked_against_the_typed_table():
    t = next(t for t in catalogue() if t.name == "ollama_generate")
    shown = t.spec()["inputSchema"]["properties"]["options"]
    assert shown["additionalProperties"] is True and "properties" not in shown
    assert "temperature" in shown["description"] and "num_ctx" in shown["description"]
    with pytest.raises(ollama_mcp.ToolError, match="temprature"):
        t.check_arguments({"model": "m", "options": {"temprature": 0.1}})
    with pytest.raises(ollama_mcp.ToolError, match=r"\$\.options\.top_k"):
        t.check_arguments({"model": "m", "options": {"top_k": "many"}})


@pytest.mark.parametrize("value", ["1h1h", "5x", "-", "1.h", "m5"])
def test_keep_alive_is_checked_exactly_though_it_is_published_as_any_string(value):
    t = next(t for t in catalogue() if t.name == "ollama_generate")
    assert t.spec()["inputSchema"]["properties"]["keep_alive"]["anyOf"][1] == {"type": "string"}
    with pytest.raises(ollama_mcp.ToolError, match="keep_alive"):
        t.check_arguments({"model": "m", "keep_alive": value})


def test_a_model_name_is_checked_though_its_pattern_is_not_published():
    t = next(t for t in catalogue() if t.name == "ollama_show_model")
    assert t.spec()["inputSchema"]["properties"]["model"] == {"type": "string"}
    with pytest.raises(ollama_mcp.ToolError, match="a model name as ollama_list_models shows it"):
        t.check_arguments({"model": "-rf"})


def test_the_ecmascript_meaning_of_dollar_refuses_a_final_newline():
    assert ollama_mcp.ecma_regex("^a$").search("a")
    assert not ollama_mcp.ecma_regex("^a$").search("a\n")
    assert ollama_mcp.ecma_regex("^[$]$").search("$")  # inside a class `$` is the character
    assert ollama_mcp.ecma_regex(r"^\$$").search("$")


def test_published_defaults_are_the_ones_the_server_applies(client, fake):
    t = next(t for t in catalogue() if t.name == "ollama_save_context")
    assert t.spec()["inputSchema"]["properties"]["mode"]["default"] == "replace"
    message = {"role": "user", "content": "hi"}
    client.call("ollama_save_context", {"session_id": "d", "messages": [message]})
    out = structured(client.call("ollama_save_context", {"session_id": "d", "messages": [message]})[0])
    assert out["mode"] == "replace" and out["count"] == 1


# --- null means "not given" --------------------------------------------------------------------


def test_null_for_every_optional_argument_means_not_given(client, fake):
    t = next(t for t in catalogue() if t.name == "ollama_generate")
    arguments = dict.fromkeys(t.spec()["inputSchema"]["properties"])
    arguments.update(model="gemma3:270m", prompt="hi")
    out = structured(client.call("ollama_generate", arguments)[0])
    assert out["response"]
    body = fake.requests[-1][2]
    assert body == {"model": "gemma3:270m", "prompt": "hi", "stream": True, "truncate": False}


def test_nulls_inside_messages_are_not_given_either(client, fake):
    message = {"role": "user", "content": "hi", "images": None, "tool_calls": None, "thinking": None}
    structured(client.call("ollama_chat", {"model": "gemma3:270m", "messages": [message], "options": None})[0])
    assert fake.requests[-1][2]["messages"] == [{"role": "user", "content": "hi"}]


def test_null_for_a_required_argument_is_still_an_error_naming_it(client):
    text = error_text(client.call("ollama_show_model", {"model": None})[0])
    assert "$.model" in text and "None is not of type 'string'" in text


def test_null_for_both_names_of_one_argument_is_neither_given(client):
    text = error_text(client.call("ollama_embeddings", {"model": "all-minilm", "prompt": None, "input": None})[0])
    assert "give exactly one of `prompt` or `input`" in text


# --- the log line of each request ----------------------------------------------------------------


def test_each_request_logs_its_method_era_and_protocol_version(server, client, caplog):
    caplog.set_level(logging.INFO, logger="ollama_mcp")
    client.request("tools/list")
    client.call("ollama_list_models")
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    post(
        server.url,
        {"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {"_meta": meta}},
        **{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"},
    )
    lines = [r for r in caplog.records if r.name == "ollama_mcp" and r.levelno == logging.INFO]
    messages = [r.getMessage() for r in lines]
    assert any(m.startswith("mcp tools/list ok") and "(handshake era, protocol 2025-11-25)" in m for m in messages)
    assert any(m.startswith("tool call ollama_list_models ok") and "handshake era" in m for m in messages)
    stateless = next(r for r in lines if "stateless era" in r.getMessage())
    assert stateless.getMessage().startswith("mcp tools/list ok") and stateless.protocol == "2026-07-28"


def test_an_unknown_method_is_logged_without_the_client_s_text(client, caplog):
    caplog.set_level(logging.INFO, logger="ollama_mcp")
    client.request("evil\x1b[31m/method")
    assert any(r.getMessage().startswith("mcp (unknown method) error") for r in caplog.records)
    assert not any("\x1b" in r.getMessage() for r in caplog.records)
