"""What every framework driver shares: the report it writes, the tool calls it makes, a mocked model transport.

A driver runs with its framework's venv python (`python driver.py SERVER_URL REPORT_PATH`) and imports only
this module besides its framework: no test code and no ollama_mcp. The report is one JSON object:

    framework    the driver's name
    versions     {distribution: version} of the packages that matter
    tools        the tool names the framework listed from the server
    conversions  {converter: {tool: {"ok": bool, "error": str|None, "strict": bool|None, "schema": ...}}}:
                 each tool as the framework's own conversion turned it into what a model request carries
    requests     [{"provider": "openai"|"anthropic", "api": ..., "url": ..., "body": {...}}]: the model
                 requests the framework built, captured by a mocked transport (never sent anywhere)
    calls        [{"tool", "arguments", "ok", "structured", "text", "error"}]: tool calls made through the
                 framework's own tool objects
    errors       [{"stage", "error", "traceback"}]: anything that raised outside a recorded conversion or call
"""

import asyncio
import inspect
import json
import logging
import sys
import traceback
from importlib import metadata

# The calls every driver makes: a tool without arguments, then generate with its optionals unset.
LIST_CALL = ("ollama_list_models", {})
GENERATE_CALL = ("ollama_generate", {"model": "gemma3:270m", "prompt": "Why is the sky blue?"})
CALLS = [LIST_CALL, GENERATE_CALL]
# What LangChain-style agents send for the same call: every optional argument present as null.
GENERATE_NULLS = ("system", "template", "suffix", "raw", "context", "format", "think", "keep_alive", "options")


def describe(exc):
    return f"{type(exc).__name__}: {exc}"


class Report:
    def __init__(self, framework, distributions):
        self.data = {
            "framework": framework,
            "versions": {},
            "tools": [],
            "conversions": {},
            "requests": [],
            "calls": [],
            "errors": [],
        }
        for dist in distributions:
            try:
                self.data["versions"][dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                self.data["versions"][dist] = None

    def error(self, stage, exc):
        self.data["errors"].append(
            {"stage": stage, "error": describe(exc), "traceback": "".join(traceback.format_exception(exc))}
        )

    def conversion(self, converter, tool, *, schema=None, error=None, strict=None):
        self.data["conversions"].setdefault(converter, {})[tool] = {
            "ok": error is None,
            "error": error,
            "strict": strict,
            "schema": schema,
        }

    def call(self, tool, arguments, *, structured=None, text=None, error=None):
        self.data["calls"].append(
            {"tool": tool, "arguments": arguments, "ok": error is None, "structured": structured, "text": text}
            | {"error": error}
        )

    def write(self, path):
        with open(path, "w") as f:
            json.dump(self.data, f, indent=1, default=repr)


class CapturedLog(logging.Handler):
    """Collects the records of a logger (frameworks that log a failed conversion and carry on)."""

    def __init__(self, logger_name, level=logging.DEBUG):
        super().__init__(level)
        self.records = []
        logger = logging.getLogger(logger_name)
        logger.addHandler(self)
        logger.setLevel(min(logger.level or level, level))

    def emit(self, record):
        self.records.append(record.getMessage())


class ModelTransport:
    """A mocked HTTP transport for a model client: records each request body and answers from a script.

    `answers` is a list of callables, one per expected request, each taking the parsed request body and
    returning the JSON response; a request past the script is answered 500 so the framework stops."""

    def __init__(self, httpx_module, provider, api, answers):
        self.provider = provider
        self.api = api
        self.answers = list(answers)
        self.requests = []
        self.httpx = httpx_module
        self.transport = httpx_module.MockTransport(self.handle)

    def handle(self, request):
        body = json.loads(request.content or b"null")
        self.requests.append({"provider": self.provider, "api": self.api, "url": str(request.url), "body": body})
        if not self.answers:
            return self.httpx.Response(500, json={"error": {"message": "no more canned answers", "type": "test"}})
        answer = self.answers.pop(0)(body)
        if self.provider == "anthropic" and isinstance(body, dict) and body.get("stream"):
            headers = {"Content-Type": "text/event-stream"}
            return self.httpx.Response(200, headers=headers, content=anthropic_stream(answer).encode())
        return self.httpx.Response(200, json=answer)


def anthropic_stream(message):
    """A Messages API answer as the server-sent events of `stream: true` (the SDK's raw stream event types)."""
    events = [("message_start", {"type": "message_start", "message": message | {"content": [], "stop_reason": None}})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            start, delta = (
                block | {"input": {}},
                {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
            )
        else:
            start, delta = block | {"text": ""}, {"type": "text_delta", "text": block["text"]}
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
        events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(("message_delta", {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 1}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def parse_json(text):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def main(framework, distributions, run):
    """argv: SERVER_URL REPORT_PATH. `run(url, report)` (a function or a coroutine function) does the work; the
    report is written whatever happens."""
    url, path = sys.argv[1], sys.argv[2]
    report = Report(framework, distributions)
    try:
        result = run(url, report)
        if inspect.iscoroutine(result):
            asyncio.run(result)
    except BaseException as exc:  # the report must say what went wrong, whatever it was
        report.error("driver", exc)
    finally:
        report.write(path)
