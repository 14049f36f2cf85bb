"""The fake Ollama keeps its contract with the real one: every capture in tests/ollama_captures
(84 requests to a real Ollama v0.24.0, in the order they were made) is replayed against tests/fake_ollama.py.

Each capture is one test. It starts a fresh fake in the state the captured server was in when the
capture began (its three models; the blobs it already held), replays the captures before it in order
(uploads, creates, copies, deletes, loads and unloads change what the later ones see), then sends its own
request and compares the answer:
- the HTTP status and the media type of Content-Type;
- a text body exactly; an empty body (HEAD, copy, delete, blob upload) as empty;
- a JSON error body exactly, error text included;
- another JSON body by its keys, at every depth (each element of a list of objects has the keys of the
  captured elements), and by the values that do not depend on the generated text or the clock:
  those named in VALUES, done_reason "load"/"unload", the names in a list of models, embedding sizes;
- an NDJSON stream by the keys of each chunk and of the done chunk, and the done chunk's VALUES.
Generated text, token counts, timings, timestamps and digests may differ.
"""

import http.client
import json
import re
from pathlib import Path

import pytest

from fake_ollama import FakeOllama

SAMPLES = Path(__file__).resolve().parent / "ollama_captures"
CAPTURES = sorted(SAMPLES.glob("[0-9][0-9]-*.json"))

# Request bodies the captures abbreviate as "<N raw bytes>". The blob's 11 bytes hash to the digest in
# 06's path (07's error quotes that digest as the one it got). 28's 9 bytes were not kept: "{not json" is
# 9 bytes that give its error, an 'n' where an object's first key should start.
RAW_REQUESTS = {
    "06-blob-push-small": b"hello blob\n",
    "07-blob-push-digest-mismatch": b"hello blob\n",
    "28-generate-bad-json": b"{not json",
}

# Keys whose values are the same on any server in the same state.
VALUES = {"version", "status", "done", "model", "role", "object", "capabilities", "system_fingerprint", "index"}
VALUES |= {"rendered_template"}  # the model's template applied to the request's messages

TRUNCATED = re.compile(r"(?s)(.*)\.\.\.\((\d+) (chars|items|lines) total, [a-z ]+\)")


def _capture(path):
    capture = json.loads(path.read_text())
    raw = SAMPLES / "raw" / (path.stem + ".body")
    capture["raw"] = raw.read_bytes() if raw.exists() else None
    return capture


def _request_body(name, body):
    """The bytes that were sent: JSON as captured, strings the index shortened restored to full length."""
    if body is None:
        return None
    if name in RAW_REQUESTS:
        return RAW_REQUESTS[name]

    def restore(value):
        if isinstance(value, dict):
            return {k: restore(v) for k, v in value.items()}
        if isinstance(value, list):
            return [restore(v) for v in value]
        if isinstance(value, str) and (match := TRUNCATED.fullmatch(value)):
            shown, total = match.group(1), int(match.group(2))
            assert match.group(3) == "chars", f"{name}: a shortened list in the request cannot be restored"
            period = next(p for p in range(1, len(shown) + 1) if shown[p:] == shown[:-p] or p == len(shown))
            full = (shown[:period] * (total // period + 1))[:total]
            assert full.startswith(shown), f"{name}: the shortened string does not repeat"
            return full
        return value

    return json.dumps(restore(body)).encode()


def _start_like_the_captured_server(captures):
    """A fake holding what the captured server held before the first capture: the three models of
    13-tags (not the fake's own tool-calling model) and the blobs that 04, 06, 09 and 38 find there
    (06 answered 200, not 201: an earlier run of the capture had uploaded its blob)."""
    fake = FakeOllama()
    fake.models.pop("qwen3:0.6b")
    held = [captures["04-blob-head-exists"]["path"].rsplit("/", 1)[-1]]
    held += captures["09-create-from-files-nonstream"]["request_body"]["files"].values()
    held += captures["38-create-safetensors-stream"]["request_body"]["files"].values()
    for digest in held:
        fake.blobs[digest] = b"(bytes the fake does not read)"
    fake.blobs[captures["06-blob-push-small"]["path"].rsplit("/", 1)[-1]] = RAW_REQUESTS["06-blob-push-small"]
    return fake.start()


def _send(connection, name, capture):
    """(status, media type, body bytes) for the capture's request."""
    body = _request_body(name, capture.get("request_body"))
    headers = {}
    if body is not None:
        headers["Content-Type"] = "application/octet-stream" if name in RAW_REQUESTS else "application/json"
    connection.request(capture["method"], capture["path"], body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    return response.status, (response.getheader("Content-Type") or "").split(";")[0].strip(), data


def _listed(entries):
    return [e for e in entries if not (isinstance(e, str) and TRUNCATED.fullmatch(e))]


def _same_shape(real, fake, where, values=True):
    """`fake` has the keys of `real` at every depth and, outside lists (whose order may differ), the same
    VALUES."""
    if isinstance(real, dict):
        assert isinstance(fake, dict), f"{where}: {fake!r} is not an object"
        assert sorted(fake) == sorted(real), f"{where}: keys {sorted(fake)} != captured {sorted(real)}"
        for key, value in real.items():
            _same_shape(value, fake[key], f"{where}.{key}", values)
            if not values:
                continue
            if key in VALUES or (key == "done_reason" and value in ("load", "unload")):
                assert fake[key] == value, f"{where}.{key}: {fake[key]!r} != captured {value!r}"
            if key in ("models", "data") and isinstance(value, list):  # the models listed, by name
                names = sorted(_names(_listed(value)))
                assert sorted(_names(fake[key])) == names, f"{where}.{key}: models {_names(fake[key])} != {names}"
            if key in ("embeddings", "embedding") and isinstance(value, list):
                assert _sizes(fake[key]) == _sizes(value), f"{where}.{key}: sizes differ"
    elif isinstance(real, list):
        objects = [e for e in _listed(real) if isinstance(e, dict)]
        if objects:
            assert isinstance(fake, list), f"{where}: {fake!r} is not a list"
            for i, element in enumerate(fake):
                _same_shape(objects[min(i, len(objects) - 1)], element, f"{where}[{i}]", values=False)


def _names(entries):
    return [e.get("name") or e.get("id") for e in entries if isinstance(e, dict) and ("name" in e or "id" in e)]


def _sizes(vectors):
    return (
        [len(v) if isinstance(v, list) else None for v in vectors]
        if vectors and isinstance(vectors[0], list)
        else len(vectors)
    )


def _ndjson(data):
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def captures():
    return [(path.stem, _capture(path)) for path in CAPTURES]


@pytest.mark.skipif(not CAPTURES, reason=f"no captures at {SAMPLES}")
@pytest.mark.parametrize("name", [path.stem for path in CAPTURES] or ["none"])
def test_the_fake_answers_the_capture_as_ollama_did(name, captures):
    index = next(i for i, (n, _) in enumerate(captures) if n == name)
    capture = captures[index][1]
    fake = _start_like_the_captured_server(dict(captures))
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        for earlier_name, earlier in captures[:index]:
            _send(connection, earlier_name, earlier)
        status, media_type, data = _send(connection, name, capture)
    finally:
        connection.close()
        fake.stop()

    assert status == capture["status"], data[:300]
    real_type = (capture["response_headers"].get("Content-Type") or "").split(";")[0].strip()
    assert media_type == real_type
    kind = capture["body_kind"]
    if kind == "empty":
        assert data == b""
    elif kind == "text":
        assert data.decode() == capture["response"]
    elif kind == "json":
        real = json.loads(capture["raw"]) if capture["raw"] is not None else capture["response"]
        body = json.loads(data)
        if "error" in real:
            assert body == real
        else:
            _same_shape(real, body, "body")
    else:
        assert kind == "ndjson", kind
        real = _ndjson(capture["raw"]) if capture["raw"] is not None else _listed(capture["response"])
        chunks = _ndjson(data)
        assert chunks, "an empty stream"
        kinds = {tuple(sorted(chunk)): chunk for chunk in reversed(real[:-1])}
        for i, chunk in enumerate(chunks[:-1]):
            assert tuple(sorted(chunk)) in kinds, f"chunk {i}: keys {sorted(chunk)} not among {list(kinds)}"
            _same_shape(kinds[tuple(sorted(chunk))], chunk, f"chunk {i}", values=False)
            assert chunk.get("done") in (None, False), f"chunk {i} before the last says done"
        _same_shape(real[-1], chunks[-1], "done chunk")
