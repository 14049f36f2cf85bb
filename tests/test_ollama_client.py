"""The Ollama client over real sockets: the fake Ollama, a closed port, a server that hangs up;
timeouts, retries, connection reuse and error translation."""

import http.client
import socket
import threading
import time

import pytest
import urllib3.util.connection

from ollama_mcp import Cancelled, Config, OllamaClient, OllamaError, ToolError


@pytest.fixture
def make_client(fake):
    def make(url=None, **overrides):
        return OllamaClient(Config(**dict({"ollama_url": url or fake.url, "ollama_retries": 2}, **overrides)))

    return make


@pytest.fixture
def connects(monkeypatch):
    """Every connection the client opens, in order; `fail` makes the next ones raise an error."""
    made, failures = [], []
    original = urllib3.util.connection.create_connection

    def create_connection(address, *args, **kwargs):
        made.append(address)
        if failures:
            raise failures.pop(0)
        return original(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    create_connection.made, create_connection.fail = made, failures.extend
    return create_connection


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_json_decodes_and_empty_body_is_none(make_client):
    client = make_client()
    assert client.json("GET", "/api/version") == {"version": "0.24.0"}
    assert client.json("POST", "/api/copy", {"source": "gemma3:270m", "destination": "copied"}) is None


def test_sequential_calls_share_one_connection_and_parallel_streams_do_not(make_client, connects, fake):
    fake.chunk_delay = 0.02  # the streams are still running when one is left
    client = make_client()
    for _ in range(5):
        client.json("GET", "/api/tags")
    assert len(connects.made) == 1, "keep-alive: the connection is reused"
    first = client.stream("/api/generate", {"model": "gemma3:270m", "prompt": "a"})
    second = client.stream("/api/generate", {"model": "gemma3:270m", "prompt": "b"})
    next(first), next(second)
    assert len(connects.made) == 2, "a connection is lent to one call at a time"
    first.close()  # left early: its connection is closed, so Ollama stops generating
    assert fake.aborted.wait(5)
    assert list(second)[-1]["done"] is True
    assert client.json("GET", "/api/tags")["models"]


def test_a_request_with_a_body_leaves_in_one_write(make_client, monkeypatch):
    writes = []
    original = http.client.HTTPConnection.send
    monkeypatch.setattr(
        http.client.HTTPConnection, "send", lambda conn, data: writes.append(data) or original(conn, data)
    )
    client = make_client()
    assert client.json("POST", "/api/show", {"model": "gemma3:270m"})["details"]
    assert (
        len(writes) == 1 and writes[0].startswith(b"POST /api/show ") and writes[0].endswith(b'{"model":"gemma3:270m"}')
    )
    assert client.json("GET", "/api/tags") and len(writes) == 2


def test_read_timeout_names_the_setting_and_is_not_retried(make_client, fake):
    fake.latency = 1.0
    started = time.monotonic()
    with pytest.raises(OllamaError) as info:
        make_client(ollama_timeout=0.2).json("POST", "/api/generate", {"model": "gemma3:270m", "stream": False})
    assert time.monotonic() - started < 0.9
    assert "0.2 s" in str(info.value) and "OLLAMA_TIMEOUT" in str(info.value)
    assert fake.paths() == ["/api/generate"]


def test_connect_timeout_names_the_setting(make_client, connects):
    connects.fail([TimeoutError("timed out")] * 3)
    with pytest.raises(OllamaError, match="within 3.0 s .OLLAMA_CONNECT_TIMEOUT"):
        make_client(ollama_connect_timeout=3.0).json("GET", "/api/tags")
    assert len(connects.made) == 3, "nothing reached Ollama: retried"


def test_connection_refused_is_retried_then_explained(make_client, connects):
    url = closed_port()
    with pytest.raises(OllamaError) as info:
        make_client(url, ollama_retries=2).json("GET", "/api/tags")
    assert len(connects.made) == 3
    assert f"not reachable at {url} (connection refused)" in str(info.value) and "ollama serve" in str(info.value)


def test_connection_refused_then_success(make_client, connects):
    connects.fail([ConnectionRefusedError(111, "Connection refused")])
    assert make_client().json("GET", "/api/version") == {"version": "0.24.0"}
    assert len(connects.made) == 2


def test_a_name_that_does_not_resolve_says_so(make_client, connects):
    connects.fail([socket.gaierror(-2, "Name or service not known")] * 3)
    with pytest.raises(OllamaError, match="does not resolve.*OLLAMA_HOST"):
        make_client().json("GET", "/api/tags")


def test_503_on_get_is_retried(make_client, fake):
    fake.fail("/api/tags", 503, {"error": "busy"})
    assert make_client().json("GET", "/api/tags")["models"]
    assert fake.paths() == ["/api/tags", "/api/tags"]


def test_503_on_post_is_not_retried(make_client, fake):
    fake.fail("/api/generate", 503, {"error": "server busy"})
    with pytest.raises(OllamaError, match="server busy") as info:
        make_client().json("POST", "/api/generate", {"model": "gemma3:270m"})
    assert info.value.status == 503
    assert fake.paths() == ["/api/generate"]


def test_a_hang_up_after_sending_is_not_retried(make_client):
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def hang_up():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn.recv(65536))
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises(OllamaError, match="closed the connection"):
            make_client(f"http://127.0.0.1:{listener.getsockname()[1]}").json("POST", "/api/generate", {"model": "m"})
    finally:
        listener.close()
    assert len(accepted) == 1 and accepted[0].startswith(b"POST /api/generate ")


@pytest.mark.parametrize(
    "status, body, words",
    [
        (404, {"error": "model 'x' not found"}, ["model 'x' not found", "ollama_pull_model"]),
        (501, {"error": "this model does not support embeddings"}, ["does not support embeddings", "embedding model"]),
        (400, {"error": "invalid model name"}, ["invalid model name"]),
        (404, "404 page not found", ["404 page not found"]),
        (500, {"error": {"message": "openai style", "type": "api_error"}}, ["openai style"]),
    ],
)
def test_http_errors_carry_ollamas_text_and_next_step(make_client, fake, status, body, words):
    fake.fail("/api/show", status, body)
    client = make_client()
    with pytest.raises(OllamaError) as info:
        client.json("POST", "/api/show", {"model": "x"})
    assert info.value.status == status
    for w in words:
        assert w in str(info.value)
    assert client.json("GET", "/api/version"), "the connection is usable after an error"


def test_stream_yields_ndjson_objects_and_sets_stream_true(make_client, fake):
    chunks = list(make_client().stream("/api/generate", {"model": "gemma3:270m", "prompt": "hi"}))
    assert "".join(c["response"] for c in chunks) == "".join(fake.tokens)
    assert chunks[-1]["done"] is True
    assert fake.bodies("/api/generate")[-1]["stream"] is True


def test_stream_error_line_raises(make_client, fake):
    def broken_pull(start_response, body, environ, raw):
        start_response("200 OK", [("Content-Type", "application/x-ndjson")])
        return [b'{"status":"pulling manifest"}\n', b'{"error":"pull model manifest: file does not exist"}\n']

    fake.route("POST", "/api/pull", broken_pull)
    with pytest.raises(OllamaError, match="file does not exist"):
        list(make_client().stream("/api/pull", {"model": "nothing"}))


def test_stream_checks_cancellation_before_each_chunk(make_client, fake):
    class Flag:  # what the client asks of a call: cancelled after its first chunk
        calls = 0

        def check(self):
            self.calls += 1
            if self.calls > 1:
                raise Cancelled()

        def on_cancel(self, closer):
            return lambda: None

        def waiting_on(self, client, path, body):
            pass

        def heard(self):
            pass

    fake.chunk_delay = 0.02
    got = []
    with pytest.raises(Cancelled):
        for chunk in make_client().stream("/api/generate", {"model": "gemma3:270m", "prompt": "hi"}, Flag()):
            got.append(chunk)
    assert [c["response"] for c in got] == [fake.tokens[0]]
    assert fake.aborted.wait(5), "the cancelled stream's connection was closed"


def test_proxy_variables_are_ignored_for_ollama(make_client, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://proxy.invalid:1")
    assert make_client().json("GET", "/api/version") == {"version": "0.24.0"}


def test_a_number_json_cannot_carry_is_refused_before_sending(make_client, fake):
    with pytest.raises(ToolError, match="NaN or Infinity"):
        make_client().json("POST", "/api/generate", {"model": "m", "options": {"temperature": float("nan")}})
    assert fake.paths() == []


def test_close_drops_idle_connections_and_the_client_stays_usable(make_client, connects):
    client = make_client()
    client.json("GET", "/api/version")
    client.close()
    assert client.json("GET", "/api/version") == {"version": "0.24.0"}
    assert len(connects.made) == 2, "the idle connection was closed: a new one was made"
