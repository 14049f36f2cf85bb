"""docs/deploy.md as written: its nginx configuration (taken from the document, addresses and the
listen line substituted, TLS lines dropped) in front of two `python ollama_mcp.py` replicas, each
with its own data dir, on a real redis-server. Handshake-era sessions survive plain round robin
with MCP_STATE_URL; without it (the old per-process behaviour) they do not. Skipped without
redis-server or nginx (Debian: apt-get install redis-server nginx) or the redis package."""

import importlib.util
import json
import re
import shutil
import socket
import subprocess
import sys

import pytest
from test_protocol_stateless import listen, modern
from test_shared_state import RedisServer, free_port

from conftest import INIT, ROOT, McpHttpClient, error_text, iter_sse, wait_for

pytestmark = [
    pytest.mark.replicas,
    pytest.mark.slow,  # processes: nginx, redis-server, replicas
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server (apt-get install redis-server)"),
    pytest.mark.skipif(shutil.which("nginx") is None, reason="no nginx (apt-get install nginx)"),
    pytest.mark.skipif(importlib.util.find_spec("redis") is None, reason="pip install -r requirements-redis.txt"),
]


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def doc_nginx(listen_port, replica_ports):
    """The first nginx block of docs/deploy.md, pointed at these replicas."""
    block = re.findall(r"```nginx\n(.*?)```", (ROOT / "docs" / "deploy.md").read_text(), re.S)[0]
    block = block.replace("listen 443 ssl;", f"listen 127.0.0.1:{listen_port};")
    lines = [line for line in block.splitlines() if not line.strip().startswith(("ssl_", "server 10.0.0."))]
    at = next(i for i, line in enumerate(lines) if line.startswith("upstream")) + 1
    lines[at:at] = [f"    server 127.0.0.1:{p};" for p in replica_ports]
    return "\n".join(lines)


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path, aof=True).start()
    yield server
    if server.proc.poll() is None:
        server.stop()


@pytest.fixture
def redis_url(redis):
    return redis.url


@pytest.fixture
def deployment(fake, tmp_path):
    """Start n replicas (env added to each) behind the document's nginx; yields nginx's /mcp URL."""
    procs = []

    def start(n=2, **env):
        ports = [free_port() for _ in range(n)]
        for port in ports:
            penv = {"PATH": "/usr/bin:/bin", "MCP_TOOLS_DIR": str(tmp_path / "no-packs"), "LOG_LEVEL": "WARNING"}
            penv["MCP_RATE_LIMIT"] = "0"  # every request comes from nginx's one address (a test sets its own)
            penv.update(MCP_DATA_DIR=str(tmp_path / f"data{len(procs)}"), **env)
            cmd = [sys.executable, str(ROOT / "ollama_mcp.py"), "--host", "127.0.0.1", "--port", str(port)]
            procs.append(subprocess.Popen([*cmd, "--ollama-url", fake.url], env=penv, stderr=subprocess.DEVNULL))
        listen = free_port()
        conf = tmp_path / f"nginx{listen}.conf"
        temp = f"client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;"
        conf.write_text(f"events {{}}\nhttp {{\naccess_log off; {temp}\n{doc_nginx(listen, ports)}\n}}\n")
        run = f"daemon off; pid {tmp_path}/nginx{listen}.pid; error_log {tmp_path}/nginx-error.log;"
        procs.append(subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(conf), "-g", run]))
        for port in [*ports, listen]:
            assert wait_for(lambda port=port: listening(port), timeout=20), f"nothing listens on {port}"
        return f"http://127.0.0.1:{listen}/mcp"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def sessions_served(url, sessions=10, calls=3):
    """How many handshake-era sessions had every one of their calls answered."""
    ok = 0
    for _ in range(sessions):
        client = McpHttpClient(url)
        try:
            client.initialize()
            ok += all(client.call("ollama_get_version")[0]["isError"] is False for _ in range(calls))
        except AssertionError:  # "Session not found" on a replica that did not create it
            pass
    return ok


def test_sessions_survive_the_documented_round_robin_with_shared_state(deployment, redis_url):
    assert sessions_served(deployment(2, MCP_STATE_URL=redis_url)) == 10


def test_without_shared_state_round_robin_loses_sessions(deployment):
    """The "before": per-process sessions behind plain round robin (the doc says: one replica or ip_hash)."""
    served = sessions_served(deployment(2))
    print(f"without MCP_STATE_URL: {served}/10 sessions served through round robin")
    assert served < 10


def burst_answered(url, calls=12):
    """How many of `calls` stateless calls in a row were answered (the others: 429)."""
    params = {"name": "ollama_get_version", "arguments": {}}
    codes = [modern(url, "tools/call", params).status_code for _ in range(calls)]
    assert set(codes) <= {200, 429}, codes
    return codes.count(200)


@pytest.mark.parametrize("shared", [True, False])
def test_the_burst_limit_through_nginx_holds_for_the_deployment_only_with_shared_state(deployment, redis_url, shared):
    # Two replicas, a burst of 6 each, 12 calls round robin: one bucket with Redis, two without.
    env = {"MCP_RATE_LIMIT": "1", "MCP_RATE_BURST": "6"} | ({"MCP_STATE_URL": redis_url} if shared else {})
    answered = burst_answered(deployment(2, **env))
    print(f"MCP_STATE_URL {'set' if shared else 'unset'}: {answered}/12 answered under a burst of 6")
    assert answered == (6 if shared else 12)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_three_replicas_behind_the_documented_nginx_serve_the_official_client(deployment, redis_url, mode):
    # Round robin sends each request to the next replica: the session, the saved context and every
    # call must hold whichever replica answers.
    import anyio
    from mcp import Client

    url = deployment(3, MCP_STATE_URL=redis_url)
    messages = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]

    async def main():
        async with Client(url, mode=mode) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            saved = await client.call_tool("ollama_save_context", {"session_id": f"s-{mode}", "messages": messages})
            loaded = [await client.call_tool("ollama_load_context", {"session_id": f"s-{mode}"}) for _ in range(3)]
            versions = [await client.call_tool("ollama_get_version", {}) for _ in range(6)]
            return tools, saved, loaded, versions

    tools, saved, loaded, versions = anyio.run(main)
    assert "ollama_save_context" in tools and saved.is_error is False
    assert all(r.is_error is False and r.structured_content["messages"] == messages for r in loaded)
    assert all(r.is_error is False for r in versions)


def test_a_call_on_one_replica_is_listed_and_cancelled_through_nginx(deployment, redis_url, fake):
    # The slow stream lands on one replica; the listing and the cancel, round robin, on the others.
    url = deployment(2, MCP_STATE_URL=redis_url)
    fake.chunk_delay = 0.2
    runner = McpHttpClient(url)
    runner.initialize()
    r = runner.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id=41)
    events = iter_sse(r)
    next(events)
    other = McpHttpClient(url)
    other.initialize()
    seen = [other.call("ollama_cancel_request")[0]["structuredContent"]["calls"] for _ in range(2)]
    assert all([c["request_id"] for c in calls] == [41] for calls in seen), seen  # from both replicas
    assert other.call("ollama_cancel_request", {"request_id": 41})[0]["structuredContent"]["cancelled"] is True
    answer = [json.loads(e["data"]) for e in events][-1]
    assert answer["id"] == 41 and "ollama_cancel_request" in answer["result"]["content"][0]["text"]
    assert fake.aborted.wait(5)
    r.close()


def test_gunicorn_with_two_workers_on_shared_state_as_documented(fake, redis_url, tmp_path):
    # The document's command, its address and Redis replaced: sessions survive whichever worker a
    # connection lands on, concurrent calls of one session included, and DELETE ends the session.
    import concurrent.futures
    import os
    import shlex

    pytest.importorskip("gunicorn")
    line = next(
        line for line in (ROOT / "docs" / "deploy.md").read_text().splitlines() if " gunicorn -k gthread -w 2 " in line
    )
    words = shlex.split(line)
    env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-") and w.split("=")[0].isupper())
    command = [w for w in words if not ("=" in w and w.split("=")[0].isupper())]
    port = free_port()
    command = [sys.executable, "-m", *[f"127.0.0.1:{port}" if w == "127.0.0.1:4838" else w for w in command]]
    env |= {"MCP_STATE_URL": redis_url, "OLLAMA_HOST": fake.url, "MCP_DATA_DIR": str(tmp_path / "d")}
    env |= {"MCP_TOOLS_DIR": str(tmp_path / "none"), "LOG_LEVEL": "WARNING", "PATH": os.environ["PATH"]}
    env["MCP_RATE_LIMIT"] = "0"  # ~70 requests from one address would pass the default burst of 60
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: listening(port), timeout=20), "gunicorn did not start"
        url = f"http://127.0.0.1:{port}/mcp"
        assert sessions_served(url) == 10
        client = McpHttpClient(url)
        client.initialize()

        def one(i):
            fresh = McpHttpClient(url)  # a connection of its own: gunicorn may hand it to either worker
            fresh.session_id = client.session_id
            return fresh.call("ollama_get_version", msg_id=100 + i)[0]["isError"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert list(pool.map(one, range(8))) == [False] * 8
        import requests

        assert requests.delete(url, headers=client.headers(), timeout=5).status_code in (200, 204)
        gone = McpHttpClient(url)
        gone.session_id = client.session_id
        assert gone.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_listen_through_nginx_hears_copies_made_through_either_replica(deployment, redis_url):
    # Round robin: the listen lands on one replica, the two copies on the other and on the same one.
    url = deployment(2, MCP_STATE_URL=redis_url)
    uris = ["ollama://models/copy-a", "ollama://models/copy-b"]
    r = listen(url, {"resourceSubscriptions": uris})
    events = iter_sse(r)
    assert json.loads(next(events)["data"])["method"] == "notifications/subscriptions/acknowledged"
    for name in ("copy-a", "copy-b"):
        copy = {"name": "ollama_copy_model", "arguments": {"source": "gemma3:270m", "destination": name}}
        assert modern(url, "tools/call", copy).json()["result"]["isError"] is False
    heard = set()
    for event in events:  # keep-alive comments carry no data
        if "data" in event:
            heard.add(json.loads(event["data"])["params"]["uri"])
        if len(heard) == 2:
            break
    assert heard == set(uris)
    r.close()


def test_the_per_client_cap_through_nginx_holds_for_the_deployment(deployment, redis_url, fake):
    # Every request comes from nginx's address: one client, one slot across both replicas.
    url = deployment(2, MCP_STATE_URL=redis_url, MCP_MAX_CONCURRENT_PER_CLIENT="1")
    fake.chunk_delay = 0.2
    runner = McpHttpClient(url)
    runner.initialize()
    r = runner.start("ollama_generate_stream", {"model": "gemma3:270m", "prompt": "x"}, msg_id=3)
    next(iter_sse(r))
    busy = []
    for i in range(2):  # one lands on each replica
        other = McpHttpClient(url)
        other.initialize()
        busy.append(other.post({"jsonrpc": "2.0", "id": 4 + i, "method": "tools/call",
                                "params": {"name": "ollama_get_version", "arguments": {}}}).text)  # fmt: skip
    assert all("Server busy" in text and "MCP_MAX_CONCURRENT_PER_CLIENT=1" in text for text in busy), busy
    assert any("across the deployment" in text for text in busy), busy  # the replica not running it knew too
    r.close()
    assert fake.aborted.wait(5)
    later = McpHttpClient(url)
    later.initialize()
    assert wait_for(lambda: later.call("ollama_get_version")[0]["isError"] is False, timeout=5)


def test_redis_killed_and_restarted_behind_nginx(deployment, redis, fake):
    # While Redis is gone: what needs it says so, the rest answers. Back (AOF): the session and the
    # saved context are there again, on whichever replica; no replica restarted.
    url = deployment(2, MCP_STATE_URL=redis.url)
    client = McpHttpClient(url)
    client.initialize()
    messages = [{"role": "user", "content": "kept"}]
    assert client.call("ollama_save_context", {"session_id": "k", "messages": messages})[0]["isError"] is False
    redis.kill()
    for _ in range(2):  # each replica
        text = error_text(modern(url, "tools/call", {"name": "ollama_load_context", "arguments":
                          {"session_id": "k"}}).json()["result"])  # fmt: skip
        assert redis.url in text and "does not answer" in text, text
        version = modern(url, "tools/call", {"name": "ollama_get_version", "arguments": {}}).json()
        assert version["result"]["isError"] is False
        assert McpHttpClient(url).post(INIT).status_code == 503
    redis.start()
    loaded = [client.call("ollama_load_context", {"session_id": "k"})[0] for _ in range(2)]
    assert all(r["isError"] is False and r["structuredContent"]["messages"] == messages for r in loaded), loaded
