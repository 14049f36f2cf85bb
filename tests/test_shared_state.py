"""Shared state on Redis (MCP_STATE_URL): two servers in this process that name one real
redis-server are two replicas of one deployment. What one saves, starts, changes or counts,
the other sees. Redis stopped and started again mid-test. Skipped without redis-server
(Debian: apt-get install redis-server) or the redis package (pip install -r requirements-redis.txt)."""

import importlib.util
import io
import json
import shutil
import socket
import subprocess
import time

import pytest
import requests
from test_protocol_stateless import listen, modern

import ollama_mcp
from conftest import INIT, error_text, iter_sse, structured, wait_for
from fake_ollama import FakeOllama

REDIS = shutil.which("redis-server")
pytestmark = [
    pytest.mark.slow,  # a redis-server of its own
    pytest.mark.skipif(REDIS is None, reason="no redis-server (apt-get install redis-server)"),
    pytest.mark.skipif(importlib.util.find_spec("redis") is None, reason="pip install -r requirements-redis.txt"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server of its own on a loopback port; no persistence, or with `aof` an append-only
    file written at every command, so a restart (even after kill()) keeps what it held."""

    def __init__(self, folder, aof=False):
        self.folder, self.port, self.aof = folder, free_port(), aof
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.folder)]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(self.url)
        assert wait_for(lambda: _pings(client), timeout=10), "redis-server did not start"
        return self

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def kill(self):
        """As a crash: no shutdown, nothing saved on the way out."""
        self.proc.kill()
        self.proc.wait(10)


def _pings(client):
    try:
        return client.ping()
    except Exception:
        return False


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def replicas(start_server, redis_server, tmp_path, request):
    """Start `n` replicas on one Redis (a prefix of this test's own), each with its own data dir."""
    prefix = f"t{abs(hash(request.node.name)) % 10**8}:"

    def start(n=2, **overrides):
        return [
            start_server(state_url=redis_server.url, state_prefix=prefix, data_dir=str(tmp_path / f"d{i}"), **overrides)
            for i in range(n)
        ]

    return start


def session_on(server):
    c = server.client()
    c.initialize()
    return c


def on(server, client):
    """The same session (its id) spoken to another replica."""
    other = server.client()
    other.session_id = client.session_id
    return other


def test_a_context_saved_on_one_replica_loads_on_another(replicas):
    a, b = replicas()
    messages = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    saved = structured(session_on(a).call("ollama_save_context", {"session_id": "s1", "messages": messages})[0])
    assert saved["count"] == 2
    loaded = structured(session_on(b).call("ollama_load_context", {"session_id": "s1"})[0])
    assert loaded["messages"] == messages
    more = {"session_id": "s1", "messages": [{"role": "user", "content": "again"}], "mode": "append"}
    assert structured(session_on(b).call("ollama_save_context", more)[0])["count"] == 3
    again = structured(session_on(a).call("ollama_load_context", {"session_id": "s1"})[0])
    assert [m["content"] for m in again["messages"]] == ["hello", "hi", "again"]
    assert session_on(b).call("ollama_clear_context", {"session_id": "s1"})[0]["isError"] is False
    assert "s1" in error_text(session_on(a).call("ollama_load_context", {"session_id": "s1"})[0])


def test_context_limits_hold_for_the_deployment(replicas):
    a, b = replicas(context_max_count=2)
    for i, server in enumerate((a, b)):
        args = {"session_id": f"c{i}", "messages": [{"role": "user", "content": "x"}]}
        assert session_on(server).call("ollama_save_context", args)[0]["isError"] is False
    third = {"session_id": "c2", "messages": [{"role": "user", "content": "x"}]}
    assert "MCP_CONTEXT_MAX_COUNT=2" in error_text(session_on(a).call("ollama_save_context", third)[0])


def test_a_session_opened_on_one_replica_is_served_by_the_others(replicas):
    a, b, c = replicas(3)
    client = session_on(a)
    for server in (b, c, a, b):
        assert structured(on(server, client).call("ollama_list_models")[0])["models"]
    level = on(b, client).request("logging/setLevel", {"level": "error"})[0]
    assert "result" in level
    assert c.mcp.sessions.get(client.session_id).log_level == "error"  # the level set through b
    r = requests.delete(c.url, headers=on(c, client).headers(), timeout=5)
    assert r.status_code in (200, 204), r.text
    gone = on(a, client).post({"jsonrpc": "2.0", "id": 9, "method": "tools/list"})
    assert gone.status_code == 404 and "Session not found" in gone.text


def test_a_call_on_another_replica_is_listed_and_cancelled(replicas, fake):
    a, b = replicas()
    fake.chunk_delay = 0.2
    runner = session_on(a)
    r = runner.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id=41)
    events = iter_sse(r)
    next(events)  # it streams on replica a
    other = session_on(b)
    listing = structured(other.call("ollama_cancel_request")[0])
    assert [(c["request_id"], c["tool"]) for c in listing["calls"]] == [(41, "ollama_generate_stream")]
    started = time.monotonic()
    out = structured(other.call("ollama_cancel_request", {"request_id": 41})[0])
    assert out["cancelled"] is True
    answer = [json.loads(e["data"]) for e in events][-1]
    assert answer["id"] == 41 and answer["result"]["isError"] is True
    assert "ollama_cancel_request" in answer["result"]["content"][0]["text"]
    assert fake.aborted.wait(5) and time.monotonic() - started < 3  # the Ollama request ended
    assert wait_for(lambda: not structured(other.call("ollama_cancel_request")[0])["calls"])


def test_a_cancel_notification_sent_to_another_replica_reaches_the_call(replicas, fake):
    a, b = replicas()
    fake.chunk_delay = 0.2
    client = session_on(a)
    r = client.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id=7)
    events = iter_sse(r)
    next(events)
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
    assert on(b, client).post(note).status_code == 202
    assert fake.aborted.wait(5)
    assert wait_for(lambda: not a.mcp.calls.all(), timeout=5)


def test_listening_on_one_replica_hears_a_copy_made_through_another(replicas):
    a, b = replicas()
    r = listen(b.url, {"resourcesListChanged": True, "resourceSubscriptions": ["ollama://models/copied"]})
    events = iter_sse(r)
    assert json.loads(next(events)["data"])["method"] == "notifications/subscriptions/acknowledged"
    copy = {"name": "ollama_copy_model", "arguments": {"source": "gemma3:270m", "destination": "copied"}}
    assert modern(a.url, "tools/call", copy).json()["result"]["isError"] is False
    got = {json.loads(next(events)["data"])["method"] for _ in range(2)}
    assert got == {"notifications/resources/updated", "notifications/resources/list_changed"}
    r.close()


def test_the_burst_limit_holds_for_the_deployment(replicas):
    servers = replicas(2, rate_limit=1, rate_burst=6)
    answered = refused = 0
    for i in range(12):
        r = modern(servers[i % 2].url, "tools/call", {"name": "ollama_get_version", "arguments": {}})
        answered += r.status_code == 200
        refused += r.status_code == 429
    assert (answered, refused) == (6, 6)


def test_the_per_client_cap_holds_for_the_deployment(replicas, fake):
    a, b = replicas(max_concurrent_per_client=1)
    fake.chunk_delay = 0.2
    r = session_on(a).start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id=3)
    events = iter_sse(r)
    next(events)
    busy = session_on(b).post({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                               "params": {"name": "ollama_get_version", "arguments": {}}})  # fmt: skip
    assert "MCP_MAX_CONCURRENT_PER_CLIENT=1" in busy.text and "across the deployment" in busy.text
    r.close()
    assert wait_for(lambda: not a.mcp.slots.running, timeout=5)
    assert session_on(b).call("ollama_get_version")[0]["isError"] is False  # the slot is free again


def test_a_task_started_on_one_replica_is_read_on_another(replicas, fake):
    a, b = replicas()
    ext = {"io.modelcontextprotocol/tasks": {}}
    meta = {"io.modelcontextprotocol/clientCapabilities": {"extensions": ext}}
    params = {"name": "ollama_pull_model", "arguments": {"model": "tinyllama"}, "_meta": {"task": {}}}
    made = modern(a.url, "tools/call", params, meta=meta).json()["result"]
    assert made["resultType"] == "task", made
    task_id = made["taskId"]

    def status():
        answer = modern(b.url, "tasks/get", {"taskId": task_id}, meta=meta, headers={"Mcp-Name": task_id}).json()
        assert "result" in answer, answer
        return answer["result"]["status"]

    assert wait_for(lambda: status() == "completed", timeout=10)


def test_redis_down_gives_clear_errors_and_readyz_says_so(replicas, redis_server):
    (a,) = replicas(1)
    base = a.url.rsplit("/", 1)[0]
    assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
    redis_server.stop()
    try:
        time.sleep(2.1)  # past /readyz's cache
        ready = requests.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 503 and "shared state" in ready.text
        stateless = modern(a.url, "tools/call", {"name": "ollama_get_version", "arguments": {}}).json()
        assert stateless["result"]["isError"] is False  # what needs no shared state keeps working
        args = {"name": "ollama_load_context", "arguments": {"session_id": "x"}}
        text = modern(a.url, "tools/call", args).json()["result"]["content"][0]["text"]
        assert redis_server.url in text and "does not answer" in text
        init = a.client().post(INIT)
        assert init.status_code == 503 and "sessions are unavailable" in init.text
    finally:
        redis_server.start()
    assert wait_for(lambda: requests.get(f"{base}/readyz", timeout=5).status_code == 200, timeout=10)
    assert session_on(a).call("ollama_get_version")[0]["isError"] is False


def test_the_password_of_the_state_url_is_never_shown(make_config):
    config = make_config(state_url="redis://:hunter2@127.0.0.1:1/0")
    buffer = io.StringIO()
    assert ollama_mcp.run_check(config, out=buffer) == 1
    out = buffer.getvalue()
    assert "hunter2" not in out and ":***@127.0.0.1:1/0" in out and "does not answer" in out


def test_without_the_redis_package_the_setting_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a))
    with pytest.raises(ollama_mcp.ConfigError, match=r"pip install -r requirements-redis.txt"):
        ollama_mcp.load_config(environ={"MCP_STATE_URL": "redis://127.0.0.1:6379/0"}, env_file="")


def test_a_refused_host_hands_the_call_to_another_within_a_second(start_server):
    a, b = FakeOllama().start(), FakeOllama().start()
    try:
        server = start_server(ollama_hosts=(a.url, b.url), ollama_url=a.url)
        c = session_on(server)
        assert c.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})[0]["isError"] is False
        dead = a if a.bodies("/api/generate") else b
        alive, dead_url = b if dead is a else a, dead.url
        dead.stop()
        for host in server.mcp.ollama.members:  # as the kernel does when a process dies: its connections close
            host.client.close()
        started = time.monotonic()
        for _ in range(8):
            assert c.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})[0]["isError"] is False
        assert time.monotonic() - started < 1.5
        assert len(alive.bodies("/api/generate")) >= 8
        base = server.url.rsplit("/", 1)[0]
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
        assert f'ollama_mcp_ollama_host_up{{host="{dead_url}"}} 0' in requests.get(f"{base}/metrics", timeout=5).text
    finally:
        a.stop()
        b.stop()
