"""The Ollama client with `responses`: timeouts, retries and error translation."""

import pytest
import requests
import responses

from ollama_mcp import Cancelled, Config, OllamaClient, OllamaError

BASE = "http://ollama.test:11434"


def make_client(**overrides):
    return OllamaClient(Config(**dict({"ollama_url": BASE, "ollama_retries": 2}, **overrides)))


@responses.activate
def test_json_decodes_and_empty_body_is_none():
    responses.get(f"{BASE}/api/version", json={"version": "0.24.0"})
    responses.post(f"{BASE}/api/copy", body=b"")
    client = make_client()
    assert client.json("GET", "/api/version") == {"version": "0.24.0"}
    assert client.json("POST", "/api/copy", {"source": "a", "destination": "b"}) is None


@responses.activate
def test_every_call_has_connect_and_read_timeouts():
    responses.get(f"{BASE}/api/tags", json={"models": []})
    make_client(ollama_connect_timeout=3, ollama_timeout=42).json("GET", "/api/tags")
    assert responses.calls[0].request.req_kwargs["timeout"] == (3, 42)


@responses.activate
def test_connection_refused_is_retried_then_explained():
    responses.get(
        f"{BASE}/api/tags",
        body=requests.ConnectionError("Failed to establish a new connection: [Errno 111] Connection refused"),
    )
    with pytest.raises(OllamaError) as info:
        make_client(ollama_retries=2).json("GET", "/api/tags")
    assert len(responses.calls) == 3
    assert BASE in str(info.value) and "ollama serve" in str(info.value)


@responses.activate
def test_connection_refused_then_success():
    responses.get(f"{BASE}/api/tags", body=requests.ConnectionError("Connection refused"))
    responses.get(f"{BASE}/api/tags", json={"models": []})
    assert make_client().json("GET", "/api/tags") == {"models": []}


@responses.activate
def test_503_on_get_is_retried():
    responses.get(f"{BASE}/api/tags", status=503)
    responses.get(f"{BASE}/api/tags", json={"models": []})
    assert make_client().json("GET", "/api/tags") == {"models": []}
    assert len(responses.calls) == 2


@responses.activate
def test_503_on_post_is_not_retried():
    responses.post(f"{BASE}/api/generate", status=503, json={"error": "server busy"})
    with pytest.raises(OllamaError, match="server busy"):
        make_client().json("POST", "/api/generate", {"model": "m"})
    assert len(responses.calls) == 1


@responses.activate
def test_a_reset_after_sending_is_not_retried():
    responses.post(f"{BASE}/api/generate", body=requests.ConnectionError("Connection reset by peer"))
    with pytest.raises(OllamaError, match="closed the connection"):
        make_client().json("POST", "/api/generate", {"model": "m"})
    assert len(responses.calls) == 1


@responses.activate
def test_read_timeout_names_the_setting():
    responses.post(f"{BASE}/api/generate", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(OllamaError) as info:
        make_client(ollama_timeout=7).json("POST", "/api/generate", {"model": "m"})
    assert "7" in str(info.value) and "OLLAMA_TIMEOUT" in str(info.value)
    assert len(responses.calls) == 1


@responses.activate
def test_connect_timeout_names_the_setting():
    responses.get(f"{BASE}/api/tags", body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(OllamaError, match="OLLAMA_CONNECT_TIMEOUT"):
        make_client(ollama_retries=0).json("GET", "/api/tags")


@responses.activate
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
def test_http_errors_carry_ollamas_text_and_next_step(status, body, words):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    responses.post(f"{BASE}/api/show", status=status, **kwargs)
    with pytest.raises(OllamaError) as info:
        make_client().json("POST", "/api/show", {"model": "x"})
    assert info.value.status == status
    for w in words:
        assert w in str(info.value)


@responses.activate
def test_stream_yields_ndjson_objects_and_sets_stream_true():
    responses.post(
        f"{BASE}/api/generate",
        body=b'{"response":"a","done":false}\n\n{"response":"b","done":true}\n',
        content_type="application/x-ndjson",
    )
    chunks = list(make_client().stream("/api/generate", {"model": "m"}))
    assert [c["response"] for c in chunks] == ["a", "b"]
    assert b'"stream": true' in responses.calls[0].request.body


@responses.activate
def test_stream_error_line_raises():
    responses.post(f"{BASE}/api/pull", body=b'{"status":"pulling"}\n{"error":"model not found"}\n')
    with pytest.raises(OllamaError, match="model not found"):
        list(make_client().stream("/api/pull", {"model": "m"}))


@responses.activate
def test_stream_checks_cancellation_before_each_chunk():
    responses.post(f"{BASE}/api/generate", body=b'{"response":"a"}\n{"response":"b"}\n{"response":"c","done":true}\n')

    class Flag:
        calls = 0

        def cancelled(self):
            self.calls += 1
            return self.calls > 1

    got = []
    with pytest.raises(Cancelled):
        for chunk in make_client().stream("/api/generate", {"model": "m"}, Flag()):
            got.append(chunk)
    assert [c["response"] for c in got] == ["a"]


def test_proxy_variables_are_ignored_for_ollama(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:1")
    with make_client().session() as session:
        assert session.trust_env is False


def test_sessions_are_reused_and_never_shared_at_once():
    client = make_client()
    with client.session() as first, client.session() as second:
        assert first is not second, "a session is lent to one user at a time"
    with client.session() as again:
        assert again in (first, second), "returned sessions (and their connections) are reused"
