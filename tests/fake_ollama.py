"""A fake Ollama v0.24.0: a real HTTP server on an ephemeral port for the tests.

Its answers follow the captures in ../shared/ollama-api-samples (the bodies it serves verbatim
are copied into tests/ollama_samples/): the same field names, status codes, empty bodies,
NDJSON streams and error texts. It records every request, streams with a configurable delay
per chunk, and notices when a client closes a stream early (as Ollama does, it then stops).

    fake = FakeOllama().start()
    fake.url                      # http://127.0.0.1:PORT
    fake.chunk_delay = 0.05       # seconds between streamed chunks
    fake.fail("/api/tags", 500, {"error": "boom"})
    fake.raw("GET", "/api/tags", b"...", headers=[("Content-Length", "3")], delay=0.5)  # hostile bytes
    fake.requests                 # [(method, path, json body or None), ...]
    fake.aborted.wait(2)          # set when a client closed a stream before the end
"""

import copy
import hashlib
import http.server
import io
import json
import socket
import threading
import time
import urllib.parse
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "ollama_samples"
VERSION = "0.24.0"


def _sample(name):
    return json.loads((SAMPLES / name).read_text())


def _full_name(name):
    """Ollama's normal form: a missing tag is ':latest'."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


class _Model:
    def __init__(self, tag_entry, show):
        self.tag = tag_entry
        self.show = show

    @property
    def capabilities(self):
        return self.show.get("capabilities") or []


def _default_models():
    tags = {_full_name(m["name"]): m for m in _sample("13-tags.json")["models"]}
    models = {
        "gemma3:270m": _Model(tags["gemma3:270m"], _sample("15-show.json")),
        "gemma3-270m-assistant:latest": _Model(tags["gemma3-270m-assistant:latest"], _sample("17-show-derived.json")),
        "all-minilm:latest": _Model(tags["all-minilm:latest"], _sample("39-show-embedding-model.json")),
    }
    # A model with tools and thinking, which the captured server did not have.
    thinker_tag = copy.deepcopy(tags["gemma3:270m"])
    thinker_tag.update(name="qwen3:0.6b", model="qwen3:0.6b", size=522653767, digest="7df6b6e09427" + "0" * 52)
    thinker_tag["details"].update(
        family="qwen3", families=["qwen3"], parameter_size="751.63M", quantization_level="Q4_K_M"
    )
    thinker_show = copy.deepcopy(_sample("15-show.json"))
    thinker_show["capabilities"] = ["completion", "tools", "thinking"]
    thinker_show["details"] = thinker_tag["details"]
    models["qwen3:0.6b"] = _Model(thinker_tag, thinker_show)
    return models


def pieces(data, size):
    """`data` cut into pieces of `size` bytes (the last may be shorter), for `FakeOllama.raw`."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def _paced(body, delay):
    """Yield the pieces of `body`, waiting `delay` seconds before each."""
    for piece in body:
        if delay:
            time.sleep(delay)
        yield piece


class FakeOllama:
    """The fake server. Attributes below may be changed by a test at any time."""

    def __init__(self):
        self.models = _default_models()
        self.blobs = {}  # digest -> bytes
        self.loaded = {}  # name -> expires_at
        self.tokens = ["The", " sky", " is", " blue", " because", " of", " Rayleigh", " scattering", "."]
        self.thinking_tokens = ["Let", " me", " think", "."]
        self.chunk_delay = 0.0  # seconds before each streamed chunk
        self.latency = 0.0  # seconds before any answer
        self.pullable = {"tinyllama": 3}  # name -> number of layers a pull streams
        self.tool_calls = None  # a tool call list the next chat with tools answers with
        self.requests = []
        self.streams_started = 0
        self.streams_finished = 0
        self.streams_aborted = 0
        self.aborted = threading.Event()
        self.die_after_chunks = None  # drop the connection after this many chunks (once)
        self._failures = {}
        self._routes = {}  # (method, path) -> handler set by route()
        self._lock = threading.Lock()
        self._server = None

    # --- control -------------------------------------------------------------------------

    def start(self, port=0):
        self._server = _serve(self, port)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def open_streams(self):
        """Streams started and neither finished nor closed by the client."""
        return self.streams_started - self.streams_finished - self.streams_aborted

    @property
    def port(self):
        return self._server.port

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def route(self, method, path, handler):
        """From now on answer `method path` with `handler(start_response, body, environ, raw)`;
        `answer(...)` gives the usual answer, for a handler that changes only some requests."""
        self._routes[(method, path)] = handler

    def answer(self, method, path, start_response, body, environ, raw):
        """The fake's usual answer to `method path`."""
        return self.ROUTES[(method, path)](self, start_response, body, environ, raw)

    def raw(self, method, path, body=b"", status=200, headers=(), delay=0.0):
        """From now on answer `method path` with exactly `status`, `headers` (name, value pairs) and
        `body`, whatever was asked: a misbehaving Ollama. `body` is bytes, or a function returning an
        iterable of byte pieces (called for each request, so the route serves any number of them);
        each piece is sent as it comes, `delay` seconds before each (a trickle: `pieces(data, 1)`
        with a delay). Without a Content-Length in `headers` the pieces go out chunked, one HTTP
        chunk each."""

        def handler(start_response, _body, _environ, _raw):
            start_response(f"{status} X", list(headers))
            return _paced([body] if isinstance(body, bytes) else body(), delay)

        self.route(method, path, handler)

    def fail(self, path, status, body, times=1):
        """The next `times` requests to `path` answer `status` with `body` (dict -> JSON, str -> text)."""
        self._failures[path] = [status, body, times]

    def paths(self, method=None):
        return [p for m, p, _ in self.requests if method is None or m == method]

    def bodies(self, path):
        return [b for _, p, b in self.requests if p == path]

    # --- WSGI ----------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        raw = (
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0) or -1)
            if method in ("POST", "DELETE", "PUT")
            else b""
        )
        body = None
        if raw and not path.startswith("/api/blobs/"):
            try:
                body = json.loads(raw)
            except ValueError as e:
                return self._json(
                    start_response, 400, {"error": f"invalid character looking for beginning of value: {e}"}
                )
        with self._lock:
            self.requests.append((method, path, body))
        if self.latency:
            time.sleep(self.latency)
        failure = self._failures.get(path)
        if failure:
            failure[2] -= 1
            if failure[2] <= 0:
                del self._failures[path]
            status, payload = failure[0], failure[1]
            if isinstance(payload, str):
                return self._text(start_response, status, payload)
            return self._json(start_response, status, payload)
        if (method, path) in self._routes:
            return self._routes[(method, path)](start_response, body if body is not None else {}, environ, raw)
        route = self.ROUTES.get((method, path))
        if route is None and path.startswith("/api/blobs/sha256:") and method in ("HEAD", "POST"):
            route = FakeOllama._blob
        if route is None:
            return self._text(start_response, 404, "404 page not found")
        return route(self, start_response, body if body is not None else {}, environ, raw)

    # --- responses -------------------------------------------------------------------------

    @staticmethod
    def _json(start_response, status, payload, head=False):
        data = json.dumps(payload).encode()
        start_response(
            f"{status} X", [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))]
        )
        return [b""] if head else [data]

    @staticmethod
    def _text(start_response, status, text):
        data = text.encode()
        start_response(f"{status} X", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
        return [data]

    @staticmethod
    def _empty(start_response, status=200):
        start_response(f"{status} X", [("Content-Length", "0")])
        return [b""]

    def _ndjson(self, start_response, chunks):
        """Stream `chunks` (an iterable of dicts) with the configured delay; notice an early close."""
        start_response("200 OK", [("Content-Type", "application/x-ndjson")])
        fake = self
        with self._lock:
            self.streams_started += 1

        def body():
            finished = False
            sent = 0
            try:
                for chunk in chunks:
                    if fake.chunk_delay:
                        time.sleep(fake.chunk_delay)
                    if fake.die_after_chunks is not None and sent >= fake.die_after_chunks:
                        fake.die_after_chunks = None
                        raise ConnectionAbortedError("fake Ollama died mid-stream")
                    sent += 1
                    yield (json.dumps(chunk) + "\n").encode()
                finished = True
            finally:
                with fake._lock:
                    if finished:
                        fake.streams_finished += 1
                    else:
                        fake.streams_aborted += 1
                if not finished:
                    fake.aborted.set()

        return body()

    def _model(self, name):
        return self.models.get(_full_name(name or ""))

    # --- routes --------------------------------------------------------------------------

    def _root(self, start_response, body, environ, raw):
        return self._text(start_response, 200, "Ollama is running")

    def _version(self, start_response, body, environ, raw):
        return self._json(start_response, 200, {"version": VERSION}, head=environ["REQUEST_METHOD"] == "HEAD")

    def _tags(self, start_response, body, environ, raw):
        return self._json(
            start_response,
            200,
            {"models": [m.tag for m in self.models.values()]},
            head=environ["REQUEST_METHOD"] == "HEAD",
        )

    def _ps(self, start_response, body, environ, raw):
        models = []
        for name, expires in self.loaded.items():
            model = self._model(name)
            if model is None:
                continue
            entry = {k: model.tag[k] for k in ("name", "model", "digest", "details")}
            entry.update(size=model.tag["size"] + 224685012, expires_at=expires, size_vram=0, context_length=4096)
            models.append(entry)
        return self._json(start_response, 200, {"models": models})

    def _show(self, start_response, body, environ, raw):
        name = body.get("model") or body.get("name") or ""
        model = self._model(name)
        if model is None:
            return self._json(start_response, 404, {"error": f"model '{_full_name(name)}' not found"})
        return self._json(start_response, 200, model.show)

    def _check_generation(self, body, kind):
        """Ollama's checks before generating: (status, error) or None."""
        name = body.get("model") or ""
        model = self._model(name)
        if model is None:
            return 404, f"model '{name}' not found"
        caps = model.capabilities
        if kind == "generate" and not body.get("prompt") and body.get("keep_alive") in (0, "0", "0s"):
            return None  # an unload: real Ollama unloads any model this way, embedding models too
        if "completion" not in caps:
            return 400, f'"{name}" does not support {kind}'
        if body.get("think") and "thinking" not in caps:
            return 400, f'"{name}" does not support thinking'
        if body.get("tools") and "tools" not in caps:
            return 400, f"registry.ollama.ai/library/{_full_name(name)} does not support tools"
        if body.get("suffix") and "insert" not in caps:
            return 400, f"registry.ollama.ai/library/{_full_name(name)} does not support insert"
        if body.get("images") and "vision" not in caps:
            return (
                500,
                "Failed to create new sequence: failed to process inputs: this model is missing data required for "
                "image input",
            )
        if body.get("raw") and (body.get("context") or body.get("system") or body.get("template")):
            return 400, "raw mode does not support template, system, or context"
        options = body.get("options") or {}
        for key in ("num_predict", "num_ctx", "top_k", "seed"):
            if key in options and not isinstance(options[key], int):
                return 500, f'option "{key}" must be of type integer'
        return None

    def _generation_tokens(self, body, empty):
        """The tokens to send, and the done_reason."""
        if empty:
            return [], "load"
        options = body.get("options") or {}
        limit = options.get("num_predict", len(self.tokens))
        tokens = list(self.tokens)
        if limit is not None and 0 <= limit < len(tokens):
            return tokens[:limit], "length"
        return tokens, "stop"

    def _final_stats(self, count):
        return {
            "total_duration": 40_000_000 + count * 20_000_000,
            "load_duration": 10_000_000,
            "prompt_eval_count": 14,
            "prompt_eval_duration": 5_000_000,
            "eval_count": count,
            "eval_duration": count * 20_000_000,
        }

    def _generate(self, start_response, body, environ, raw):
        problem = self._check_generation(body, "generate")
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        name = body["model"]
        if body.get("keep_alive") in (0, "0", "0s"):
            self.loaded.pop(_full_name(name), None)
            final = {"model": name, "created_at": _now(), "response": "", "done": True, "done_reason": "unload"}
            return self._json(start_response, 200, final)
        self.loaded[_full_name(name)] = "2026-11-24T21:18:24.2783478Z"
        tokens, reason = self._generation_tokens(body, not body.get("prompt"))
        thinking = list(self.thinking_tokens) if body.get("think") and tokens else []

        def chunks():
            for t in thinking:
                yield {"model": name, "created_at": _now(), "response": "", "thinking": t, "done": False}
            for t in tokens:
                yield {"model": name, "created_at": _now(), "response": t, "done": False}
            final = {"model": name, "created_at": _now(), "response": "", "done": True, "done_reason": reason}
            if tokens:
                final.update(self._final_stats(len(tokens)))
                if not body.get("raw"):
                    final["context"] = [105, 2364, 107] + list(range(len(tokens)))
            yield final

        if body.get("stream", True) is False:
            parts = list(chunks())
            final = parts[-1]
            final["response"] = "".join(p["response"] for p in parts)
            if thinking:
                final["thinking"] = "".join(thinking)
            return self._json(start_response, 200, final)
        return self._ndjson(start_response, chunks())

    def _chat(self, start_response, body, environ, raw):
        problem = self._check_generation(body, "chat")
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        name = body["model"]
        self.loaded[_full_name(name)] = "2026-11-24T21:18:24.2783478Z"
        tokens, reason = self._generation_tokens(body, not body.get("messages"))
        thinking = list(self.thinking_tokens) if body.get("think") and tokens else []
        tool_calls = self.tool_calls if body.get("tools") else None

        def chunks():
            for t in thinking:
                yield {
                    "model": name,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": "", "thinking": t},
                    "done": False,
                }
            if tool_calls:
                yield {
                    "model": name,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": "", "tool_calls": tool_calls},
                    "done": False,
                }
            else:
                for t in tokens:
                    yield {
                        "model": name,
                        "created_at": _now(),
                        "message": {"role": "assistant", "content": t},
                        "done": False,
                    }
            final = {
                "model": name,
                "created_at": _now(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": reason,
            }
            if tokens:
                final.update(self._final_stats(len(tokens)))
            yield final

        if body.get("stream", True) is False:
            parts = list(chunks())
            final = parts[-1]
            final["message"]["content"] = "".join(p["message"]["content"] for p in parts)
            return self._json(start_response, 200, final)
        return self._ndjson(start_response, chunks())

    def _embedding_model(self, name):
        model = self._model(name)
        if model is None:
            return None, (404, f'model "{name}" not found, try pulling it first')
        if "embedding" not in model.capabilities:
            return None, (501, "this model does not support embeddings")
        return model, None

    @staticmethod
    def _vector(text, dims):
        """A deterministic unit vector for `text`."""
        seed = hashlib.sha256(text.encode()).digest()
        values = [(seed[i % 32] - 127.5) / 127.5 for i in range(dims)]
        norm = sum(v * v for v in values) ** 0.5 or 1.0
        return [round(v / norm, 8) for v in values]

    def _embed(self, start_response, body, environ, raw):
        name = body.get("model") or ""
        model, problem = self._embedding_model(name)
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        if not inputs:
            return self._json(start_response, 200, {"model": name, "embeddings": []})
        dims = body.get("dimensions") or 384
        if body.get("truncate") is False and any(len(t.split()) > 512 for t in inputs):
            return self._json(start_response, 400, {"error": "the input length exceeds the context length"})
        return self._json(
            start_response,
            200,
            {
                "model": name,
                "embeddings": [self._vector(t, dims) for t in inputs],
                "total_duration": 14_000_000,
                "load_duration": 1_000_000,
                "prompt_eval_count": sum(len(t.split()) + 2 for t in inputs),
            },
        )

    def _embeddings_legacy(self, start_response, body, environ, raw):
        name = body.get("model") or ""
        model, problem = self._embedding_model(name)
        if problem:
            return self._json(start_response, 500 if problem[0] == 501 else problem[0], {"error": problem[1]})
        prompt = body.get("prompt") or ""
        return self._json(start_response, 200, {"embedding": self._vector(prompt, 384) if prompt else []})

    def _pull(self, start_response, body, environ, raw):
        name = body.get("model") or body.get("name") or ""
        base = name.split(":")[0]
        if base not in self.pullable:
            error = (
                f'pull model manifest: Get "https://registry.ollama.ai/v2/library/{base}/manifests/latest": '
                "dial "
                "tcp: lookup registry.ollama.ai on 10.255.255.53:53: no such host"
            )
            return self._json(start_response, 500, {"error": error})
        layers = [
            (f"sha256:{hashlib.sha256(f'{name}{i}'.encode()).hexdigest()}", 1000 * (i + 1))
            for i in range(self.pullable[base])
        ]

        def chunks():
            yield {"status": "pulling manifest"}
            for digest, total in layers:
                for done in (0, total // 2, total):
                    yield {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": done}
            yield {"status": "verifying sha256 digest"}
            yield {"status": "writing manifest"}
            source = self.models["gemma3:270m"]
            tag = copy.deepcopy(source.tag)
            tag.update(name=_full_name(name), model=_full_name(name))
            self.models[_full_name(name)] = _Model(tag, copy.deepcopy(source.show))
            yield {"status": "success"}

        if body.get("stream", True) is False:
            list(chunks())
            return self._json(start_response, 200, {"status": "success"})
        return self._ndjson(start_response, chunks())

    def _copy(self, start_response, body, environ, raw):
        source, destination = body.get("source") or "", body.get("destination") or ""
        if not destination:
            return self._json(start_response, 400, {"error": f'destination "{destination}" is invalid'})
        model = self._model(source)
        if model is None:
            return self._json(start_response, 404, {"error": f'model "{source}" not found'})
        tag = copy.deepcopy(model.tag)
        tag.update(name=_full_name(destination), model=_full_name(destination))
        self.models[_full_name(destination)] = _Model(tag, copy.deepcopy(model.show))
        return self._empty(start_response)

    def _delete(self, start_response, body, environ, raw):
        name = body.get("model") or body.get("name") or ""
        if self.models.pop(_full_name(name), None) is None:
            return self._json(start_response, 404, {"error": f"model '{name}' not found"})
        return self._empty(start_response)

    def _blob(self, start_response, body, environ, raw):
        digest = environ["PATH_INFO"].rsplit("/", 1)[-1]
        if environ["REQUEST_METHOD"] == "HEAD":
            return self._empty(start_response, 200 if digest in self.blobs else 404)
        actual = "sha256:" + hashlib.sha256(raw).hexdigest()
        if actual != digest:
            return self._json(start_response, 400, {"error": f'digest mismatch, expected "{digest}", got "{actual}"'})
        existed = digest in self.blobs
        self.blobs[digest] = raw
        return self._empty(start_response, 200 if existed else 201)

    def _create(self, start_response, body, environ, raw):
        name = body.get("model") or body.get("name") or ""
        if not name or "/" in name.strip("/") and name.count("/") > 2 or " " in name:
            return self._json(start_response, 400, {"error": "invalid model name"})
        source = body.get("from")
        files = body.get("files")
        if not source and not files:
            return self._json(start_response, 400, {"error": "neither 'from' or 'files' was specified"})
        if files:
            for digest in files.values():
                if digest not in self.blobs:
                    return self._json(
                        start_response,
                        500,
                        {
                            "error": f"open /usr/share/ollama/.ollama/models/blobs/{digest.replace(':', '-')}: no "
                            "such file or directory"
                        },
                    )
            base = self.models["gemma3:270m"]
        else:
            base = self._model(source)
            if base is None:
                return self._json(start_response, 404, {"error": f"model '{source}' not found"})
        if body.get("quantize") and (base.tag.get("details") or {}).get("quantization_level", "").startswith("Q"):
            return self._json(
                start_response, 500, {"error": "quantization is only supported for F16, BF16 and F32 models"}
            )
        show = copy.deepcopy(base.show)
        show.pop("system", None)
        if body.get("system") is not None:
            show["system"] = body["system"]
        if body.get("template") is not None:
            show["template"] = body["template"]
        if body.get("license") is not None:
            show["license"] = body["license"] if isinstance(body["license"], str) else "\n".join(body["license"])
        if body.get("messages"):
            show["messages"] = body["messages"]
        params = body.get("parameters") or {}
        if params:
            lines = []
            for key, value in params.items():
                for v in value if isinstance(value, list) else [value]:
                    lines.append(f"{key:<30} " + (f'"{v}"' if isinstance(v, str) else json.dumps(v)))
            show["parameters"] = "\n".join(lines)
        show["details"] = dict(show.get("details") or {}, parent_model=source or "")
        tag = copy.deepcopy(base.tag)
        tag.update(name=_full_name(name), model=_full_name(name), details=show["details"])
        self.models[_full_name(name)] = _Model(tag, show)
        statuses = [
            {"status": "using existing layer sha256:a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"},
            {"status": "creating new layer sha256:0b8196193949195d77d4be7ab47d8bf1cd25cfc892cde6e859d2a7bc5dc82c92"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
        if body.get("stream", True) is False:
            return self._json(start_response, 200, {"status": "success"})
        return self._ndjson(start_response, iter(statuses))

    def _control(self, start_response, body, environ, raw):
        """POST /_fake/config {"chunk_delay", "latency", "tokens"}: the benchmark's timing knobs."""
        if "chunk_delay" in body:
            self.chunk_delay = float(body["chunk_delay"])
        if "latency" in body:
            self.latency = float(body["latency"])
        if "tokens" in body:
            self.tokens = [f" t{i}" for i in range(int(body["tokens"]))]
        return self._json(
            start_response, 200, {"chunk_delay": self.chunk_delay, "latency": self.latency, "tokens": len(self.tokens)}
        )

    ROUTES = {
        ("POST", "/_fake/config"): _control,
        ("GET", "/"): _root,
        ("HEAD", "/"): _root,
        ("GET", "/api/version"): _version,
        ("HEAD", "/api/version"): _version,
        ("GET", "/api/tags"): _tags,
        ("HEAD", "/api/tags"): _tags,
        ("GET", "/api/ps"): _ps,
        ("POST", "/api/show"): _show,
        ("POST", "/api/generate"): _generate,
        ("POST", "/api/chat"): _chat,
        ("POST", "/api/embed"): _embed,
        ("POST", "/api/embeddings"): _embeddings_legacy,
        ("POST", "/api/pull"): _pull,
        ("POST", "/api/copy"): _copy,
        ("DELETE", "/api/delete"): _delete,
        ("POST", "/api/create"): _create,
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the fake's WSGI app with HTTP/1.1 keep-alive, as Ollama does: a response without a
    Content-Length (an NDJSON stream) goes out chunked, each piece at once; a client that closes
    a stream early closes the app's iterator, which the fake counts as an aborted stream."""

    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go's net/http does

    def log_message(self, format, *args):  # quiet: the tests read the fake's own records
        pass

    def _run(self):
        length = int(self.headers.get("Content-Length") or 0)
        environ = {
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(self.path.split("?", 1)[0]),
            "CONTENT_LENGTH": str(length),
            "wsgi.input": io.BytesIO(self.rfile.read(length) if length else b""),
        }
        state = {}

        def start_response(status, headers, exc_info=None):
            state["head"] = (status, headers)

        body = self.server.app(environ, start_response)
        status, headers = state["head"]
        chunked = not any(k.lower() == "content-length" for k, _ in headers)
        try:
            self.send_response(int(status.split()[0]))
            for key, value in headers:
                self.send_header(key, value)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in body:
                if self.command == "HEAD":
                    continue
                if chunked and piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                elif piece:
                    self.wfile.write(piece)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (ConnectionError, OSError):  # the client left, or the fake "died" mid-stream
            self.close_connection = True
        finally:
            if hasattr(body, "close"):
                body.close()

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = _run


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app, port):
        super().__init__(("127.0.0.1", port), _Handler)
        self.app = app
        self.port = self.server_address[1]


def _serve(app, port):
    """A threaded keep-alive HTTP server for `app` on 127.0.0.1:`port` (0 picks one); the standard
    library's own, so the fake shares no code with the server under test."""
    return _Server(app, port)


def main():
    """Run the fake on its own: python tests/fake_ollama.py [--port N] [--latency S] [--token-delay S] [--tokens N]."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    p.add_argument("--token-delay", type=float, default=0.0, help="seconds before each streamed chunk")
    p.add_argument("--tokens", type=int, default=0, help="tokens per generation (default: a short sentence)")
    args = p.parse_args()
    fake = FakeOllama()
    fake.latency, fake.chunk_delay = args.latency, args.token_delay
    if args.tokens:
        fake.tokens = [f" t{i}" for i in range(args.tokens)]
    fake._server = _serve(fake, args.port)
    print(f"FAKE_OLLAMA_URL={fake.url}", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
