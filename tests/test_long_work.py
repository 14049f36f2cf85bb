"""Long work that neither the client nor Ollama can lose: a cancel closes the connection to Ollama at
once, whatever it waits on; a silent wait sends heartbeats that say what it waits for; long tools run
as tasks of the 2026-07-28 extension; a cut prompt is said; shutdown answers; a stream that dies keeps
its text. Real timing against a fake Ollama that stays silent (before its headers, or after them)."""

import json
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

import ollama_mcp
from conftest import ACCEPT, ROOT, error_text, iter_sse, process_env, start_process, structured, wait_for

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
TASKS = {**META, "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}}
STREAM_ARGS = {"model": "gemma3:270m", "prompt": "why is the sky blue? " * 20}


def modern(url, method, params=None, msg_id=1, meta=META, stream=False, name=None, **headers):
    """One stateless-era request with the headers a conforming client sends."""
    params = {**(params or {}), "_meta": {**meta, **(params or {}).get("_meta", {})}}
    h = {"Accept": ACCEPT, "Content-Type": "application/json", "MCP-Protocol-Version": "2026-07-28"}
    h.update({"Mcp-Method": method, **({"Mcp-Name": name} if name else {}), **headers})
    body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return requests.post(url, data=body, headers=h, stream=stream, timeout=30)


def tool_params(name, arguments, token=None):
    params = {"name": name, "arguments": arguments}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return params


@pytest.fixture(params=[True, False], ids=["silent-before-headers", "silent-after-headers"])
def silent(request, fake):
    """The fake says nothing for 30 s before its stream: before its headers too, or after them."""
    fake.silence, fake.silence_before_headers = 30.0, request.param
    return fake


# --- cancellation that does not wait for Ollama ---------------------------------------------------


def answers(response):
    """The JSON-RPC responses among the messages of an SSE stream (its notifications left out)."""
    return [m for m in (json.loads(e["data"]) for e in iter_sse(response) if "data" in e) if "method" not in m]


@pytest.mark.slow
def test_a_cancel_notification_during_silence_closes_ollama_at_once(start_server, silent):
    server = start_server(heartbeat=0.2)  # the stream (and with it the response's headers) starts with a heartbeat
    client = server.client()
    client.initialize()
    r = client.start("ollama_generate_stream", STREAM_ARGS, msg_id=7)
    assert wait_for(lambda: silent.streams_started == 1)
    time.sleep(0.3)  # it waits on Ollama now
    started = time.monotonic()
    client.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}})
    assert silent.aborted.wait(1.0), "the connection to Ollama closed within a second"
    assert silent.aborted_at - started < 1.0
    assert answers(r) == [], "a cancelled call gets no answer"


@pytest.mark.slow
def test_a_stateless_client_closing_its_stream_during_silence_closes_ollama_within_a_second(server, silent):
    r = modern(server.url, "tools/call", tool_params("ollama_generate_stream", STREAM_ARGS, 1), stream=True,
               name="ollama_generate_stream")  # fmt: skip
    assert wait_for(lambda: silent.streams_started == 1)
    time.sleep(0.3)
    started = time.monotonic()
    r.close()
    assert silent.aborted.wait(1.5) and silent.aborted_at - started < 1.0


@pytest.mark.slow
def test_the_cancel_tool_during_silence_closes_ollama_and_the_call_is_answered_within_a_second(start_server, silent):
    server = start_server(heartbeat=0.2)
    first, other = server.client(), server.client()
    first.initialize()
    other.initialize()
    r = first.start("ollama_generate_stream", STREAM_ARGS, msg_id=11)
    assert wait_for(lambda: silent.streams_started == 1)
    time.sleep(0.3)
    started = time.monotonic()
    out = structured(other.call("ollama_cancel_request", {"request_id": 11})[0])
    assert out["cancelled"] is True
    (final,) = answers(r)
    answered = time.monotonic() - started
    assert final["id"] == 11 and "cancelled by ollama_cancel_request" in error_text(final["result"])
    # the fake notes the close on its own thread, maybe just after the answer: wait for it, then time it
    assert answered < 1.0 and silent.aborted.wait(1.5) and silent.aborted_at - started < 1.0


def stdio(fake, tmp_path, *extra):
    env = process_env(tmp_path, OLLAMA_HOST=fake.url, MCP_HEARTBEAT="0.3", **dict(extra))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "ollama_mcp.py"), "--transport", "stdio"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path,
    )  # fmt: skip
    return proc


def send(proc, msg):
    proc.stdin.write((json.dumps(msg) + "\n").encode())
    proc.stdin.flush()


@pytest.mark.slow
def test_a_cancel_over_stdio_during_silence_closes_ollama_at_once(fake, tmp_path):
    fake.silence = 30.0
    proc = stdio(fake, tmp_path)
    try:
        call = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {**tool_params("ollama_generate", STREAM_ARGS), "_meta": META},
        }
        send(proc, call)
        assert wait_for(lambda: fake.streams_started == 1, 10)
        time.sleep(0.3)
        started = time.monotonic()
        send(proc, {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}})
        assert fake.aborted.wait(1.5) and fake.aborted_at - started < 1.0
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()


# --- heartbeats while Ollama is silent -------------------------------------------------------------


def heartbeats(messages):
    return [m["params"] for m in messages if m.get("method") == "notifications/progress"]


@pytest.mark.slow
def test_heartbeats_in_the_handshake_era_say_ollama_reads_the_prompt(start_server, fake):
    fake.silence = 1.6
    server = start_server(heartbeat=0.3)
    c = server.client()
    c.initialize()
    result, notes = c.call("ollama_generate", STREAM_ARGS, progress=True)
    assert result["isError"] is False
    beats = [p for p in heartbeats(notes) if "prompt" in p.get("message", "")]
    assert len(beats) >= 2, notes  # every 0.3 s, give or take the watcher's 0.25 s round
    assert "Ollama is reading the prompt (about 105 tokens" in beats[0]["message"]
    values = [p["progress"] for p in heartbeats(notes)]
    assert values == sorted(set(values)), "progress only ever increases, heartbeats included"


@pytest.mark.slow
def test_a_heartbeat_says_ollama_loads_the_model_when_it_is_not_loaded(start_server, fake):
    fake.silence = 1.0
    fake.route("GET", "/api/ps", lambda start_response, *_: fake._json(start_response, 200, {"models": []}))
    server = start_server(heartbeat=0.3)
    c = server.client()
    c.initialize()
    _, notes = c.call("ollama_generate", STREAM_ARGS, progress=True)
    assert any("Ollama is loading gemma3:270m" in p.get("message", "") for p in heartbeats(notes)), notes


@pytest.mark.slow
def test_a_heartbeat_says_a_call_is_queued_behind_another_for_the_same_model(start_server, fake):
    fake.silence = 1.5
    server = start_server(heartbeat=0.3)
    first, second = server.client(), server.client()
    first.initialize()
    second.initialize()
    threading.Thread(target=lambda: first.call("ollama_generate", STREAM_ARGS), daemon=True).start()
    assert wait_for(lambda: fake.streams_started == 1)
    _, notes = second.call("ollama_generate", STREAM_ARGS, progress=True)
    assert any("queued behind 1 other request(s) for gemma3:270m" in p.get("message", "") for p in heartbeats(notes))


@pytest.mark.slow
def test_heartbeats_in_the_stateless_era(start_server, fake):
    fake.silence = 1.0
    server = start_server(heartbeat=0.3)
    chat = {"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}]}
    r = modern(server.url, "tools/call", tool_params("ollama_chat", chat, "t"), stream=True, name="ollama_chat")
    messages = [json.loads(e["data"]) for e in iter_sse(r) if "data" in e]
    assert len(heartbeats(messages)) >= 2 and messages[-1]["result"]["isError"] is False


@pytest.mark.slow
def test_heartbeats_over_stdio(fake, tmp_path):
    fake.silence = 1.6
    proc = stdio(fake, tmp_path)
    try:
        params = {**tool_params("ollama_generate", STREAM_ARGS), "_meta": {**META, "progressToken": 4}}
        call = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": params}
        send(proc, call)
        lines = []
        while not lines or "result" not in lines[-1]:
            lines.append(json.loads(proc.stdout.readline()))
        assert len([m for m in heartbeats(lines) if "prompt" in m.get("message", "")]) >= 2, lines
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()


@pytest.mark.slow
def test_no_heartbeat_without_a_progress_token(start_server, fake):
    fake.silence = 0.8
    server = start_server(heartbeat=0.2)
    c = server.client()
    c.initialize()
    _, notes = c.call("ollama_generate", STREAM_ARGS)
    assert notes == []


# --- tasks (io.modelcontextprotocol/tasks) -----------------------------------------------------------


def task_get(url, task_id, meta=TASKS, **headers):
    return modern(url, "tasks/get", {"taskId": task_id}, meta=meta, name=task_id, **headers).json()


def test_discover_declares_the_tasks_extension(server):
    result = modern(server.url, "server/discover").json()["result"]
    assert result["capabilities"]["extensions"] == {"io.modelcontextprotocol/tasks": {}}


@pytest.mark.slow
def test_a_pull_runs_as_a_task_that_outlives_its_client_and_is_fetched_later(server, fake):
    fake.chunk_delay = 0.1
    r = modern(server.url, "tools/call", tool_params("ollama_pull_model", {"model": "tinyllama"}), meta=TASKS,
               name="ollama_pull_model")  # fmt: skip
    created = r.json()["result"]
    r.close()  # the client leaves
    assert created["resultType"] == "task" and created["status"] == "working" and created["ttlMs"] is None
    task_id = created["taskId"]
    assert len(task_id) >= 32 and created["pollIntervalMs"] > 0
    assert wait_for(lambda: task_get(server.url, task_id)["result"]["status"] != "working", 10)
    done = task_get(server.url, task_id)["result"]
    assert done["status"] == "completed" and done["resultType"] == "complete"
    assert done["result"]["structuredContent"]["status"] == "success" and done["ttlMs"] > 0
    assert "tinyllama:latest" in fake.models, "the download finished although its client left"


def test_a_task_is_cancelled_by_its_id_and_its_ollama_request_ends(server, fake):
    fake.silence = 30.0
    created = modern(server.url, "tools/call", tool_params("ollama_pull_model", {"model": "tinyllama"}), meta=TASKS,
                     name="ollama_pull_model").json()["result"]  # fmt: skip
    assert wait_for(lambda: fake.streams_started == 1)
    ack = modern(server.url, "tasks/cancel", {"taskId": created["taskId"]}, meta=TASKS, name=created["taskId"])
    assert ack.json()["result"] == {"resultType": "complete", "_meta": ack.json()["result"]["_meta"]}
    assert fake.aborted.wait(1.0)
    assert wait_for(lambda: task_get(server.url, created["taskId"])["result"]["status"] == "cancelled", 3)


@pytest.mark.slow
def test_a_working_task_reports_what_it_waits_for(start_server, fake):
    fake.silence = 2.0
    server = start_server(heartbeat=0.3)
    created = modern(server.url, "tools/call", tool_params("ollama_pull_model", {"model": "tinyllama"}), meta=TASKS,
                     name="ollama_pull_model").json()["result"]  # fmt: skip
    assert wait_for(lambda: "registry" in task_get(server.url, created["taskId"])["result"].get("statusMessage", ""))


def test_tasks_belong_to_their_principal(start_server, fake):
    tokens = ("alice:" + "a" * 24, "bob:" + "b" * 24)
    server = start_server(auth_tokens=tokens)
    alice, bob = ({"Authorization": f"Bearer {t.split(':')[1]}"} for t in tokens)
    created = modern(server.url, "tools/call", tool_params("ollama_pull_model", {"model": "tinyllama"}), meta=TASKS,
                     name="ollama_pull_model", **alice).json()["result"]  # fmt: skip
    theirs = task_get(server.url, created["taskId"], **bob)
    assert theirs["error"]["code"] == -32602 and "not found" in theirs["error"]["message"]
    assert "result" in task_get(server.url, created["taskId"], **alice)


def test_without_the_extension_a_pull_is_an_ordinary_call_and_tasks_methods_need_it(server, fake):
    result = modern(server.url, "tools/call", tool_params("ollama_pull_model", {"model": "tinyllama"}),
                    name="ollama_pull_model").json()["result"]  # fmt: skip
    assert result["resultType"] == "complete" and result["structuredContent"]["status"] == "success"
    refused = modern(server.url, "tasks/get", {"taskId": "x"}, name="x")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == -32021
    assert modern(server.url, "tasks/list", {}).status_code == 404, "2026-07-28 has no tasks/list"


@pytest.mark.slow
def test_a_principal_holds_a_bounded_number_of_tasks_and_a_finished_one_is_kept_for_a_while(start_server, fake):
    server = start_server(max_tasks_per_client=1, task_keep=1.0)
    pull = tool_params("ollama_pull_model", {"model": "tinyllama"})
    created = modern(server.url, "tools/call", pull, meta=TASKS, name="ollama_pull_model").json()["result"]
    second = modern(server.url, "tools/call", pull, msg_id=2, meta=TASKS, name="ollama_pull_model").json()
    assert second["error"]["code"] == -32000 and "MCP_MAX_TASKS_PER_CLIENT=1" in second["error"]["message"]
    assert wait_for(lambda: task_get(server.url, created["taskId"]).get("result", {}).get("status") == "completed")
    assert wait_for(lambda: "error" in task_get(server.url, created["taskId"]), 3), "forgotten after MCP_TASK_KEEP"


def test_a_bad_argument_of_a_task_tool_is_an_ordinary_error_result(server):
    result = modern(server.url, "tools/call", tool_params("ollama_pull_model", {"model": "-rf"}), meta=TASKS,
                    name="ollama_pull_model").json()["result"]  # fmt: skip
    assert result["resultType"] == "complete" and result["isError"] is True


# --- prompts never cut silently ------------------------------------------------------------------------


LONG = {"model": "gemma3:270m", "prompt": "word " * 600, "options": {"num_ctx": 256}}


def test_a_prompt_over_num_ctx_is_said_to_be_cut_with_the_fix(client, fake):
    out = structured(client.call("ollama_generate", LONG)[0])
    assert out["truncated"] is True
    assert out["truncation"]["num_ctx"] == 256 and out["truncation"]["prompt_tokens"] == 256
    assert out["truncation"]["prompt_tokens_before"] == 603
    assert "options.num_ctx" in out["truncation"]["warning"] and "MCP_DEFAULT_NUM_CTX" in out["truncation"]["warning"]
    bodies = fake.bodies("/api/generate")
    assert [b["truncate"] for b in bodies] == [False, True], "asked uncut first, then as Ollama would run it"


def test_a_prompt_that_fits_is_sent_once_and_says_nothing(client, fake):
    out = structured(client.call("ollama_generate", {**LONG, "prompt": "hi"})[0])
    assert "truncated" not in out and len(fake.bodies("/api/generate")) == 1


def test_truncate_false_refuses_a_prompt_over_num_ctx_and_explains(client, fake):
    text = error_text(client.call("ollama_generate", {**LONG, "truncate": False})[0])
    assert "longer than the model's context window (256 tokens)" in text and "options.num_ctx" in text
    assert len(fake.bodies("/api/generate")) == 1


def test_a_chat_whose_history_ollama_cuts_says_so(client, fake):
    messages = [{"role": "user", "content": "word " * 60} for _ in range(10)]
    out = structured(
        client.call("ollama_chat", {"model": "gemma3:270m", "messages": messages, "options": {"num_ctx": 256}})[0]
    )
    assert out["truncated"] is True and out["truncation"]["prompt_tokens"] < 256


def test_default_num_ctx_sets_the_window_of_calls_that_set_none(start_server, fake):
    server = start_server(default_num_ctx=2048)
    c = server.client()
    c.initialize()
    structured(c.call("ollama_generate", {"model": "gemma3:270m", "prompt": "hi"})[0])
    structured(c.call("ollama_generate", {"model": "gemma3:270m", "prompt": "hi", "options": {"num_ctx": 512}})[0])
    assert [b["options"]["num_ctx"] for b in fake.bodies("/api/generate")] == [2048, 512]


# --- shutdown that answers; a stream that dies keeps its text -------------------------------------------


@pytest.mark.slow
def test_sigterm_during_four_streams_answers_all_four(fake, tmp_path):
    fake.chunk_delay = 0.3
    proc, url = start_process(fake, process_env(tmp_path, MCP_SHUTDOWN_GRACE="0.5"), tmp_path)
    answers = [None] * 4

    def stream(i):
        r = modern(url, "tools/call", tool_params("ollama_generate_stream", STREAM_ARGS, i), msg_id=i, stream=True,
                   name="ollama_generate_stream")  # fmt: skip
        answers[i] = [json.loads(e["data"]) for e in iter_sse(r) if "data" in e][-1]

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    assert wait_for(lambda: fake.streams_started == 4)
    time.sleep(0.4)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(10)
    proc.communicate(timeout=10)
    assert proc.returncode == 0
    for i, answer in enumerate(answers):
        assert answer["id"] == i and "the server is stopping" in error_text(answer["result"])
        assert "the text generated so far:\nThe" in error_text(answer["result"])


@pytest.mark.slow
def test_sigterm_lets_calls_that_finish_within_the_grace_period_finish(fake, tmp_path):
    fake.chunk_delay = 0.1
    proc, url = start_process(fake, process_env(tmp_path, MCP_SHUTDOWN_GRACE="5"), tmp_path)
    got = {}

    def stream():
        r = modern(url, "tools/call", tool_params("ollama_generate_stream", STREAM_ARGS, 1), stream=True,
                   name="ollama_generate_stream")  # fmt: skip
        got["answer"] = [json.loads(e["data"]) for e in iter_sse(r) if "data" in e][-1]

    t = threading.Thread(target=stream)
    t.start()
    assert wait_for(lambda: fake.streams_started == 1)
    proc.send_signal(signal.SIGTERM)
    t.join(10)
    proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert got["answer"]["result"]["isError"] is False
    assert got["answer"]["result"]["structuredContent"]["response"] == "".join(fake.tokens)


def test_a_new_call_during_shutdown_is_refused(server):
    server.mcp.stopping.set()
    refused = modern(server.url, "tools/call", tool_params("ollama_list_models", {}), name="ollama_list_models")
    assert refused.status_code == 503 and "stopping" in refused.json()["error"]["message"]


def test_a_stream_ollama_drops_midway_keeps_its_text(client, fake):
    fake.die_after_chunks = 3
    text = error_text(client.call("ollama_generate_stream", STREAM_ARGS, progress=True)[0])
    assert "the text generated so far:\nThe sky is" in text


def test_the_in_process_client_sees_the_same_cancel(make_config, fake):
    fake.silence = 30.0
    mcp = ollama_mcp.McpServer(make_config())
    client = ollama_mcp.InProcessClient(mcp)
    client.initialize()
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(r=client.call_tool("ollama_generate", STREAM_ARGS)))
    worker.start()
    assert wait_for(lambda: fake.streams_started == 1)
    time.sleep(0.2)
    started = time.monotonic()
    mcp.calls.all()[0].cancel(by="a test")
    worker.join(2)
    assert "cancelled by a test" in error_text(outcome["r"]) and time.monotonic() - started < 1.0


def unloads(fake):
    return [b for b in fake.bodies("/api/generate") if b.get("keep_alive") == 0 and not b.get("prompt")]


@pytest.mark.slow
@pytest.mark.parametrize("setting, expected", [(True, 1), (False, 0)])
def test_a_generation_cancelled_while_ollama_reads_its_prompt_unloads_the_model(start_server, fake, setting, expected):
    # With MCP_UNLOAD_ON_CANCEL=true the model of a prompt still being read is unloaded; off by default.
    fake.silence = 30.0
    server = start_server(unload_on_cancel=setting, heartbeat=0.2)
    c = server.client()
    c.initialize()
    c.start("ollama_generate_stream", STREAM_ARGS, msg_id=5)
    assert wait_for(lambda: fake.streams_started == 1)
    c.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}})
    assert wait_for(lambda: len(unloads(fake)) == 1, 2) is bool(expected)
    assert [b["model"] for b in unloads(fake)] == ["gemma3:270m"] * expected


@pytest.mark.slow
def test_a_generation_cancelled_once_tokens_flow_keeps_its_model(client, fake):
    fake.chunk_delay = 0.2
    r = client.start("ollama_generate_stream", STREAM_ARGS, msg_id=6)
    events = iter_sse(r)
    next(events)  # a token came
    client.post({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 6}})
    assert fake.aborted.wait(2)
    time.sleep(0.3)
    assert unloads(fake) == []
