"""Monitoring: health, version, processes, unload, sizes, every model's details, validate, search, cancel."""

import json
import time

import pytest
import responses

import ollama_mcp
from conftest import call_ok, error_text, iter_sse, structured


def test_health_reports_version_models_and_loaded(client, fake):
    fake.loaded["gemma3:270m"] = "2026-11-24T21:18:24Z"
    out = structured(client.call("ollama_check_health")[0])
    assert out["healthy"] is True
    assert out["version"] == "0.24.0"
    assert out["models_installed"] == 4
    assert out["models_loaded"] == ["gemma3:270m"]
    assert out["latency_ms"] >= 0


def test_health_when_ollama_is_down_is_a_normal_result(start_server):
    server = start_server(ollama_url="http://127.0.0.1:9")
    c = server.client()
    c.initialize()
    out = structured(c.call("ollama_check_health")[0])
    assert out["healthy"] is False
    assert "http://127.0.0.1:9" in out["error"]
    assert "ollama serve" in out["fix"]


@pytest.mark.parametrize("digest", ["sha256:xyz", "md5:" + "0" * 64, "sha256:" + "A" * 64, "../../etc"])
def test_check_blobs_validates_the_digest(client, digest, fake):
    assert "$.digest" in error_text(client.call("ollama_check_blobs", {"digest": digest})[0])
    assert not [p for p in fake.paths() if p.startswith("/api/blobs")]


def test_list_processes_in_human_terms(client, server, fake):
    soon = time.strftime("%Y-%m-%dT%H:%M:%S.123456789Z", time.gmtime(time.time() + 290))
    fake.loaded["gemma3:270m"] = soon
    out, _ = call_ok(client, server, "ollama_list_processes")
    (model,) = out["models"]
    assert model["name"] == "gemma3:270m"
    assert model["expires_in"] == "in 4 minutes"
    assert model["size_human"] == "477.8 MB" and model["context_length"] == 4096 and model["size_vram"] == 0


def test_get_version(client, server):
    out, _ = call_ok(client, server, "ollama_get_version")
    assert out["version"] == "0.24.0" and out["server_version"] == ollama_mcp.__version__


def test_get_model_size_loaded_and_not(client, server, fake):
    out, _ = call_ok(client, server, "ollama_get_model_size", {"model": "all-minilm"})
    assert out == {
        "model": "all-minilm:latest",
        "size": 45949702,
        "size_human": "45.9 MB",
        "parameter_size": "22.57M",
        "quantization_level": "F16",
        "loaded": False,
        "loaded_size": None,
        "size_vram": None,
        "vram_human": None,
    }
    fake.loaded["gemma3:270m"] = "2026-11-24T21:18:24Z"
    out, _ = call_ok(client, server, "ollama_get_model_size", {"model": "gemma3:270m"})
    assert out["loaded"] is True and out["loaded_size"] == 477798912 and out["vram_human"] == "0 B"


def test_get_model_size_unknown(client):
    assert "ollama_pull_model" in error_text(client.call("ollama_get_model_size", {"model": "nope"})[0])


def test_models_info_survives_one_failing_model(client, server, fake):
    def flaky(start_response, body, environ, raw):
        if body.get("model") == "all-minilm:latest":
            return fake._json(start_response, 500, {"error": "manifest corrupt"})
        return fake.answer("POST", "/api/show", start_response, body, environ, raw)

    fake.route("POST", "/api/show", flaky)
    out, _ = call_ok(client, server, "ollama_get_models_info")
    assert out["count"] == 4 and out["errors"] == 1
    by_name = {m["name"]: m for m in out["models"]}
    assert "manifest corrupt" in by_name["all-minilm:latest"]["error"]
    assert by_name["gemma3:270m"]["context_length"] == 32768
    assert by_name["qwen3:0.6b"]["capabilities"] == ["completion", "tools", "thinking"]


def test_cancel_request_lists_and_cancels_own_calls(client, server, fake):
    fake.chunk_delay = 0.1
    r = client.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id="gen-1")
    events = iter_sse(r)
    next(events)
    out, _ = call_ok(client, server, "ollama_cancel_request")
    (listed,) = out["calls"]
    assert (
        listed["request_id"] == "gen-1"
        and listed["tool"] == "ollama_generate_stream"
        and listed["model"] == "gemma3:270m"
        and listed["elapsed_s"] > 0
    )
    out, _ = call_ok(client, server, "ollama_cancel_request", {"request_id": "gen-1"})
    assert out["cancelled"] is True
    assert fake.aborted.wait(2)
    # Cancelled by another call, not by its own client: it is still answered, and says why.
    final = [json.loads(e["data"]) for e in events][-1]
    assert final["id"] == "gen-1" and final["result"]["isError"] is True
    text = error_text(final["result"])
    assert "cancelled by ollama_cancel_request" in text and "The" in text  # with the text generated so far


@pytest.mark.parametrize("given", [5, "5"])
def test_cancel_request_takes_the_id_as_a_number_or_a_string(client, server, fake, given):
    fake.chunk_delay = 0.05
    r = client.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id=5)
    events = iter_sse(r)
    next(events)
    out, _ = call_ok(client, server, "ollama_cancel_request", {"request_id": given})
    assert out["cancelled"] is True and out["request_id"] == 5
    assert json.loads(list(events)[-1]["data"])["result"]["isError"] is True


def test_cancel_request_sees_the_principals_calls_across_sessions(client, server, fake):
    fake.chunk_delay = 0.05
    other = server.client()
    other.initialize()
    r = other.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id=5)
    next(iter_sse(r))
    assert [c["request_id"] for c in call_ok(client, server, "ollama_cancel_request")[0]["calls"]] == [5]
    r.close()


def test_cancel_request_cannot_see_other_principals(start_server, fake):
    server = start_server(auth_tokens=("alice:" + "a" * 20, "bob:" + "b" * 20))
    alice, bob = server.client(), server.client()
    alice.http.headers["Authorization"] = "Bearer " + "a" * 20
    bob.http.headers["Authorization"] = "Bearer " + "b" * 20
    alice.initialize()
    bob.initialize()
    fake.chunk_delay = 0.05
    r = bob.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id=5)
    next(iter_sse(r))
    assert call_ok(alice, server, "ollama_cancel_request")[0]["calls"] == []
    assert "no running call with request_id 5" in error_text(alice.call("ollama_cancel_request", {"request_id": 5})[0])
    r.close()


def test_validate_a_chat_model(client, server, fake):
    out, _ = call_ok(client, server, "ollama_validate_model", {"model": "gemma3:270m"})
    assert out["valid"] is True
    assert [c["check"] for c in out["checks"]] == ["installed", "manifest readable", "loads and answers"]
    assert fake.bodies("/api/generate")[0]["options"] == {"num_predict": 1}


def test_validate_a_missing_model_stops_at_the_first_check(client, server):
    out, _ = call_ok(client, server, "ollama_validate_model", {"model": "nope"})
    assert out["valid"] is False and len(out["checks"]) == 1 and "ollama_pull_model" in out["verdict"]


def test_search_ranks_names_families_and_capabilities(client, server):
    out, _ = call_ok(client, server, "ollama_search_models", {"query": "embedding"})
    assert [h["name"] for h in out["local"]] == ["all-minilm:latest"]
    out, _ = call_ok(client, server, "ollama_search_models", {"query": "gemma3"})
    assert [h["name"] for h in out["local"]][:2] == ["gemma3-270m-assistant:latest", "gemma3:270m"]
    out, _ = call_ok(client, server, "ollama_search_models", {"query": "tools"})
    assert [h["name"] for h in out["local"]] == ["qwen3:0.6b"]
    assert out["remote"] is None


def test_search_remote_unreachable_is_a_clear_result(start_server):
    server = start_server(model_library_url="http://127.0.0.1:9")
    c = server.client()
    c.initialize()
    out = structured(c.call("ollama_search_models", {"query": "gemma", "remote": True})[0])
    assert out["remote"] is None and "could not reach the model library" in out["remote_error"]
    assert out["local"]


@responses.activate
def test_search_library_parses_names():
    responses.get(
        "https://ollama.com/search",
        body='<a href="/library/llama3.2">x</a><a href="/library/qwen3">y</a><a href="/library/llama3.2">z</a>',
    )
    assert ollama_mcp._search_library(ollama_mcp.Config(), "llama") == ["llama3.2", "qwen3"]
    assert responses.calls[0].request.params == {"q": "llama"}


@responses.activate
def test_search_library_timeout_is_a_tool_error():
    import requests

    responses.get("https://ollama.com/search", body=requests.ConnectTimeout("slow"))
    with pytest.raises(ollama_mcp.ToolError, match="could not reach the model library"):
        ollama_mcp._search_library(ollama_mcp.Config(), "llama")


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


def test_a_call_cancelled_by_the_tool_gets_an_error_with_its_text_so_far(client, fake):
    fake.chunk_delay = 0.1
    r = client.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id="34")
    events = iter_sse(r)
    for _ in range(3):
        next(events)
    out = structured(client.call("ollama_cancel_request", {"request_id": "34"})[0])
    assert out["cancelled"] is True
    final = json.loads(list(events)[-1]["data"])
    assert final["id"] == "34" and final["result"]["isError"] is True
    assert "cancelled by ollama_cancel_request" in final["result"]["content"][0]["text"]
    assert "The sky is" in final["result"]["content"][0]["text"]
