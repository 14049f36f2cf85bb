"""The tool-pack loader, and the pack shipped in tools/."""

import json

import pytest

import ollama_mcp
from conftest import ROOT


def write_pack(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


GOOD = """
from ollama_mcp import tool, strict_object, open_object

@tool(title="Shout", description="Upper-cases text for tests of the loader.",
      input_schema=strict_object({"text": {"type": "string"}}, ["text"]),
      output_schema=open_object({"text": {"type": "string"}}), read_only=True)
def pack_shout(call, args):
    return {"text": args["text"].upper()}
"""

REGISTER = """
from ollama_mcp import tool, strict_object, open_object

@tool(title="Count", description="Counts characters for tests of the loader.",
      input_schema=strict_object({"text": {"type": "string"}}, ["text"]),
      output_schema=open_object({"n": {"type": "integer"}}), read_only=True)
def _hidden(call, args):
    return {"n": len(args["text"])}

def register(add):
    _hidden.tool = _hidden.tool.__class__(**{**_hidden.tool.__dict__, "name": "pack_count"})
    add(_hidden)
"""


def test_packs_load_sorted_and_bad_ones_are_skipped(tmp_path, caplog):
    packs = tmp_path / "packs"
    write_pack(packs, "b_good.py", GOOD)
    write_pack(packs, "a_broken.py", "raise RuntimeError('boom')\n")
    write_pack(packs, "c_register.py", REGISTER)
    write_pack(packs, "_private.py", GOOD.replace("pack_shout", "pack_private"))
    tools = ollama_mcp.load_tool_packs(packs)
    assert [t.name for t in tools] == ["pack_shout", "pack_count"]
    assert "a_broken.py failed to load" in caplog.text


def test_a_pack_cannot_replace_a_builtin(tmp_path, make_config, caplog):
    write_pack(tmp_path / "p", "dup.py", GOOD.replace("def pack_shout", "def ollama_list_models"))
    registry = ollama_mcp.build_registry(make_config(tools_dir=str(tmp_path / "p")))
    assert registry.get("ollama_list_models").handler is ollama_mcp.ollama_list_models
    assert "already taken" in caplog.text


def test_missing_pack_folder_is_fine(tmp_path):
    assert ollama_mcp.load_tool_packs(tmp_path / "nowhere") == []


def test_pack_tools_are_served_over_mcp(tmp_path, start_server):
    write_pack(tmp_path / "p", "shout.py", GOOD)
    server = start_server(tools_dir=str(tmp_path / "p"))
    c = server.client()
    c.initialize()
    result, _ = c.call("pack_shout", {"text": "hi"})
    assert result["structuredContent"] == {"text": "HI"}


def test_decorator_rejects_bad_names_and_non_object_schemas():
    with pytest.raises(ValueError, match="must match"):
        ollama_mcp.tool(
            title="t",
            description="d",
            input_schema=ollama_mcp.strict_object({}),
            output_schema=ollama_mcp.open_object({}),
            read_only=True,
            name="bad name",
        )(lambda c, a: {})
    with pytest.raises(ValueError, match="type object"):
        ollama_mcp.tool(
            title="t",
            description="d",
            input_schema={"type": "array"},
            output_schema=ollama_mcp.open_object({}),
            read_only=True,
            name="ok_name",
        )(lambda c, a: {})


def test_a_pack_with_an_invalid_schema_is_skipped(tmp_path, caplog):
    write_pack(
        tmp_path / "p",
        "bad.py",
        GOOD.replace('{"text": {"type": "string"}}, ["text"]', '{"text": {"type": 5}}, ["text"]', 1),
    )
    assert ollama_mcp.load_tool_packs(tmp_path / "p") == []
    assert "bad.py failed to load" in caplog.text


@pytest.mark.parametrize("t", ollama_mcp.BUILTIN_TOOLS, ids=lambda t: t.name)
def test_every_builtin_schema_is_valid_json_schema_2020_12(t):
    ollama_mcp.check_tool(t)


def test_registry_rejects_duplicates():
    t = ollama_mcp.BUILTIN_TOOLS[0]
    with pytest.raises(ValueError, match="duplicate"):
        ollama_mcp.Registry([t, t])


# --- the shipped pack: tools/semantic_rank.py --------------------------------------------------


@pytest.fixture
def pack_client(start_server):
    server = start_server(tools_dir=str(ROOT / "tools"))
    c = server.client()
    c.initialize()
    return c


def test_rank_texts_orders_by_cosine_similarity(pack_client, fake):
    texts = ["a cat sat", "stock prices fell", "the cat sat"]
    result, _ = pack_client.call("ollama_rank_texts", {"model": "all-minilm", "query": "the cat sat", "texts": texts})
    out = result["structuredContent"]
    assert out["results"][0] == {"index": 2, "text": "the cat sat", "score": 1.0}
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)
    assert fake.bodies("/api/embed") == [{"model": "all-minilm", "input": ["the cat sat", *texts]}]


def test_rank_texts_top_k(pack_client):
    result, _ = pack_client.call(
        "ollama_rank_texts", {"model": "all-minilm", "query": "q", "texts": ["a", "b", "c"], "top_k": 2}
    )
    assert len(result["structuredContent"]["results"]) == 2


def test_rank_texts_with_a_model_that_cannot_embed(pack_client):
    result, _ = pack_client.call("ollama_rank_texts", {"model": "gemma3:270m", "query": "q", "texts": ["a"]})
    assert result["isError"] and "embedding model" in result["content"][0]["text"]


def test_default_registry_includes_the_shipped_pack(make_config):
    registry = ollama_mcp.build_registry(make_config(tools_dir=""))
    assert "ollama_rank_texts" in registry
    spec = registry.get("ollama_rank_texts").spec()
    assert spec["inputSchema"]["required"] == ["model", "query", "texts"]
    assert spec["annotations"]["readOnlyHint"] is True
    assert json.loads(json.dumps(spec)) == spec  # plain JSON all the way down
