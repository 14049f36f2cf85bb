"""Several Ollama hosts behind one server (OLLAMA_HOSTS): inventory, routing, spreading, a host
going down and coming back. Two fake Ollamas with different model sets."""

import copy
import io
import time

import pytest
import requests

import ollama_mcp
from conftest import call_ok, error_text, structured, wait_for
from fake_ollama import FakeOllama


@pytest.fixture
def two(start_server):
    """(server, a, b): host a has every default model; host b only gemma3:270m and all-minilm."""
    a, b = FakeOllama().start(), FakeOllama().start()
    b.models = {k: v for k, v in b.models.items() if k in ("gemma3:270m", "all-minilm:latest")}
    server = start_server(ollama_hosts=(a.url, b.url), ollama_url=a.url)
    yield server, a, b
    a.stop()
    b.stop()


def client_of(server):
    c = server.client()
    c.initialize()
    return c


def generations(fake):
    return len(fake.bodies("/api/generate"))


def test_one_host_is_a_pool_of_one():
    config = ollama_mcp.load_config({}, environ={"OLLAMA_HOSTS": "127.0.0.1:1"}, env_file="")
    ollama = ollama_mcp.McpServer(config).ollama
    assert not ollama.several and [h.url for h in ollama.members] == ["http://127.0.0.1:1"]
    assert ollama.for_model("any") is ollama.members[0].client, "no inventory is read for one host"
    config = ollama_mcp.load_config({}, environ={"OLLAMA_HOSTS": "a:1, http://b:2/ ,a:1"}, env_file="")
    assert config.ollama_hosts == ("http://a:1", "http://b:2") and config.ollama_url == "http://a:1"


def test_list_models_merges_the_hosts_and_names_them(two):
    server, a, b = two
    out, _ = call_ok(client_of(server), server, "ollama_list_models")
    hosts = {m["name"]: m["hosts"] for m in out["models"]}
    assert hosts["gemma3:270m"] == [a.url, b.url]
    assert hosts["qwen3:0.6b"] == [a.url]
    assert out["count"] == 4


def test_a_call_goes_to_a_host_that_has_the_model(two):
    server, a, b = two
    only = copy.deepcopy(b.models["gemma3:270m"])
    only.tag.update(name="only-on-b:latest", model="only-on-b:latest")
    c = client_of(server)
    c.call("ollama_list_models")  # the inventory is read...
    b.models["only-on-b:latest"] = only  # ...then a model appears on b behind this server's back
    assert structured(c.call("ollama_generate", {"model": "only-on-b", "prompt": "x"})[0])["response"]
    assert generations(b) == 1 and generations(a) == 0
    structured(c.call("ollama_generate", {"model": "qwen3:0.6b", "prompt": "x"})[0])
    assert generations(a) == 1


def test_a_model_no_host_has_names_the_hosts_asked(two):
    server, a, b = two
    text = error_text(client_of(server).call("ollama_generate", {"model": "nowhere", "prompt": "x"})[0])
    assert a.url in text and b.url in text and "ollama_pull_model" in text


def test_a_loaded_model_is_preferred(two):
    server, a, b = two
    b.loaded["gemma3:270m"] = "2026-11-24T21:18:24.2783478Z"
    for host in server.mcp.ollama.members:
        host.refresh()
    c = client_of(server)
    for _ in range(3):
        structured(c.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})[0])
    assert generations(b) == 3 and generations(a) == 0


@pytest.mark.slow
def test_a_batch_spreads_over_the_hosts_that_have_the_model(two):
    server, a, b = two
    a.chunk_delay = b.chunk_delay = 0.05
    c = client_of(server)
    out = structured(
        c.call("ollama_batch_generate", {"model": "gemma3:270m", "prompts": ["p"] * 8, "concurrency": 4})[0]
    )
    assert out["succeeded"] == 8
    assert generations(a) >= 2 and generations(b) >= 2, (generations(a), generations(b))


def test_pull_goes_to_one_host_or_all_or_the_one_named(two):
    server, a, b = two
    c = client_of(server)
    out = structured(c.call("ollama_pull_model", {"model": "tinyllama"})[0])
    assert len(out["hosts"]) == 1
    out = structured(c.call("ollama_pull_model", {"model": "tinyllama", "host": "all"})[0])
    assert out["hosts"] == [a.url, b.url]
    before = len(b.bodies("/api/pull"))
    structured(c.call("ollama_pull_model", {"model": "tinyllama", "host": b.url})[0])
    assert len(b.bodies("/api/pull")) == before + 1
    text = error_text(c.call("ollama_pull_model", {"model": "tinyllama", "host": "http://10.0.0.9:11434"})[0])
    assert "not one of this server's Ollama hosts" in text


def test_delete_acts_where_the_model_is(two):
    server, a, b = two
    out = structured(client_of(server).call("ollama_delete_model", {"model": "gemma3:270m"})[0])
    assert out["hosts"] == [a.url, b.url]
    assert "gemma3:270m" not in a.models and "gemma3:270m" not in b.models


def test_health_version_and_processes_report_per_host(two):
    server, a, b = two
    c = client_of(server)
    health = structured(c.call("ollama_check_health")[0])
    assert health["healthy"] and [h["url"] for h in health["hosts"]] == [a.url, b.url]
    assert all(h["up"] and h["version"] == "0.24.0" for h in health["hosts"])
    version = structured(c.call("ollama_get_version")[0])
    assert [h["url"] for h in version["hosts"]] == [a.url, b.url]
    c.call("ollama_generate", {"model": "qwen3:0.6b", "prompt": "x"})
    processes = structured(c.call("ollama_list_processes")[0])
    assert [(p["name"], p["host"]) for p in processes["models"]] == [("qwen3:0.6b", a.url)]


@pytest.mark.slow
def test_a_host_going_down_is_skipped_and_used_again_when_it_returns(two):
    server, a, b = two
    c = client_of(server)
    port, b_url = b.port, b.url
    b.stop()
    health = structured(c.call("ollama_check_health")[0])
    down = next(h for h in health["hosts"] if h["url"] == b_url)
    assert health["healthy"] and down["up"] is False and "not reachable" in down["error"]
    pool = server.mcp.ollama
    assert wait_for(lambda: not pool.members[1].up, timeout=10)
    processes = structured(c.call("ollama_list_processes")[0])
    assert [(h["url"], h["up"]) for h in processes["hosts"]] == [(a.url, True), (b_url, False)]
    assert "not reachable" in processes["hosts"][1]["error"]
    for _ in range(3):  # the model is on both: every call goes to the host that answers
        assert c.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})[0]["isError"] is False
    base = server.url.rsplit("/", 1)[0]
    assert requests.get(f"{base}/readyz", timeout=5).status_code == 200  # one host answers: ready
    assert f'ollama_mcp_ollama_host_up{{host="{b_url}"}} 0' in requests.get(f"{base}/metrics", timeout=5).text
    b.start(port)
    back = time.monotonic()
    assert wait_for(lambda: pool.members[1].up, timeout=10), "a returning host is probed back"
    print(f"host back in use after {time.monotonic() - back:.2f} s")
    assert f'ollama_mcp_ollama_host_up{{host="{b.url}"}} 1' in requests.get(f"{base}/metrics", timeout=5).text


def test_check_reports_every_host(two):
    server, a, b = two
    config = ollama_mcp.load_config({}, environ={"OLLAMA_HOSTS": f"{a.url},{b.url},127.0.0.1:9"}, env_file="")
    printed = io.StringIO()
    assert ollama_mcp.run_check(config, printed) == 0
    out = printed.getvalue()
    assert f"Ollama: 0.24.0 at {a.url}" in out and f"Ollama: 0.24.0 at {b.url}" in out
    assert "NOT reachable at http://127.0.0.1:9" in out


@pytest.fixture
def retrying(two, start_server):
    """`two`'s hosts behind a server that retries as the default does (OLLAMA_RETRIES=2)."""
    _, a, b = two
    return start_server(ollama_hosts=(a.url, b.url), ollama_url=a.url, ollama_retries=2), a, b


def count_attempts(client):
    """Count the sends `client` makes (each retry is one more), through its own method."""
    sent = []
    send = client._send

    def counted(*args):
        sent.append(args[1])
        return send(*args)

    client._send = counted
    return sent


def kill(fake, server):
    """As the kernel does when a process dies: nothing listens, its connections are closed."""
    fake.stop()
    for host in server.mcp.ollama.members:
        host.client.close()


def test_a_refused_host_is_left_at_once_when_another_has_the_model(retrying):
    # No retry on the host that refuses while another host can take the request: the move is the retry.
    server, a, b = retrying
    c = client_of(server)
    assert c.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})[0]["isError"] is False
    dead, alive = (a, b) if generations(a) else (b, a)
    host = next(h for h in server.mcp.ollama.members if h.url == dead.url)
    sent = count_attempts(host.client)
    kill(dead, server)
    before = generations(alive)
    assert c.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})[0]["isError"] is False
    assert generations(alive) == before + 1
    assert sent == ["/api/generate"], sent  # one attempt, no retries


def test_a_refused_host_with_no_other_for_the_model_is_retried(retrying):
    # Only host a has qwen3:0.6b: its refusal is retried (OLLAMA_RETRIES) before the call fails.
    server, a, b = retrying
    c = client_of(server)
    assert c.call("ollama_generate", {"model": "qwen3:0.6b", "prompt": "x"})[0]["isError"] is False
    host = next(h for h in server.mcp.ollama.members if h.url == a.url)
    sent = count_attempts(host.client)
    url = a.url
    kill(a, server)
    result = c.call("ollama_generate", {"model": "qwen3:0.6b", "prompt": "x"})[0]
    assert result["isError"] and url in error_text(result)
    assert sent == ["/api/generate"] * 3, sent  # the first attempt and OLLAMA_RETRIES=2


def test_a_call_on_a_named_host_keeps_its_retries(retrying):
    server, a, b = retrying
    c = client_of(server)
    host = next(h for h in server.mcp.ollama.members if h.url == b.url)
    sent = count_attempts(host.client)
    url = b.url
    kill(b, server)
    result = c.call("ollama_pull_model", {"model": "tinyllama", "host": url})[0]
    assert result["isError"] and url in error_text(result)
    assert sent == ["/api/pull"] * 3, sent
