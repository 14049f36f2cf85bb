"""Embeddings: one text and many, the plan's argument names and Ollama's."""

import pytest

from conftest import call_ok, error_text, structured


def test_show_embedding_model(client):
    out = structured(client.call("ollama_show_model", {"model": "all-minilm"})[0])
    assert out["capabilities"] == ["embedding"]
    assert out["embedding_length"] == 384


def test_generate_on_an_embedding_model_suggests_embeddings(client):
    text = error_text(client.call("ollama_generate", {"model": "all-minilm", "prompt": "hi"})[0])
    assert "does not support generate" in text and "ollama_embeddings" in text


def test_embeddings_one_text(client, server, fake):
    out, _ = call_ok(
        client,
        server,
        "ollama_embeddings",
        {"model": "all-minilm", "input": "Hello world", "truncate": True, "keep_alive": "5m"},
    )
    assert out["dimensions"] == 384 and len(out["embedding"]) == 384
    assert fake.bodies("/api/embed") == [
        {"model": "all-minilm", "truncate": True, "keep_alive": "5m", "input": ["Hello world"]}
    ]


def test_create_embeddings_chunks_large_lists_and_keeps_order(client, server, fake):
    texts = [f"text {i}" for i in range(150)]
    out, notes = call_ok(
        client,
        server,
        "ollama_create_embeddings",
        {"model": "all-minilm", "inputs": texts, "dimensions": 64},
        progress=True,
    )
    assert out["count"] == 150 and out["dimensions"] == 64
    assert [len(b["input"]) for b in fake.bodies("/api/embed")] == [64, 64, 22]
    assert out["embeddings"][149] == fake._vector("text 149", 64)
    assert out["stats"]["requests"] == 3
    assert [n["params"]["progress"] for n in notes] == [64, 128, 150]


def test_embeddings_with_a_model_that_cannot_embed(client):
    text = error_text(client.call("ollama_embeddings", {"model": "gemma3:270m", "input": "x"})[0])
    assert "does not support embeddings" in text and "embedding model" in text


def test_embeddings_fall_back_to_the_legacy_endpoint(client, server, fake):
    fake.fail("/api/embed", 404, "404 page not found")
    out, _ = call_ok(client, server, "ollama_embeddings", {"model": "all-minilm", "input": "hi"})
    assert out["embedding"] == fake._vector("hi", 384)
    assert fake.bodies("/api/embeddings") == [{"model": "all-minilm", "prompt": "hi"}]


def test_the_legacy_endpoint_refuses_what_it_cannot_do_instead_of_dropping_it(client, fake):
    fake.fail("/api/embed", 404, "404 page not found", times=2)
    for extra, name in (({"dimensions": 8}, "dimensions"), ({"truncate": False}, "truncate")):
        result = client.call("ollama_embeddings", {"model": "all-minilm", "input": "hi", **extra})[0]
        assert (
            result["isError"] and error_text(result).startswith(f"{name}: ") and "update Ollama" in error_text(result)
        )
    assert fake.bodies("/api/embeddings") == []


def test_embeddings_too_long_without_truncate(client):
    text = error_text(
        client.call("ollama_embeddings", {"model": "all-minilm", "input": "word " * 600, "truncate": False})[0]
    )
    assert "exceeds the context length" in text


def test_validate_an_embedding_model_embeds(client, server, fake):
    out, _ = call_ok(client, server, "ollama_validate_model", {"model": "all-minilm"})
    assert out["valid"] is True and "384 dimensions" in out["checks"][2]["detail"]
    assert "/api/generate" not in fake.paths()


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
