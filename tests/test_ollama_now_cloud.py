"""Ollama as it is now, part A (issue 23): the API key per host, cloud models marked, the 401's
sign-in URL, web search and fetch, push with its allow-list, show's newer fields. Each through MCP
over a real socket against the fake (which follows Ollama v0.32.15's source for these), recording
what reaches Ollama: its Authorization header and bodies."""

import io
import json
import subprocess
import sys

import pytest
import requests
import urllib3

import ollama_mcp
from conftest import ROOT, call_ok, error_text, process_env, start_process
from fake_ollama import CLOUD_HOST, SIGNIN_URL, FakeOllama

KEY = "olk-test-0123456789abcdef-SECRET"
OTHER_KEY = "olk-other-fedcba9876543210-SECRET"
CLOUD = "gpt-oss:120b-cloud"


@pytest.fixture
def second():
    other = FakeOllama().start()
    yield other
    other.stop()


def auth_headers(fake):
    return {auth for _, _, auth in fake.headers}


# --- 1. OLLAMA_API_KEY: a bearer header to every host, per host where they differ -----------------


def test_the_api_key_goes_as_a_bearer_header_on_every_call(fake, start_server):
    server = start_server(ollama_api_key=KEY)
    client = server.client()
    client.initialize()
    call_ok(client, server, "ollama_list_models")
    call_ok(client, server, "ollama_show_model", {"model": "gemma3:270m"})
    call_ok(client, server, "ollama_generate", {"model": "gemma3:270m", "prompt": "hi"})
    assert {"/api/tags", "/api/show", "/api/generate"} <= set(fake.paths())
    assert auth_headers(fake) == {f"Bearer {KEY}"}


def test_without_a_key_no_authorization_header_is_sent(fake, client, server):
    call_ok(client, server, "ollama_list_models")
    assert auth_headers(fake) == {None}


def test_each_host_gets_its_own_key_from_ollama_api_keys(fake, second, start_server):
    config = ollama_mcp.load_config(
        environ={
            "OLLAMA_HOSTS": f"{fake.url},{second.url}",
            "OLLAMA_API_KEY": KEY,
            "OLLAMA_API_KEYS": f"{second.url}={OTHER_KEY}",
        },
        env_file="",
    )
    assert "SECRET" not in repr(config)
    server = start_server(
        ollama_url=config.ollama_url,
        ollama_hosts=config.ollama_hosts,
        ollama_api_key=config.ollama_api_key,
        ollama_api_keys=config.ollama_api_keys,
    )
    client = server.client()
    client.initialize()
    call_ok(client, server, "ollama_list_models")
    assert auth_headers(fake) == {f"Bearer {KEY}"}
    assert auth_headers(second) == {f"Bearer {OTHER_KEY}"}


def test_a_bad_ollama_api_keys_entry_is_refused_without_showing_the_key():
    with pytest.raises(ollama_mcp.ConfigError) as e:
        ollama_mcp.load_config(environ={"OLLAMA_API_KEYS": f"no-equals-{KEY}"}, env_file="")
    assert "OLLAMA_API_KEYS" in str(e.value) and "host=key" in str(e.value) and KEY not in str(e.value)
    with pytest.raises(ollama_mcp.ConfigError) as e:
        ollama_mcp.load_config(environ={"OLLAMA_API_KEYS": f"ftp://x={KEY}"}, env_file="")
    assert "OLLAMA_API_KEYS" in str(e.value) and KEY not in str(e.value)


def test_ollama_com_is_a_host_over_tls():
    assert ollama_mcp.parse_ollama_host("https://ollama.com") == "https://ollama.com:443"
    client = ollama_mcp.OllamaClient(ollama_mcp.Config(ollama_url="https://ollama.com:443", ollama_api_key=KEY))
    assert isinstance(client._pool, urllib3.HTTPSConnectionPool)
    assert client._auth == {"Authorization": f"Bearer {KEY}"}


def test_the_cloud_host_says_cleanly_what_it_does_not_serve(monkeypatch):
    client = ollama_mcp.OllamaClient(ollama_mcp.Config(ollama_url="https://ollama.com:443", ollama_api_key=KEY))

    def answer(*args, **kwargs):
        return urllib3.HTTPResponse(body=io.BytesIO(b"404 page not found"), status=404, preload_content=False)

    monkeypatch.setattr(client._pool, "urlopen", answer)
    with pytest.raises(ollama_mcp.OllamaError) as e:
        client.loaded()
    assert "ollama.com (a cloud host) has no /api/ps" in str(e.value) and "local Ollama host" in str(e.value)


@pytest.mark.slow
def test_the_key_never_reaches_logs_errors_check_output_or_metrics(fake, tmp_path):
    env = process_env(tmp_path, OLLAMA_API_KEY=KEY, LOG_LEVEL="DEBUG", OLLAMA_WEB_SEARCH_URL=fake.url)
    proc, url = start_process(fake, env, tmp_path)
    try:
        session = requests.Session()
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        r = session.post(url, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}, headers=headers)
        headers |= {"Mcp-Session-Id": r.headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
        session.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        fake.fail("/api/show", 401, {"error": "unauthorized", "signin_url": SIGNIN_URL})
        texts = []
        for i, (name, args) in enumerate(
            [
                ("ollama_list_models", {}),
                ("ollama_show_model", {"model": "gemma3:270m"}),
                ("ollama_web_search", {"query": "ollama"}),
                ("ollama_web_fetch", {"url": "https://ollama.com"}),
            ],
            1,
        ):
            msg = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": name, "arguments": args}}
            texts.append(session.post(url, json=msg, headers=headers, timeout=30).text)
        assert "ollama signin" in texts[1]  # the 401 was answered...
        assert all(KEY not in t for t in texts)  # ...and no answer carries the key
        metrics = session.get(url.replace("/mcp", "/metrics"), timeout=10).text
        assert KEY not in metrics
        assert f"Bearer {KEY}" in auth_headers(fake)  # it did go to Ollama
    finally:
        proc.terminate()
        stderr = proc.stderr.read()
        proc.stderr.close()
        proc.wait(10)
    assert "serving MCP" in stderr or stderr  # the log (DEBUG) was read
    assert KEY not in stderr
    check = subprocess.run(
        [sys.executable, str(ROOT / "ollama_mcp.py"), "--check", "--ollama-url", fake.url],
        env=process_env(tmp_path, OLLAMA_API_KEY=KEY, LOG_LEVEL="DEBUG"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert KEY not in check.stdout + check.stderr


# --- 2. cloud models marked in every listing, show and resource -------------------------------------


def test_a_cloud_model_is_marked_in_every_listing_show_and_resource(fake, client, server):
    fake.newest()
    listed = {m["name"]: m for m in call_ok(client, server, "ollama_list_models")[0]["models"]}
    assert listed[CLOUD]["cloud"] is True and listed[CLOUD]["remote_host"] == CLOUD_HOST
    assert listed[CLOUD]["remote_model"] == "gpt-oss:120b"
    assert "cloud" not in listed["gemma3:270m"]
    info = {m["name"]: m for m in call_ok(client, server, "ollama_get_models_info")[0]["models"]}
    assert info[CLOUD]["cloud"] is True and info[CLOUD]["remote_host"] == CLOUD_HOST
    shown, _ = call_ok(client, server, "ollama_show_model", {"model": CLOUD})
    assert shown["cloud"] is True and shown["remote_host"] == CLOUD_HOST and shown["remote_model"] == "gpt-oss:120b"
    response, _ = client.request("resources/read", {"uri": ollama_mcp.MODELS_URI})
    models = {m["name"]: m for m in json.loads(response["result"]["contents"][0]["text"])["models"]}
    assert models[CLOUD]["cloud"] is True and models[CLOUD]["remote_host"] == CLOUD_HOST
    response, _ = client.request("resources/read", {"uri": f"{ollama_mcp.MODELS_URI}/{CLOUD}"})
    one = json.loads(response["result"]["contents"][0]["text"])
    assert one["cloud"] is True and one["remote_host"] == CLOUD_HOST


def test_the_summarize_prompt_promises_locality_only_for_a_local_model(fake, client):
    fake.newest()
    response, _ = client.request("prompts/get", {"name": "summarize_text", "arguments": {"text": "t", "model": CLOUD}})
    text = response["result"]["messages"][0]["content"]["text"]
    assert "cloud model" in text and CLOUD_HOST in text and "not only to this machine" in text
    response, _ = client.request(
        "prompts/get", {"name": "summarize_text", "arguments": {"text": "t", "model": "gemma3:270m"}}
    )
    assert "the local model gemma3:270m" in response["result"]["messages"][0]["content"]["text"]
    listing, _ = client.request("prompts/list")
    summary = next(p for p in listing["result"]["prompts"] if p["name"] == "summarize_text")
    assert "never leaves" not in summary["description"] and "cloud model" in summary["description"]


# --- 3. a 401 answers with the sign-in URL and what to do -------------------------------------------


def test_a_401_names_the_signin_url_and_what_to_do(fake, client, server):
    fake.newest()
    result, _ = client.call("ollama_chat", {"model": CLOUD, "messages": [{"role": "user", "content": "hi"}]})
    text = error_text(result)
    assert SIGNIN_URL in text and "ollama signin" in text and "OLLAMA_API_KEY" in text
    assert fake.bodies("/api/chat")[-1]["model"] == CLOUD
    fake.signed_in = True
    call_ok(client, server, "ollama_chat", {"model": CLOUD, "messages": [{"role": "user", "content": "hi"}]})


def test_a_401_without_a_signin_url_still_says_what_to_do(fake, start_server):
    fake.api_key = KEY  # ollama.com's side: a wrong key is refused
    server = start_server(ollama_api_key="wrong-key")
    client = server.client()
    client.initialize()
    text = error_text(client.call("ollama_list_models")[0])
    assert "unauthorized" in text and "ollama signin" in text and "OLLAMA_API_KEY" in text
    assert "wrong-key" not in text


# --- 4. web search and fetch ------------------------------------------------------------------------


def test_web_search_needs_the_key_and_says_so(fake, start_server):
    server = start_server(web_search_url=fake.url)
    client = server.client()
    client.initialize()
    for name, args in (("ollama_web_search", {"query": "ollama"}), ("ollama_web_fetch", {"url": "https://x.org"})):
        text = error_text(client.call(name, args)[0])
        assert "OLLAMA_API_KEY" in text and "https://ollama.com/settings/keys" in text
    assert fake.requests == []


def test_web_search_sends_the_query_with_the_key_and_returns_lean_results(fake, start_server):
    server = start_server(web_search_url=fake.url, ollama_api_key=KEY)
    client = server.client()
    client.initialize()
    fake.web_results = [
        {"title": f"t{i}", "url": f"https://e.org/{i}", "content": "x" * 5000, "extra": "dropped"} for i in range(12)
    ]
    out, _ = call_ok(client, server, "ollama_web_search", {"query": "what is ollama?", "max_results": 3})
    assert fake.requests[-1] == ("POST", "/api/web_search", {"query": "what is ollama?", "max_results": 3})
    assert fake.headers[-1][2] == f"Bearer {KEY}"
    assert out["count"] == 3 and [r["url"] for r in out["results"]] == [f"https://e.org/{i}" for i in range(3)]
    first = out["results"][0]
    assert set(first) == {"title", "url", "content"} and len(first["content"]) < 1600
    assert first["content"].endswith("(5000 characters, cut)")
    for bad in (0, 11):
        text = error_text(client.call("ollama_web_search", {"query": "q", "max_results": bad})[0])
        assert "max_results" in text
    assert "query" in error_text(client.call("ollama_web_search", {"query": ""})[0])


def test_web_fetch_returns_title_bounded_content_and_capped_links(fake, start_server):
    server = start_server(web_search_url=fake.url, ollama_api_key=KEY)
    client = server.client()
    client.initialize()
    out, _ = call_ok(client, server, "ollama_web_fetch", {"url": "ollama.com"})
    assert fake.requests[-1] == ("POST", "/api/web_fetch", {"url": "ollama.com"})
    assert fake.headers[-1][2] == f"Bearer {KEY}"
    assert out["title"] == "Ollama" and out["links"][0] == "http://ollama.com/"

    def many(start_response, body, environ, raw):
        page = {"title": "Big", "content": "y" * 50_000, "links": [f"https://e.org/{i}" for i in range(50)]}
        return fake._json(start_response, 200, page)

    fake.route("POST", "/api/web_fetch", many)
    out, _ = call_ok(client, server, "ollama_web_fetch", {"url": "https://e.org"})
    assert len(out["links"]) == 20 and out["links_total"] == 50
    assert len(out["content"]) < 12_100 and "50000 characters, cut" in out["content"]


# --- 5. push: streamed progress, its own allow-list -------------------------------------------------


def test_push_is_refused_by_default_naming_the_setting(fake, client):
    text = error_text(client.call("ollama_push_model", {"model": "me/gemma3:270m"})[0])
    assert "MCP_PUSH_REGISTRIES" in text and "registry.ollama.ai" in text and "none" in text
    assert "/api/push" not in fake.paths()


def test_push_streams_progress_to_an_allowed_registry(fake, start_server):
    fake.models["me/gemma3:270m"] = fake.models["gemma3:270m"]
    server = start_server(push_registries=("registry.ollama.ai",))
    client = server.client()
    client.initialize()
    out, notes = call_ok(client, server, "ollama_push_model", {"model": "me/gemma3:270m"}, progress=True)
    assert fake.bodies("/api/push") == [{"model": "me/gemma3:270m", "stream": True}]
    assert out["status"] == "success" and out["statuses"][0] == "retrieving manifest"
    assert "pushing manifest" in out["statuses"] and out["total_bytes"] == 6000
    progress = [n["params"] for n in notes if n.get("method") == "notifications/progress"]
    assert progress and progress[-1]["message"] == "success"
    assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)
    # a name on another registry, and insecure without MCP_INSECURE_REGISTRIES, are refused before Ollama
    text = error_text(client.call("ollama_push_model", {"model": "evil.example/me/m:1"})[0])
    assert "evil.example" in text and "MCP_PUSH_REGISTRIES" in text
    text = error_text(client.call("ollama_push_model", {"model": "me/gemma3:270m", "insecure": True})[0])
    assert "MCP_INSECURE_REGISTRIES" in text
    assert len(fake.bodies("/api/push")) == 1


def test_push_of_a_model_ollama_lacks_names_it(fake, start_server):
    server = start_server(push_registries=("registry.ollama.ai",))
    client = server.client()
    client.initialize()
    text = error_text(client.call("ollama_push_model", {"model": "me/nope:1"})[0])
    assert "not found" in text


def test_push_runs_as_a_task_like_pull():
    assert ollama_mcp.BUILTIN.tools[[t.name for t in ollama_mcp.BUILTIN.tools].index("ollama_push_model")].task


# --- 6. show's newer fields, bounded ----------------------------------------------------------------


def test_show_returns_the_newer_fields_bounded(fake, client, server):
    fake.newest()
    shown, _ = call_ok(client, server, "ollama_show_model", {"model": CLOUD})
    assert (shown["renderer"], shown["parser"], shown["requires"]) == ("harmony", "harmony", "0.12.0")
    assert shown["capabilities"] == ["completion", "tools", "thinking"]
    shown, _ = call_ok(client, server, "ollama_show_model", {"model": "gemma3:270m"})
    assert shown["tensors"]["count"] == 236 and len(shown["tensors"]["first"]) == 5  # Ollama sends them all
    assert shown["tensors"]["first"][0] == {"name": "output_norm.weight", "type": "F32", "shape": [640]}
    assert shown["projector_info"]["clip.vision.image_size"] == 896
    assert len(json.dumps(shown["tensors"])) < 1000
    assert fake.bodies("/api/show")[-1] == {"model": "gemma3:270m"}


def test_the_new_tools_are_listed_with_their_hints(client):
    response, _ = client.request("tools/list")
    tools = {t["name"]: t for t in response["result"]["tools"]}
    assert len(tools) >= 32
    push = tools["ollama_push_model"]["annotations"]
    assert push["destructiveHint"] is True and push["openWorldHint"] is True and push["readOnlyHint"] is False
    for name in ("ollama_web_search", "ollama_web_fetch"):
        hints = tools[name]["annotations"]
        assert hints["readOnlyHint"] is True and hints["openWorldHint"] is True


def test_read_only_mode_hides_push_but_keeps_the_web_tools(start_server):
    server = start_server(read_only=True)
    client = server.client()
    client.initialize()
    response, _ = client.request("tools/list")
    names = {t["name"] for t in response["result"]["tools"]}
    assert "ollama_push_model" not in names and {"ollama_web_search", "ollama_web_fetch"} <= names


# --- /api/status, and a host without /api/ps ------------------------------------------------------


def test_health_reports_ollamas_cloud_status_and_copes_with_a_host_without_ps(fake, client, server):
    out, _ = call_ok(client, server, "ollama_check_health")
    assert "cloud" not in out  # v0.24.0 has no /api/status
    fake.newest()
    out, _ = call_ok(client, server, "ollama_check_health")
    assert out["cloud"] == {"disabled": False, "source": "none"} and ("GET", "/api/status", None) in fake.requests
    fake.fail("/api/ps", 404, "404 page not found")  # as ollama.com, a cloud host
    out, _ = call_ok(client, server, "ollama_check_health")
    assert out["healthy"] is True and out["models_loaded"] == []
