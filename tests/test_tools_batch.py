"""Many prompts and many models: batch generation and comparison."""

import threading
import time

import pytest

from conftest import call_ok, error_text, structured, wait_for


def test_batch_keeps_order_and_reports_each_failure(client, server, fake):
    def sometimes(start_response, body, environ, raw):
        if body.get("prompt") == "bad":
            return fake._json(start_response, 500, {"error": "out of memory"})
        return fake.answer("POST", "/api/generate", start_response, body, environ, raw)

    fake.route("POST", "/api/generate", sometimes)
    out, notes = call_ok(
        client,
        server,
        "ollama_batch_generate",
        {"model": "gemma3:270m", "prompts": ["a", "bad", "c", "d"], "options": {"num_predict": 2}, "concurrency": 2},
        progress=True,
    )
    assert [r["index"] for r in out["results"]] == [0, 1, 2, 3]
    assert [r["prompt"] for r in out["results"]] == ["a", "bad", "c", "d"]
    assert "out of memory" in out["results"][1]["error"]
    assert out["results"][0]["response"] == "The sky"
    assert (out["succeeded"], out["failed"], out["concurrency"]) == (3, 1, 2)
    assert [n["params"]["progress"] for n in notes] == [1, 2, 3, 4]
    assert all(n["params"]["total"] == 4 for n in notes)


def test_batch_runs_prompts_in_parallel_up_to_the_cap(start_server, fake):
    server = start_server(batch_max_concurrency=3)
    c = server.client()
    c.initialize()
    fake.chunk_delay = 0.05
    active, peak = [0], [0]
    lock = threading.Lock()

    def counting(start_response, body, environ, raw):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return list(fake.answer("POST", "/api/generate", start_response, body, environ, raw))
        finally:
            with lock:
                active[0] -= 1

    fake.route("POST", "/api/generate", counting)
    out = structured(
        c.call(
            "ollama_batch_generate",
            {"model": "gemma3:270m", "prompts": ["p"] * 9, "concurrency": 10, "options": {"num_predict": 2}},
        )[0]
    )
    assert out["concurrency"] == 3 and out["succeeded"] == 9
    assert peak[0] == 3


def test_batch_prompt_count_is_capped(start_server):
    server = start_server(batch_max_prompts=3)
    c = server.client()
    c.initialize()
    text = error_text(c.call("ollama_batch_generate", {"model": "gemma3:270m", "prompts": ["a"] * 4})[0])
    assert "over the limit of 3" in text and "MCP_BATCH_MAX_PROMPTS" in text


@pytest.mark.slow
def test_cancelling_a_batch_stops_every_outstanding_prompt(client, fake):
    fake.chunk_delay = 0.1
    reply = {}
    payload = {
        "jsonrpc": "2.0",
        "id": 50,
        "method": "tools/call",
        "params": {
            "name": "ollama_batch_generate",
            "arguments": {"model": "gemma3:270m", "prompts": ["a", "b", "c", "d", "e", "f"], "concurrency": 3},
            "_meta": {"progressToken": 1},
        },
    }
    sender = threading.Thread(target=lambda: reply.update(body=client.post(payload).content))
    sender.start()
    assert wait_for(lambda: fake.streams_started == 3)
    client.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 50}})
    assert wait_for(lambda: fake.streams_aborted == 3), "the three running prompts are closed"
    time.sleep(0.3)  # a window in which a queued prompt would start, were it going to
    assert fake.streams_started == 3, "the waiting prompts never start"
    sender.join(5)
    assert b'"id":50' not in reply["body"]


def test_compare_models_same_prompt_and_seed(client, server, fake):
    out, notes = call_ok(
        client,
        server,
        "ollama_compare_models",
        {"models": ["gemma3:270m", "qwen3:0.6b", "all-minilm"], "prompt": "hi", "options": {"num_predict": 3}},
        progress=True,
    )
    bodies = fake.bodies("/api/generate")
    assert [b["options"] for b in bodies] == [{"seed": 42, "num_predict": 3}] * 3
    assert out["results"][0]["response"] == "The sky is" and out["results"][0]["tokens_per_second"] == 50.0
    assert out["results"][1]["completion_tokens"] == 3
    assert "does not support generate" in out["results"][2]["error"]
    assert len(notes) == 3
