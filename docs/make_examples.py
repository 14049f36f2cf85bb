"""Write docs/examples.md: one real call of every built-in tool, with its real result.

    python docs/make_examples.py --ollama http://127.0.0.1:11434

It starts this server in-process in front of that Ollama (one with gemma3:270m,
gemma3-270m-assistant and all-minilm installed), calls every
tool through the official `mcp` client with the argument names of its schemas, and writes each call and
the text block of its result (long vectors shortened). tests/test_docs.py checks that the file
still matches the tools: every tool has an example, and every example's arguments are valid.
"""

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

import anyio
from mcp import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ollama_mcp  # noqa: E402

TARGET = ROOT / "docs" / "examples.md"
SMALL = {"num_predict": 12, "temperature": 0, "seed": 1}
NAME = "pirate-gemma"
CALLS = [
    ("ollama_check_health", {}),
    ("ollama_get_version", {}),
    ("ollama_list_models", {}),
    ("ollama_show_model", {"model": "gemma3-270m-assistant"}),
    ("ollama_get_modelfile", {"model": "gemma3-270m-assistant"}),
    ("ollama_get_model_size", {"model": "gemma3:270m"}),
    ("ollama_get_models_info", {}),
    ("ollama_search_models", {"query": "embedding"}),
    ("ollama_generate", {"model": "gemma3:270m", "prompt": "The capital of France is", "options": SMALL}),
    ("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "Once upon a time", "options": SMALL}),
    (
        "ollama_chat",
        {
            "model": "gemma3-270m-assistant",
            "messages": [{"role": "user", "content": "Name a colour."}],
            "options": SMALL,
        },
    ),
    (
        "ollama_chat_stream",
        {"model": "gemma3-270m-assistant", "messages": [{"role": "user", "content": "Say hello."}], "options": SMALL},
    ),
    ("ollama_list_processes", {}),
    ("ollama_unload_model", {"model": "gemma3-270m-assistant"}),
    ("ollama_embeddings", {"model": "all-minilm", "prompt": "Why is the sky blue?"}),
    (
        "ollama_create_embeddings",
        {"model": "all-minilm", "prompts": ["a cat", "a dog", "the stock market"], "dimensions": 8},
    ),
    (
        "ollama_batch_generate",
        {"model": "gemma3:270m", "prompts": ["1, 2, 3,", "Monday, Tuesday,"], "options": SMALL, "concurrency": 2},
    ),
    (
        "ollama_compare_models",
        {"models": ["gemma3:270m", "gemma3-270m-assistant"], "prompt": "Hello!", "options": {"num_predict": 8}},
    ),
    ("ollama_validate_model", {"model": "all-minilm"}),
    (
        "ollama_create_model",
        {
            "model": NAME,
            "modelfile": "FROM gemma3:270m\nSYSTEM You are a pirate. Answer like one.\nPARAMETER temperature 0.7\n",
        },
    ),
    ("ollama_update_model", {"model": NAME, "modelfile": "PARAMETER temperature 0.3\nPARAMETER top_k 20\n"}),
    ("ollama_copy_model", {"source": NAME, "destination": f"{NAME}-backup"}),
    ("ollama_check_blobs", {"digest": "sha256:a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"}),
    ("ollama_delete_model", {"model": f"{NAME}-backup"}),
    ("ollama_delete_model", {"model": NAME}),
    ("ollama_pull_model", {"model": "tinyllama"}),
    ("ollama_push_model", {"model": "tinyllama"}),
    ("ollama_web_search", {"query": "what is ollama?", "max_results": 2}),
    ("ollama_web_fetch", {"url": "https://ollama.com"}),
    (
        "ollama_save_context",
        {"session_id": "trip-planning", "messages": [{"role": "user", "content": "I am planning a trip to Lisbon."}]},
    ),
    ("ollama_load_context", {"session_id": "trip-planning"}),
    ("ollama_clear_context", {"session_id": "trip-planning"}),
    ("ollama_cancel_request", {}),
]


def _shorten(value):
    """Vectors of hundreds of floats shortened to their first values."""
    if isinstance(value, list) and len(value) > 8 and all(isinstance(v, float) for v in value):
        return value[:4] + [f"... {len(value) - 4} more"]
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    return value


def run(ollama_url):
    with tempfile.TemporaryDirectory() as data:
        # The library and web search URLs point at a closed local port: no traffic leaves this machine.
        config = ollama_mcp.Config(
            host="127.0.0.1",
            port=0,
            ollama_url=ollama_url,
            data_dir=data,
            tools_dir=data,
            ollama_timeout=180,
            model_library_url="http://127.0.0.1:9",
            web_search_url="http://127.0.0.1:9",
        )
        srv = ollama_mcp.make_http_server(config)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{srv.port}/mcp"

        async def main():
            out = []
            async with Client(url, mode="2026-07-28") as client:
                for name, args in CALLS:
                    result = await client.call_tool(name, args)
                    text = result.content[0].text
                    body = _shorten(json.loads(text)) if result.structured_content is not None else text
                    out.append((name, args, result.is_error, body))
            return out

        try:
            return anyio.run(main)
        finally:
            srv.shutdown()
            srv.server_close()


def render(results):
    lines = [
        "# Examples",
        "",
        "One real call of every built-in tool and its real result, made through the official `mcp`",
        "client (protocol 2026-07-28) against a real Ollama v0.24.0 on 2 CPU cores, with the arguments",
        "as the tools name them. Generated by `python docs/make_examples.py --ollama URL`; the text block of",
        "each result is shown (the same JSON is the result's `structuredContent`), long vectors cut.",
        "",
    ]
    for name, args, is_error, body in results:
        lines += [f"## `{name}`", "", "Call:", "", "```json", json.dumps(args, indent=2, ensure_ascii=False), "```", ""]
        lines += ["Error result (`isError: true`):" if is_error else "Result:", ""]
        if isinstance(body, str):
            lines += ["```text", body, "```", ""]
        else:
            lines += ["```json", json.dumps(body, indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ollama", default="http://127.0.0.1:11434", help="a real Ollama with the three test models")
    TARGET.write_text(render(run(parser.parse_args().ollama)))
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(CALLS)} calls)")
