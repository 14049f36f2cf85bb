"""A fake Ollama v0.24.0: a real HTTP server on an ephemeral port for the tests.

It follows the 84 captures of a real Ollama v0.24.0 in tests/ollama_captures (01-root to
84-unknown-route, with their exact bodies in raw/; tests/test_fake_contract.py replays every one
against it, and a few bodies it serves verbatim): the same field names, status codes, media types,
empty bodies, NDJSON streams and error texts, Go's JSON syntax errors included. Where the captures
are silent it follows Ollama's v0.24.0 source (server/routes.go, server/create.go, api/types.go,
openai/ and middleware/openai.go): the order of its checks, "missing request body", the
/v1 OpenAI-compatible routes, and what v0.24.0 already had beyond the captures: the think levels
("max" included) and the "invalid think value" error, a tool message's `tool_call_id`, show's
renderer, parser, requires, remote_model/remote_host, projector_info and tensors, create's
renderer/parser/requires, /api/push and /api/status. What came after v0.24.0 follows Ollama's
v0.32.15 source (the newest release tag; v0.33.0-rc2's api/types.go and server/routes.go are the
same: api/types.go, api/client.go, server/routes.go, server/create.go, server/images.go,
docs/api.md, docs/api/authentication.mdx, docs/capabilities/web-search.mdx): create's
draft_files (a DRAFT line) checked like files, cloud models in the
listings (a 401 `{"error": "unauthorized", "signin_url": ...}` for one while not signed in), and
ollama.com's side: with `api_key` set every request needs `Authorization: Bearer <api_key>`, and
/api/web_search and /api/web_fetch answer. `/api/version` says 0.24.0 either way.
`fake.newest()` adds what only a current Ollama serves (the cloud model, projector_info,
/api/status); the captures' replay runs without it. It records every request (and its
Authorization header), streams with a configurable delay per chunk, and notices when a client
closes a stream early (as Ollama does, it then stops).

Its state is plain attributes a test may set: `models` (name -> tags entry and show body), `blobs`
(digest -> bytes), `loaded` (name -> expires_at). It cannot read weights, so a model created from
files is what the model of that name already was (Ollama reuses the layers, as capture 38 shows),
or a copy of gemma3:270m when the name is new.

    fake = FakeOllama().start()
    fake.url                      # http://127.0.0.1:PORT
    fake.chunk_delay = 0.05       # seconds between streamed chunks
    fake.fail("/api/tags", 500, {"error": "boom"})
    fake.raw("GET", "/api/tags", b"...", headers=[("Content-Length", "3")], delay=0.5)  # hostile bytes
    fake.requests                 # [(method, path, json body or None), ...]
    fake.headers                  # [(method, path, Authorization header or None), ...]
    fake.aborted.wait(2)          # set when a client closed a stream before the end
"""

import base64
import calendar
import copy
import datetime
import hashlib
import http.server
import io
import json
import random
import re
import select
import socket
import struct
import sys
import threading
import time
import urllib.parse
from pathlib import Path

CAPTURES = Path(__file__).resolve().parent / "ollama_captures"  # a copy of the captures, with raw/ bodies
VERSION = "0.24.0"


def _sample(name):
    """The exact body of one capture, e.g. "13-tags.json" -> raw/13-tags.body."""
    return json.loads((CAPTURES / "raw" / name.replace(".json", ".body")).read_text())


def _full_name(name):
    """Ollama's normal form: a missing tag is ':latest'."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _name_parts(name):
    """(host, namespace, model, tag) of a model name, with Ollama's defaults for what it leaves out."""
    rest, tag = name, "latest"
    if rest.rfind(":") > rest.rfind("/"):
        rest, tag = rest[: rest.rfind(":")], rest[rest.rfind(":") + 1 :]
    parts = rest.split("/")
    model = parts[-1]
    namespace = (parts[-2] if len(parts) > 1 else "") or "library"
    host = (parts[-3] if len(parts) > 2 else "") or "registry.ollama.ai"
    return host, namespace, model, tag, len(parts) <= 3


def _qualified(name):
    """The fully qualified name Ollama puts in capability errors: registry.ollama.ai/library/x:latest."""
    host, namespace, model, tag, _ = _name_parts(name)
    return f"{host}/{namespace}/{model}:{tag}"


def _valid_name(name):
    """types/model's Name.IsValid: each part 1-80 characters (a host up to 350) of letters, digits,
    '_', '-' and '.', starting with a letter, digit or '_'; no '.' in a namespace, ':' only in a host."""
    host, namespace, model, tag, shape = _name_parts(name.strip())
    for kind, part in (("host", host), ("namespace", namespace), ("model", model), ("tag", tag)):
        if not 1 <= len(part) <= (350 if kind == "host" else 80) or not (part[0].isalnum() or part[0] == "_"):
            return False
        allowed = "_-" + ("" if kind == "namespace" else ".") + (":" if kind == "host" else "")
        if not all(c.isascii() and (c.isalnum() or c in allowed) for c in part):
            return False
    return shape and name.isascii()


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


def _unix(timestamp):
    """Seconds since the epoch of an RFC 3339 timestamp such as a tags entry's modified_at."""
    return calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))


# --- Go's words ------------------------------------------------------------------------------
# Ollama decodes request bodies with Go's encoding/json (gin's ShouldBindJSON), so a malformed body
# is answered 400 with Go's error text: the first syntax error as encoding/json's scanner words it
# ("invalid character 'n' looking for beginning of object key string", capture 28), "unexpected EOF"
# for a body cut short, and a type error for a body that is not an object.

_GO_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 0x27: "\\'", 0x5C: "\\\\"}


def _go_quote_char(c):
    """encoding/json's quoteChar: the byte it stopped at, as Go's strconv.Quote writes that rune."""
    if c == 0x22:
        return "'\"'"
    if c in _GO_ESCAPES:
        return f"'{_GO_ESCAPES[c]}'"
    if chr(c).isprintable():
        return f"'{chr(c)}'"
    return f"'\\x{c:02x}'" if c < 0x80 else f"'\\u{c:04x}'"


class _GoSyntaxError(Exception):
    pass


def _go_json_error(data):
    """The error Go's json.Decoder gives for `data` (not empty), or None when it decodes; what
    follows the first value is not read, as Decode does not read it."""
    n = len(data)

    def fail(i, context):
        if i >= n:
            raise _GoSyntaxError("unexpected EOF")
        raise _GoSyntaxError(f"invalid character {_go_quote_char(data[i])} {context}")

    def space(i):
        while i < n and data[i] in b" \t\r\n":
            i += 1
        return i

    def digits(i):
        while i < n and 0x30 <= data[i] <= 0x39:
            i += 1
        return i

    def value(i):
        i = space(i)
        if i >= n:
            fail(i, "")
        c = data[i : i + 1]
        if c == b"{":
            return members(i + 1)
        if c == b"[":
            return elements(i + 1)
        if c == b'"':
            return string(i + 1)
        if c == b"-" or c.isdigit():
            return number(i)
        for word in (b"true", b"false", b"null"):
            if c == word[:1]:
                for k in range(1, len(word)):
                    if i + k >= n or data[i + k] != word[k]:
                        fail(i + k, f"in literal {word.decode()} (expecting {_go_quote_char(word[k])})")
                return i + len(word)
        fail(i, "looking for beginning of value")

    def members(i):
        i = space(i)
        if data[i : i + 1] == b"}":
            return i + 1
        while True:
            i = space(i)
            if data[i : i + 1] != b'"':
                fail(i, "looking for beginning of object key string")
            i = space(string(i + 1))
            if data[i : i + 1] != b":":
                fail(i, "after object key")
            i = space(value(i + 1))
            if data[i : i + 1] == b"}":
                return i + 1
            if data[i : i + 1] != b",":
                fail(i, "after object key:value pair")
            i += 1

    def elements(i):
        i = space(i)
        if data[i : i + 1] == b"]":
            return i + 1
        while True:
            i = space(value(i))
            if data[i : i + 1] == b"]":
                return i + 1
            if data[i : i + 1] != b",":
                fail(i, "after array element")
            i += 1

    def string(i):
        while i < n:
            c = data[i]
            if c == 0x22:
                return i + 1
            if c == 0x5C:
                i += 1
                if data[i : i + 1] == b"u":
                    for k in range(1, 5):
                        if i + k >= n or chr(data[i + k]) not in "0123456789abcdefABCDEF":
                            fail(i + k, "in \\u hexadecimal character escape")
                    i += 4
                elif i >= n or data[i] not in b'"\\/bfnrt':
                    fail(i, "in string escape code")
            elif c < 0x20:
                fail(i, "in string literal")
            i += 1
        fail(i, "")

    def number(i):
        if data[i : i + 1] == b"-":
            i += 1
            if not data[i : i + 1].isdigit():
                fail(i, "in numeric literal")
        i = i + 1 if data[i : i + 1] == b"0" else digits(i)
        if data[i : i + 1] == b".":
            if not data[i + 1 : i + 2].isdigit():
                fail(i + 1, "after decimal point in numeric literal")
            i = digits(i + 1)
        if data[i : i + 1] in (b"e", b"E"):
            i += 2 if data[i + 1 : i + 2] in (b"+", b"-") else 1
            if not data[i : i + 1].isdigit():
                fail(i, "in exponent of numeric literal")
            i = digits(i)
        return i

    try:
        value(0)
    except _GoSyntaxError as e:
        return str(e)
    except RecursionError:  # deeper than this scanner goes; Python's parser decides
        return None
    return None


def _go_duration(text):
    """Seconds in a Go duration string ("10s", "1h30m", "0"), as time.ParseDuration reads it."""
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    body = text[1:] if text[:1] in ("-", "+") else text
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"time: invalid duration {quoted}")
    total, rest = 0.0, body
    while rest:
        number = re.match(r"[0-9]*(\.[0-9]*)?", rest).group(0)
        if number in ("", "."):
            raise ValueError(f"time: invalid duration {quoted}")
        unit = re.match(r"[^0-9.]*", rest[len(number) :]).group(0)
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in units:
            raise ValueError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * units[unit]
        rest = rest[len(number) + len(unit) :]
    return -total if text[:1] == "-" else total


def _keep_alive(body):
    """The request's keep_alive in seconds, as api.Duration reads it: absent 300, a number of
    seconds or a Go duration string, anything negative forever (math.MaxInt64 nanoseconds)."""
    value = body.get("keep_alive")
    if value is None:
        return 300.0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        go_type = {bool: "bool", dict: "map[string]interface {}", list: "[]interface {}"}[type(value)]
        raise ValueError(f"Unsupported type: '{go_type}'")
    seconds = _go_duration(value) if isinstance(value, str) else float(value)
    return (2**63 - 1) / 1e9 if seconds < 0 else seconds


def _expires_at(seconds):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


CLOUD_HOST = "https://ollama.com:443"  # server/cloud_proxy.go defaultCloudProxyBaseURL
SIGNIN_URL = "https://ollama.com/connect?name=fake-host&key=c3NoLWVkMjU1MTkgQUFBQQ"  # routes.go signinURLStr


def _newest_models(models):
    """What v0.32.15 has beside the captured v0.24.0 models (FakeOllama.newest)."""
    tags = {name: m.tag for name, m in models.items()}
    # A cloud model (v0.32.15's ListModelResponse/ShowResponse): a stub whose runs go to ollama.com.
    cloud_tag = copy.deepcopy(tags["gemma3:270m"])
    cloud_tag.update(
        name="gpt-oss:120b-cloud", model="gpt-oss:120b-cloud", size=384, digest="569662207105" + "0" * 52,
        remote_model="gpt-oss:120b", remote_host=CLOUD_HOST,
    )  # fmt: skip
    cloud_tag["details"].update(
        family="gptoss", families=["gptoss"], parameter_size="116.8B", quantization_level="MXFP4"
    )
    cloud_show = {
        "modelfile": '# Modelfile generated by "ollama show"\nFROM gpt-oss:120b\n',
        "template": "{{ .Prompt }}",
        "details": cloud_tag["details"],
        "remote_model": "gpt-oss:120b",
        "remote_host": CLOUD_HOST,
        "model_info": {"general.architecture": "gptoss", "gptoss.context_length": 131072},
        "capabilities": ["completion", "tools", "thinking"],
        "renderer": "harmony",
        "parser": "harmony",
        "requires": "0.12.0",
        "modified_at": cloud_tag["modified_at"],
    }
    models["gpt-oss:120b-cloud"] = _Model(cloud_tag, cloud_show)
    # A vision model's projector (routes.go: from its projector file); its tensors are in the capture.
    models["gemma3:270m"].show.update(
        projector_info={"clip.vision.image_size": 896, "clip.vision.patch_size": 14},
    )


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
        self.windows = {}  # name -> the num_ctx its runner was loaded with
        self.tokens = ["The", " sky", " is", " blue", " because", " of", " Rayleigh", " scattering", "."]
        self.thinking_tokens = ["Let", " me", " think", "."]
        self.chunk_delay = 0.0  # seconds before each streamed chunk
        self.silence = 0.0  # seconds a stream says nothing first (a model loading, a long prompt read)
        self.silence_before_headers = True  # ... before its headers too, as Ollama while it loads a model
        self.latency = 0.0  # seconds before any answer
        self.pullable = {"tinyllama": 3}  # name -> number of layers a pull streams
        self.tool_calls = None  # a tool call list the next chat with tools answers with
        self.requests = []
        self.headers = []  # (method, path, Authorization header or None) of each request
        self.api_key = None  # set: ollama.com's side, every request needs `Authorization: Bearer <api_key>`
        self.signed_in = False  # a cloud model's run answers 401 with signin_url until this is true (or a key)
        self.web_results = [
            {"title": "Ollama", "url": "https://ollama.com/", "content": "Cloud models are now available..."},
            {
                "title": "What is Ollama? Introduction to the AI model management tool",
                "url": "https://www.hostinger.com/tutorials/what-is-ollama",
                "content": "Ariffud M. 6min Read...",
            },
        ]  # docs/capabilities/web-search.mdx's example
        self.streams_started = 0
        self.streams_finished = 0
        self.streams_aborted = 0
        self.aborted = threading.Event()
        self.aborted_at = None  # time.monotonic() when a client last closed a stream early
        self.die_after_chunks = None  # drop the connection after this many chunks (once)
        self._failures = {}
        self._routes = {}  # (method, path) -> handler set by route()
        self._lock = threading.Lock()
        self._server = None

    # --- control -------------------------------------------------------------------------

    def newest(self):
        """Serve what Ollama v0.32.15 has beyond the captures: a cloud model, show's newer fields."""
        _newest_models(self.models)
        self.route(  # routes.go StatusHandler: api.StatusResponse
            "GET", "/api/status", lambda sr, *_: self._json(sr, 200, {"cloud": {"disabled": False, "source": "none"}})
        )
        return self

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
        typed = path in self.REQUEST_TYPES and method in ("POST", "DELETE")
        if raw.strip() and not path.startswith("/api/blobs/"):
            problem = _go_json_error(raw)
            if problem is None:
                try:
                    text = raw.decode("utf-8", "replace")  # Go reads bad UTF-8 as U+FFFD
                    body = json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip(" \t\r\n")))[0]
                except ValueError as e:  # what Go accepts and Python does not: none known
                    problem = str(e)
            if problem is None and typed and not isinstance(body, (dict, type(None))):
                kind = {str: "string", list: "array", bool: "bool"}.get(type(body), "number")
                problem = f"json: cannot unmarshal {kind} into Go value of type {self.REQUEST_TYPES[path]}"
            if problem is None and path in self.KEEP_ALIVE_ROUTES and isinstance(body, dict):
                try:
                    _keep_alive(body)
                except ValueError as e:
                    problem = str(e)
            if problem is not None:
                return self._bad_request(start_response, path, problem)
        elif typed:
            return self._bad_request(start_response, path, "missing request body")
        authorization = environ.get("HTTP_AUTHORIZATION")
        with self._lock:
            self.requests.append((method, path, body))
            self.headers.append((method, path, authorization))
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            return self._json(start_response, 401, {"error": "unauthorized"})
        if (
            path in ("/api/generate", "/api/chat")
            and isinstance(body, dict)
            and (self._model(body.get("model")) or _Model({}, {})).tag.get("remote_host")
            and not (self.signed_in or authorization)
        ):  # routes.go: the cloud proxy's AuthorizationError becomes this
            return self._json(start_response, 401, {"error": "unauthorized", "signin_url": SIGNIN_URL})
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
    def _json(start_response, status, payload, head=False, content_type="application/json; charset=utf-8"):
        data = json.dumps(payload).encode()
        start_response(f"{status} X", [("Content-Type", content_type), ("Content-Length", str(len(data)))])
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
                    fake.note_abort()

        return body()

    def note_abort(self):
        """A client closed a stream before its end (as Ollama, the fake then stops)."""
        self.aborted_at = time.monotonic()
        self.aborted.set()

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
            context = self.windows.get(name) or min(4096, self._model_number(model, "context_length", 4096))
            entry.update(size=model.tag["size"] + 224685012, expires_at=expires, size_vram=0, context_length=context)
            models.append(entry)
        return self._json(start_response, 200, {"models": models})

    def _show(self, start_response, body, environ, raw):
        name = body.get("model") or body.get("name") or ""
        model = self._model(name)
        if model is None:
            return self._json(start_response, 404, {"error": f"model '{_full_name(name)}' not found"})
        return self._json(start_response, 200, model.show)

    def _bad_request(self, start_response, path, message):
        """400 for a body Go could not bind; the /v1 routes answer in OpenAI's error shape."""
        if path.startswith("/v1/"):
            return self._openai_error(start_response, 400, "EOF" if message == "missing request body" else message)
        return self._json(start_response, 400, {"error": message})

    def _load(self, name, body):
        """Load `name` for keep_alive seconds (0: unload once answered, as Ollama's scheduler does)."""
        seconds = _keep_alive(body)
        with self._lock:
            if seconds == 0:
                self.loaded.pop(_full_name(name), None)
            else:
                self.loaded[_full_name(name)] = _expires_at(seconds)
            self.windows[_full_name(name)] = (body.get("options") or {}).get("num_ctx")

    def _window(self, model, body):
        """The context window a generation runs in: options.num_ctx, else the model's (at most 4096)."""
        return (body.get("options") or {}).get("num_ctx") or min(
            4096, self._model_number(model, "context_length", 4096)
        )

    def _fit(self, model, body, counts):
        """Ollama v0.24.0 with a prompt of `counts` tokens (one per message; a token a word, the
        template's few more): (400, error) when it is over the window and `truncate` is false, else
        the prompt_eval_count it reports. Too long, chat drops the oldest messages until the rest
        fits, then cuts the last one to the window (measured against the real one)."""
        window = self._window(model, body)
        if sum(counts) < window:
            return None, None
        if body.get("truncate") is False:
            return (400, "the input length exceeds the context length"), None
        kept = list(counts)
        while len(kept) > 1 and sum(kept) >= window:
            kept.pop(0)
        return None, min(sum(kept), window)

    @staticmethod
    def _option_problem(body):
        """api.Options' check of the option types: (500, error) or None."""
        options = body.get("options") or {}
        for key in ("num_predict", "num_ctx", "top_k", "seed"):
            if key in options and (isinstance(options[key], bool) or not isinstance(options[key], int)):
                return 500, f'option "{key}" must be of type integer'
        return None

    def _check_generation(self, body, kind):
        """Ollama's checks before generating, in the order GenerateHandler and ChatHandler make them:
        (status, error) or None. An unload (no prompt or messages, keep_alive 0) passes for any model."""
        think = body.get("think")
        if isinstance(think, str) and think not in ("high", "medium", "low", "max"):  # api.ThinkValue, v0.32.15
            return 400, f'invalid think value: "{think}" (must be "high", "medium", "low", "max", true, or false)'
        if not 0 <= (body.get("top_logprobs") or 0) <= 20:
            return 400, "top_logprobs must be between 0 and 20"
        name = body.get("model") or ""
        if not name.strip() and kind == "chat":
            return 400, "model is required"
        model = self._model(name)
        if model is None:
            return 404, f"model '{name}' not found"
        empty = not (body.get("prompt") if kind == "generate" else body.get("messages"))
        if empty and _keep_alive(body) == 0:
            return None
        if (
            kind == "generate"
            and body.get("raw")
            and (body.get("context") or body.get("system") or body.get("template"))
        ):
            return 400, "raw mode does not support template, system, or context"
        caps = model.capabilities
        if body.get("think") and "thinking" not in caps:
            return 400, f'"{name}" does not support thinking'
        if "completion" not in caps:
            return 400, f'"{name}" does not support {kind}'
        if kind == "chat" and body.get("tools") and "tools" not in caps:
            return 400, f"{_qualified(name)} does not support tools"
        if kind == "generate" and body.get("suffix") and "insert" not in caps:
            return 400, f"{_qualified(name)} does not support insert"
        return self._option_problem(body)

    def _images_problem(self, model, images):
        if images and "vision" not in model.capabilities:
            return (
                500,
                "Failed to create new sequence: failed to process inputs: this model is missing data required for "
                "image input",
            )
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

    def _logprobs(self, body, token):
        """The logprobs entry of one token when the request asks for them (capture 73's shape)."""
        if not body.get("logprobs"):
            return {}

        def entry(text, logprob):
            return {"token": text, "logprob": logprob, **({"bytes": list(text.encode())} if text else {})}

        top = [entry(token, -0.25)] + [entry(t, -3.5 - i) for i, t in enumerate(t for t in self.tokens if t != token)]
        count = body.get("top_logprobs") or 0
        return {"logprobs": [{**entry(token, -0.25), **({"top_logprobs": top[:count]} if count else {})}]}

    def _final_stats(self, count, prompt_tokens=None):
        return {
            "total_duration": 40_000_000 + count * 20_000_000,
            "load_duration": 10_000_000,
            "prompt_eval_count": prompt_tokens or 14,
            "prompt_eval_duration": 5_000_000,
            "eval_count": count,
            "eval_duration": count * 20_000_000,
        }

    @staticmethod
    def _render(messages):
        """The prompt gemma3's template (the fake's models all carry it) renders for `messages`, as
        Ollama executes it: system messages joined into .System, which the template puts in the first
        user turn only when a system message comes first, a turn per message, the model's turn after
        the last one, and the template's closing newline (capture 76)."""
        collated = []
        for m in messages:
            if collated and collated[-1]["role"] == m.get("role") and m.get("role") != "tool":
                collated[-1]["content"] += "\n\n" + (m.get("content") or "")
            else:
                collated.append({"role": m.get("role"), "content": m.get("content") or ""})
        system = "\n\n".join(m.get("content") or "" for m in messages if m.get("role") == "system")
        out = []
        for i, m in enumerate(collated):
            if m["role"] == "user":
                out.append("<start_of_turn>user" + (f"\n{system}\n" if i == 1 and system else "") + "\n")
                out.append(m["content"] + "<end_of_turn>\n")
            elif m["role"] == "assistant":
                out.append(f"<start_of_turn>model\n{m['content']}<end_of_turn>\n")
            if i == len(collated) - 1:
                out.append("<start_of_turn>model\n")
        return "".join(out) + "\n"

    def _generate(self, start_response, body, environ, raw):
        problem = self._check_generation(body, "generate")
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        name = body["model"]
        model = self._model(name)
        prompt = body.get("prompt") or ""
        if not prompt and _keep_alive(body) == 0:
            self.loaded.pop(_full_name(name), None)
            final = {"model": name, "created_at": _now(), "response": "", "done": True, "done_reason": "unload"}
            return self._json(start_response, 200, final)
        self._load(name, body)
        if not prompt:  # a load, answered as one JSON object even when a stream was asked for
            final = {"model": name, "created_at": _now(), "response": "", "done": True, "done_reason": "load"}
            return self._json(start_response, 200, final)
        if body.get("_debug_render_only"):
            system = body.get("system") or model.show.get("system")
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": prompt}
            ]
            rendered = prompt if body.get("raw") or body.get("suffix") else self._render(messages)
            answer = {"model": name, "created_at": _now(), "response": "", "done": False}
            return self._json(start_response, 200, dict(answer, _debug_info={"rendered_template": rendered}))
        problem = self._images_problem(model, body.get("images"))
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        prompt_tokens = len(prompt.split()) + 3
        problem, evaluated = self._fit(model, body, [prompt_tokens])
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        tokens, reason = self._generation_tokens(body, False)
        thinking = list(self.thinking_tokens) if body.get("think") and tokens else []

        def chunks():
            for t in thinking:
                yield {"model": name, "created_at": _now(), "response": "", "thinking": t, "done": False}
            for t in tokens:
                yield {"model": name, "created_at": _now(), "response": t, "done": False, **self._logprobs(body, t)}
            final = {"model": name, "created_at": _now(), "response": "", "done": True, "done_reason": reason}
            if tokens:
                final.update(self._final_stats(len(tokens), evaluated))
                if not body.get("raw"):  # the whole prompt's tokens, cut or not, then the answer's
                    final["context"] = [105, 2364, 107] + list(range(max(0, prompt_tokens - 3) + len(tokens)))
            yield final

        if body.get("stream", True) is False:
            parts = list(chunks())
            final = parts[-1]
            final["response"] = "".join(p["response"] for p in parts)
            if thinking:
                final["thinking"] = "".join(thinking)
            logprobs = [lp for p in parts for lp in p.get("logprobs", [])]
            if logprobs:
                final["logprobs"] = logprobs
            return self._json(start_response, 200, final)
        return self._ndjson(start_response, chunks())

    def _chat(self, start_response, body, environ, raw):
        problem = self._check_generation(body, "chat")
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        name = body["model"]
        model = self._model(name)
        if not body.get("messages") and _keep_alive(body) == 0:
            self.loaded.pop(_full_name(name), None)
            final = {
                "model": name,
                "created_at": _now(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "unload",
            }
            return self._json(start_response, 200, final)
        self._load(name, body)
        if not body.get("messages"):  # a load, answered as one JSON object even when a stream was asked for
            final = {
                "model": name,
                "created_at": _now(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "load",
            }
            return self._json(start_response, 200, final)
        messages = list(model.show.get("messages") or []) + list(body["messages"])
        if body["messages"][0].get("role") != "system" and model.show.get("system"):
            messages.insert(0, {"role": "system", "content": model.show["system"]})
        if body.get("_debug_render_only"):
            answer = {"model": name, "created_at": _now(), "message": {"role": "", "content": ""}, "done": False}
            return self._json(
                start_response, 200, dict(answer, _debug_info={"rendered_template": self._render(messages)})
            )
        problem = self._images_problem(model, [i for m in body["messages"] for i in m.get("images") or []])
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        problem, evaluated = self._fit(model, body, [len(str(m.get("content") or "").split()) + 4 for m in messages])
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        tokens, reason = self._generation_tokens(body, False)
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
                        **self._logprobs(body, t),
                    }
            final = {
                "model": name,
                "created_at": _now(),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": reason,
            }
            if tokens:
                final.update(self._final_stats(len(tokens), evaluated))
            yield final

        if body.get("stream", True) is False:
            parts = list(chunks())
            final = parts[-1]
            final["message"]["content"] = "".join(p["message"]["content"] for p in parts)
            if thinking:
                final["message"]["thinking"] = "".join(thinking)
            if tool_calls:
                final["message"]["tool_calls"] = tool_calls
            logprobs = [lp for p in parts for lp in p.get("logprobs", [])]
            if logprobs:
                final["logprobs"] = logprobs
            return self._json(start_response, 200, final)
        return self._ndjson(start_response, chunks())

    @staticmethod
    def _vector(text, dims):
        """A deterministic unit vector for `text`."""
        seed = hashlib.sha256(text.encode()).digest()
        values = [(seed[i % 32] - 127.5) / 127.5 for i in range(dims)]
        norm = sum(v * v for v in values) ** 0.5 or 1.0
        return [round(v / norm, 8) for v in values]

    @staticmethod
    def _model_number(model, key, default):
        """A number from the model's model_info, such as "<arch>.context_length"."""
        info = model.show.get("model_info") or {}
        return next((v for k, v in info.items() if k.endswith("." + key) and isinstance(v, int)), default)

    def _embed(self, start_response, body, environ, raw):
        """EmbedHandler's order: the input's type, the model, its options and loading, an empty input
        (answered for any model: it only loads or unloads), then each input's embedding."""
        name = body.get("model") or ""
        if not name.strip():
            return self._json(start_response, 404, {"error": f"model '{name}' not found"})
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs] if inputs else []
        elif isinstance(inputs, list) and all(isinstance(t, str) for t in inputs):
            inputs = list(inputs)
        elif inputs is None:
            inputs = []
        else:
            return self._json(start_response, 400, {"error": "invalid input type"})
        model = self._model(name)
        if model is None:
            return self._json(start_response, 404, {"error": f'model "{name}" not found, try pulling it first'})
        problem = self._option_problem(body)
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        self._load(name, body)
        if not inputs:
            return self._json(start_response, 200, {"model": name, "embeddings": []})
        if "embedding" not in model.capabilities:
            return self._json(start_response, 501, {"error": "this model does not support embeddings"})
        context = min(4096, self._model_number(model, "context_length", 4096))
        counts = [len(t.split()) + 2 for t in inputs]  # a token a word, and the two special tokens
        if body.get("truncate") is False and any(c > context for c in counts):
            return self._json(start_response, 400, {"error": "the input length exceeds the context length"})
        size = self._model_number(model, "embedding_length", 384)
        dims = body.get("dimensions") or size
        dims = dims if 0 < dims < size else size
        return self._json(
            start_response,
            200,
            {
                "model": name,
                "embeddings": [self._vector(t, dims) for t in inputs],
                "total_duration": 14_000_000,
                "load_duration": 1_000_000,
                "prompt_eval_count": sum(min(c, context) for c in counts),
            },
        )

    def _embeddings_legacy(self, start_response, body, environ, raw):
        """EmbeddingsHandler: the model loads first; an empty prompt then answers [] for any model."""
        name = body.get("model") or ""
        if not name.strip():
            return self._json(start_response, 400, {"error": "model is required"})
        model = self._model(name)
        if model is None:
            return self._json(start_response, 404, {"error": f'model "{name}" not found, try pulling it first'})
        problem = self._option_problem(body)
        if problem:
            return self._json(start_response, problem[0], {"error": problem[1]})
        self._load(name, body)
        prompt = body.get("prompt") or ""
        if not prompt:
            return self._json(start_response, 200, {"embedding": []})
        if "embedding" not in model.capabilities:
            return self._json(start_response, 500, {"error": "this model does not support embeddings"})
        size = self._model_number(model, "embedding_length", 384)
        return self._json(start_response, 200, {"embedding": self._vector(prompt, size)})

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

    def _push(self, start_response, body, environ, raw):
        """server/images.go PushModel: retrieving manifest, `pushing <digest[7:19]>` per layer with
        total/completed, pushing manifest, success (docs/api.md's example)."""
        name = body.get("model") or body.get("name") or ""
        model = self._model(name)
        if model is None:
            return self._json(start_response, 404, {"error": f"model '{_full_name(name)}' not found"})
        layers = [(f"sha256:{hashlib.sha256(f'{name}{i}'.encode()).hexdigest()}", 2000 * (i + 1)) for i in range(2)]

        def chunks():
            yield {"status": "retrieving manifest"}
            for digest, total in layers:
                for done in (0, total // 2, total):
                    yield {"status": f"pushing {digest[7:19]}", "digest": digest, "total": total, "completed": done}
            yield {"status": "pushing manifest"}
            yield {"status": "success"}

        if body.get("stream", True) is False:
            return self._json(start_response, 200, {"status": "success"})
        return self._ndjson(start_response, chunks())

    def _web_search(self, start_response, body, environ, raw):
        """ollama.com's /api/web_search (api.WebSearchRequest/Response): query, max_results (default 5, max 10)."""
        if not environ.get("HTTP_AUTHORIZATION"):
            return self._json(start_response, 401, {"error": "unauthorized"})
        if not body.get("query"):
            return self._json(start_response, 400, {"error": "query is required"})
        count = min(int(body.get("max_results") or 5), 10)
        return self._json(start_response, 200, {"results": self.web_results[:count]})

    def _web_fetch(self, start_response, body, environ, raw):
        """ollama.com's /api/web_fetch (api.WebFetchRequest/Response): title, content, links."""
        if not environ.get("HTTP_AUTHORIZATION"):
            return self._json(start_response, 401, {"error": "unauthorized"})
        if not body.get("url"):
            return self._json(start_response, 400, {"error": "url is required"})
        return self._json(
            start_response,
            200,
            {
                "title": "Ollama",
                "content": "[Cloud models](https://ollama.com/blog/cloud-models) are now available in Ollama...",
                "links": ["http://ollama.com/", "http://ollama.com/models", "https://github.com/ollama/ollama"],
            },
        )

    def _copy(self, start_response, body, environ, raw):
        source, destination = body.get("source") or "", body.get("destination") or ""
        if not _valid_name(source):
            return self._json(start_response, 400, {"error": f'source "{source}" is invalid'})
        if not _valid_name(destination):
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
        """HeadBlobHandler and CreateBlobHandler: a blob already held answers 200 before its body is
        read; a new one 201, or 400 when its bytes do not hash to the digest."""
        digest = environ["PATH_INFO"].rsplit("/", 1)[-1]
        if environ["REQUEST_METHOD"] == "HEAD":
            if digest in self.blobs:
                return self._empty(start_response)
            return self._json(start_response, 404, {"error": f'blob "{digest}" not found'}, head=True)
        if digest in self.blobs:
            return self._empty(start_response)
        actual = "sha256:" + hashlib.sha256(raw).hexdigest()
        if actual != digest:
            return self._json(start_response, 400, {"error": f'digest mismatch, expected "{digest}", got "{actual}"'})
        self.blobs[digest] = raw
        return self._empty(start_response, 201)

    def _create(self, start_response, body, environ, raw):
        name = body.get("model") or body.get("name") or ""
        if not _valid_name(name):
            return self._json(start_response, 400, {"error": "invalid model name"})
        source = body.get("from")
        files = body.get("files")
        if not source and not files:
            return self._json(start_response, 400, {"error": "neither 'from' or 'files' was specified"})
        if files or body.get("draft_files"):  # draft_files: v0.32.15's DRAFT line, checked like files
            for digest in [*(files or {}).values(), *(body.get("draft_files") or {}).values()]:
                if digest not in self.blobs:
                    return self._json(
                        start_response,
                        500,
                        {
                            "error": f"open /usr/share/ollama/.ollama/models/blobs/{digest.replace(':', '-')}: no "
                            "such file or directory"
                        },
                    )
            # The fake cannot read weights: files re-create the model of that name (the layers Ollama
            # reuses, as capture 38 re-creates all-minilm), or make a copy of gemma3:270m.
            base = self._model(name) or self.models["gemma3:270m"]
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
        converting = [{"status": "converting model"}] if any(f.endswith(".safetensors") for f in files or {}) else []
        statuses = converting + [
            {"status": "using existing layer sha256:a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"},
            {"status": "creating new layer sha256:0b8196193949195d77d4be7ab47d8bf1cd25cfc892cde6e859d2a7bc5dc82c92"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
        if body.get("stream", True) is False:
            return self._json(start_response, 200, {"status": "success"})
        return self._ndjson(start_response, iter(statuses))

    # --- OpenAI compatibility (/v1): middleware/openai.go around the native handlers -----------

    def _openai_error(self, start_response, status, message):
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        error = {"message": message, "type": kind, "param": None, "code": None}
        return self._json(start_response, status, {"error": error}, content_type="application/json")

    def _native(self, route, body, environ):
        """Run a native route as Ollama's middleware does: (status, content type, body iterable)."""
        head = {}

        def start_response(status, headers, exc_info=None):
            head.update(status=int(status.split()[0]), type=dict(headers).get("Content-Type", ""))

        out = route(self, start_response, body, environ, b"")
        return head["status"], head["type"], out

    def _v1_models(self, start_response, body, environ, raw):
        models = sorted(self.models.values(), key=lambda m: m.tag.get("modified_at") or "", reverse=True)
        data = [
            {
                "id": m.tag["name"],
                "object": "model",
                "created": _unix(m.tag["modified_at"]) if m.tag.get("modified_at") else 0,
                "owned_by": _name_parts(m.tag["name"])[1],
            }
            for m in models
        ]
        return self._json(
            start_response, 200, {"object": "list", "data": data or None}, content_type="application/json"
        )

    def _v1_embeddings(self, start_response, body, environ, raw):
        encoding = body.get("encoding_format") or ""
        if encoding and encoding.lower() not in ("float", "base64"):
            message = f"Invalid value for 'encoding_format' = {encoding}. Supported values: ['float', 'base64']."
            return self._openai_error(start_response, 400, message)
        inputs = [""] if body.get("input") == "" else body.get("input")
        if inputs is None or inputs == []:
            return self._openai_error(start_response, 400, "invalid input")
        native = {"model": body.get("model") or "", "input": inputs}
        if body.get("dimensions"):
            native["dimensions"] = body["dimensions"]
        status, _, out = self._native(FakeOllama._embed, native, environ)
        answer = json.loads(b"".join(out))
        if status != 200:
            return self._openai_error(start_response, status, answer["error"])

        def encode(vector):
            if encoding.lower() == "base64":
                return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            return vector

        data = [{"object": "embedding", "embedding": encode(v), "index": i} for i, v in enumerate(answer["embeddings"])]
        count = answer.get("prompt_eval_count", 0)
        return self._json(
            start_response,
            200,
            {
                "object": "list",
                "data": data or None,
                "model": body.get("model") or "",
                "usage": {"prompt_tokens": count, "total_tokens": count},
            },
            content_type="application/json",
        )

    @staticmethod
    def _v1_chat_request(body):
        """openai.FromChatRequest: the native chat request for a chat completion request."""
        messages = []
        for m in body.get("messages") or []:
            content, role = m.get("content"), m.get("role")
            calls = [
                {
                    **({"id": c["id"]} if c.get("id") else {}),
                    "function": {
                        "name": (c.get("function") or {}).get("name", ""),
                        "arguments": json.loads((c.get("function") or {}).get("arguments") or "{}"),
                    },
                }
                for c in m.get("tool_calls") or []
            ]
            extra = {"tool_calls": calls} if calls else {}
            if isinstance(content, str):
                messages.append({"role": role, "content": content, **extra})
            elif isinstance(content, list):
                for part in content:
                    if not isinstance(part, dict) or part.get("type") not in ("text", "image_url"):
                        raise ValueError("invalid message format")
                    if part["type"] == "text":
                        messages.append({"role": role, "content": part.get("text")})
                    else:
                        url = part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
                        messages.append({"role": role, "content": "", "images": [url.split("base64,", 1)[-1]]})
                if messages and calls:
                    messages[-1].update(extra)
            elif calls:
                messages.append({"role": role, "content": "", **extra})
            else:
                raise ValueError(f"invalid message content type: {'<nil>' if content is None else type(content)}")
        options = {"temperature": 1.0, "top_p": 1.0}
        stop = body.get("stop")
        if isinstance(stop, (str, list)):
            options["stop"] = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)]
        for theirs, ours in (("max_tokens", "num_predict"), ("temperature", "temperature"), ("seed", "seed")):
            if body.get(theirs) is not None:
                options[ours] = body[theirs]
        for key in ("frequency_penalty", "presence_penalty", "top_p"):
            if body.get(key) is not None:
                options[key] = body[key]
        native = {"model": body.get("model") or "", "messages": messages, "options": options}
        native["stream"] = bool(body.get("stream"))
        response_format = body.get("response_format") or {}
        kind = str(response_format.get("type") or "").strip().lower()
        if kind == "json_object":
            native["format"] = "json"
        elif kind == "json_schema" and response_format.get("json_schema"):
            native["format"] = response_format["json_schema"].get("schema")
        effort = (body.get("reasoning") or {}).get("effort") or body.get("reasoning_effort")
        if effort:
            if effort not in ("high", "medium", "low", "max", "none"):
                raise ValueError(
                    f'invalid reasoning value: \'{effort}\' (must be "high", "medium", "low", "max", or "none")'
                )
            native["think"] = False if effort == "none" else effort
        for key in ("tools", "logprobs", "top_logprobs", "_debug_render_only"):
            if body.get(key):
                native[key] = body[key]
        return native

    @staticmethod
    def _v1_choice(answer, field, tool_call_sent=False):
        """One choice of a chat completion (field "message") or of a chunk (field "delta")."""
        message = answer.get("message") or {}
        calls = [
            {
                "id": c.get("id", ""),
                "index": (c.get("function") or {}).get("index", 0),
                "type": "function",
                "function": {
                    "name": (c.get("function") or {}).get("name", ""),
                    "arguments": json.dumps((c.get("function") or {}).get("arguments") or {}, separators=(",", ":")),
                },
            }
            for c in message.get("tool_calls") or []
        ]
        out = {
            "role": "assistant" if field == "delta" else message.get("role", ""),
            "content": message.get("content", ""),
        }
        if message.get("thinking"):
            out["reasoning"] = message["thinking"]
        if calls:
            out["tool_calls"] = calls
        reason = answer.get("done_reason") or None
        if reason and (calls or tool_call_sent):
            reason = "tool_calls"
        choice = {"index": 0, field: out, "finish_reason": reason}
        if answer.get("logprobs"):
            choice["logprobs"] = {"content": answer["logprobs"]}
        return choice

    def _v1_chat(self, start_response, body, environ, raw):
        if not body.get("messages"):
            return self._openai_error(start_response, 400, "[] is too short - 'messages'")
        try:
            native = self._v1_chat_request(body)
        except ValueError as e:
            return self._openai_error(start_response, 400, str(e))
        status, media_type, out = self._native(FakeOllama._chat, native, environ)
        if status != 200:
            return self._openai_error(start_response, status, json.loads(b"".join(out))["error"])
        ident = f"chatcmpl-{random.randrange(999)}"

        def usage(answer):
            prompt, completion = answer.get("prompt_eval_count", 0), answer.get("eval_count", 0)
            return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

        if not body.get("stream"):
            answer = json.loads(b"".join(out))
            completion = {
                "id": ident,
                "object": "chat.completion",
                "created": _unix(answer["created_at"]),
                "model": answer["model"],
                "system_fingerprint": "fp_ollama",
                "choices": [self._v1_choice(answer, "message")],
                "usage": usage(answer),
            }
            if answer.get("_debug_info"):
                completion["_debug_info"] = answer["_debug_info"]
            return self._json(start_response, 200, completion, content_type="application/json")

        def events():
            sent_calls = False
            try:
                for piece in out:
                    for line in piece.splitlines():
                        if not line.strip():
                            continue
                        answer = json.loads(line)
                        chunk = {
                            "id": ident,
                            "object": "chat.completion.chunk",
                            "created": int(time.time()),
                            "model": answer.get("model", ""),
                            "system_fingerprint": "fp_ollama",
                            "choices": [self._v1_choice(answer, "delta", sent_calls)],
                        }
                        sent_calls = sent_calls or bool(chunk["choices"][0]["delta"].get("tool_calls"))
                        yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
                        if answer.get("done"):
                            if (body.get("stream_options") or {}).get("include_usage"):
                                chunk = dict(chunk, choices=[], usage=usage(answer))
                                yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
                            yield b"data: [DONE]\n\n"
            finally:
                if hasattr(out, "close"):
                    out.close()

        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return events()

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
        ("POST", "/api/push"): _push,
        ("POST", "/api/web_search"): _web_search,
        ("POST", "/api/web_fetch"): _web_fetch,
        ("POST", "/api/copy"): _copy,
        ("DELETE", "/api/delete"): _delete,
        ("POST", "/api/create"): _create,
        ("GET", "/v1/models"): _v1_models,
        ("POST", "/v1/embeddings"): _v1_embeddings,
        ("POST", "/v1/chat/completions"): _v1_chat,
    }

    # The Go types Ollama binds each request body to (for "missing request body" and type errors).
    REQUEST_TYPES = {
        "/api/generate": "api.GenerateRequest",
        "/api/chat": "api.ChatRequest",
        "/api/embed": "api.EmbedRequest",
        "/api/embeddings": "api.EmbeddingRequest",
        "/api/pull": "api.PullRequest",
        "/api/push": "api.PushRequest",
        "/api/create": "api.CreateRequest",
        "/api/show": "api.ShowRequest",
        "/api/copy": "api.CopyRequest",
        "/api/delete": "api.DeleteRequest",
        "/v1/chat/completions": "openai.ChatCompletionRequest",
        "/v1/embeddings": "openai.EmbedRequest",
    }
    KEEP_ALIVE_ROUTES = {"/api/generate", "/api/chat", "/api/embed", "/api/embeddings"}


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
        if self.headers.get("Authorization") is not None:
            environ["HTTP_AUTHORIZATION"] = self.headers["Authorization"]
        state = {}

        def start_response(status, headers, exc_info=None):
            state["head"] = (status, headers)

        body = self.server.app(environ, start_response)
        status, headers = state["head"]
        chunked = not any(k.lower() == "content-length" for k, _ in headers)
        fake = self.server.app  # the FakeOllama itself
        silent = fake.silence if chunked and status.startswith("200") else 0.0
        try:
            if silent and fake.silence_before_headers and not self._quiet(silent):
                return self._gone(fake)
            self.send_response(int(status.split()[0]))
            for key, value in headers:
                self.send_header(key, value)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            if silent and not fake.silence_before_headers and not self._quiet(silent):
                return self._gone(fake)
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

    def _quiet(self, seconds):
        """Say nothing for `seconds`, watching the socket: False as soon as the client closes it."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], left)
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return False
                except OSError:
                    return False
                time.sleep(min(0.01, left))
        return True

    def _gone(self, fake):
        """The client left while the stream was silent: count it, as a stream closed early."""
        with fake._lock:
            fake.streams_aborted += 1
        fake.note_abort()
        self.close_connection = True

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = _run


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app, port):
        super().__init__(("127.0.0.1", port), _Handler)
        self.app = app
        self.port = self.server_address[1]

    def handle_error(self, request, client_address):
        # The server under test hanging up mid-answer is what many tests provoke: no traceback for it.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


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
