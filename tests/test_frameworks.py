"""Agent frameworks from PyPI, as a new user plugs this server into them (issue 18).

Each framework runs in a venv of its own (tests/frameworks/build_venvs.py, cached outside the repository; `.ci/run`
builds them first), driven by tests/frameworks/drive_<name>.py against a live server on the fake Ollama, over a
real socket. A driver converts every tool the way its framework does before a model call, builds the model
request(s) the framework would send, captured by a mocked model transport (never a hosted model), and calls tools
through the framework's own tool objects; it writes a JSON report (tests/frameworks/_common.py says its shape)
that these tests read. A provider accepting a captured request is judged by schema_rules, the schema lint's rules.
"""

import json
import subprocess
import sys

import pytest
import schema_rules

import ollama_mcp
from conftest import ROOT, LiveServer, structured
from fake_ollama import FakeOllama

FRAMEWORKS_DIR = ROOT / "tests" / "frameworks"
sys.path.insert(0, str(FRAMEWORKS_DIR))

import _common  # noqa: E402
import build_venvs  # noqa: E402

pytestmark = [pytest.mark.frameworks, pytest.mark.slow]  # a venv and a driver process per framework
DRIVER_TIMEOUT = 300


class Run:
    """One framework's driver run: its report, and the server and fake it ran against."""

    def __init__(self, name, report, server, fake):
        self.name, self.report, self.server, self.fake = name, report, server, fake

    def failures(self, items):
        return f"{self.name} ({self.report['versions']}):\n" + "\n".join(items)


class Runs:
    """The driver runs of the frameworks this session's tests use: all started at once (each its own process, with
    its own fake Ollama and server), each awaited on first use; the servers stop with the module."""

    def __init__(self, tmp_path_factory, names):
        self.tmp_path_factory = tmp_path_factory
        self.started = {}
        self.done = {}
        self.stops = []
        for name in names:
            try:
                python, _ = build_venvs.ensure(name)
            except (build_venvs.BuildError, subprocess.SubprocessError, OSError) as exc:
                self.done[name] = f"the {name} venv could not be built (no package registry?): {exc}"
            else:
                self.started[name] = self._start(name, python)

    def _start(self, name, python):
        tmp = self.tmp_path_factory.mktemp(name)
        fake = FakeOllama().start()
        self.stops.append(fake.stop)
        config = ollama_mcp.Config(
            host="127.0.0.1",
            port=0,
            ollama_url=fake.url,
            ollama_retries=0,
            tools_dir=str(tmp / "no-packs"),
            data_dir=str(tmp / "data"),
        )
        server = LiveServer(config)
        self.stops.append(server.stop)
        with open(tmp / "stderr.txt", "w") as stderr:  # a file, not a pipe: a chatty driver never blocks on it
            proc = subprocess.Popen(
                [str(python), str(FRAMEWORKS_DIR / f"drive_{name}.py"), server.url, str(tmp / "report.json")],
                cwd=FRAMEWORKS_DIR,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.stops.append(lambda: (proc.kill(), proc.wait()))  # a run the session never awaited (-x, Ctrl-C)
        return proc, tmp, server, fake

    def _finish(self, name):
        proc, tmp, server, fake = self.started.pop(name)
        try:
            proc.wait(timeout=DRIVER_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
        out = tmp / "report.json"
        if not out.exists():
            stderr = (tmp / "stderr.txt").read_text()[-4000:]
            return AssertionError(f"{name} driver wrote no report (exit {proc.returncode}):\n{stderr}")
        return Run(name, json.loads(out.read_text()), server, fake)

    def get(self, name):
        if name not in self.done:
            self.done[name] = self._finish(name)
        if isinstance(self.done[name], str):
            pytest.skip(self.done[name])
        if isinstance(self.done[name], Exception):
            raise self.done[name]  # a driver that wrote no report fails each of its tests, and is not run again
        return self.done[name]

    def stop(self):
        for stop in reversed(self.stops):
            stop()


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    wanted = {"openai_agents"} if any("openai_agents_" in item.name for item in request.session.items) else set()
    wanted |= {item.callspec.params["run"] for item in request.session.items if "run" in item.fixturenames}
    made = Runs(tmp_path_factory, [name for name in build_venvs.FRAMEWORKS if name in wanted])
    yield made
    made.stop()


@pytest.fixture(scope="module", params=build_venvs.FRAMEWORKS)
def run(request, runs):
    return runs.get(request.param)


def list_tools(run):
    client = run.server.client()
    client.initialize()
    response, _ = client.request("tools/list")
    return response["result"]["tools"]


def expected_result(run, tool, arguments):
    """What the server answers for the same call made directly (the unset arguments left out)."""
    client = run.server.client()
    client.initialize()
    result, _ = client.call(tool, {k: v for k, v in arguments.items() if v is not None})
    return structured(result)


def provider_problems(provider, tool):
    """What the provider would refuse in one tool of a captured request body (schema_rules)."""
    if provider == "anthropic":
        return schema_rules.anthropic_problems(tool.get("input_schema") or {})
    function = tool.get("function", tool)  # Chat Completions nests the function; Responses does not
    schema = function.get("parameters") or {}
    if not function.get("strict"):
        return schema_rules.openai_problems(schema)
    problems = schema_rules.openai_strict_problems(schema)
    outcome, reason = schema_rules.openai_strict_outcome(schema)
    if outcome != "strict":
        problems.append(f"sent with strict: true, but not a strict schema: {reason}")
    return problems


def tool_name(tool):
    return tool.get("name") or tool.get("function", {}).get("name")


def test_the_framework_lists_every_published_tool(run):
    published = {tool["name"] for tool in list_tools(run)}
    assert set(run.report["tools"]) == published, run.failures([f"listed {sorted(run.report['tools'])}"])


def test_the_framework_converts_every_tool_without_error(run):
    conversions = run.report["conversions"]
    assert conversions, run.failures(["no conversion recorded"] + [e["error"] for e in run.report["errors"]])
    failed = [
        f"{converter}: {tool}: {outcome['error']}"
        for converter, tools in conversions.items()
        for tool, outcome in tools.items()
        if not outcome["ok"]
    ]
    missing = [
        f"{converter}: {tool}: not converted"
        for converter, tools in conversions.items()
        for tool in set(run.report["tools"]) - set(tools)
    ]
    assert not failed + missing, run.failures(failed + missing)


def test_the_agent_run_completes_without_error(run):
    errors = [f"{e['stage']}: {e['error']}" for e in run.report["errors"]]
    assert not errors, run.failures(errors)


def test_every_model_request_carries_every_tool(run):
    requests = run.report["requests"]
    assert requests, run.failures(["no model request was built"] + [e["error"] for e in run.report["errors"]])
    short = [
        f"{r['api']} request {i}: {len(r['body'].get('tools') or [])} tools"
        for i, r in enumerate(requests)
        if not set(run.report["tools"]) <= {tool_name(t) for t in r["body"].get("tools") or []}
    ]
    assert not short, run.failures(short)


def test_every_model_request_would_be_accepted_by_its_provider(run):
    problems, seen = [], set()
    for request in run.report["requests"]:
        for tool in request["body"].get("tools") or []:
            key = (request["provider"], request["api"], json.dumps(tool, sort_keys=True))
            if tool_name(tool) == "final_answer" or key in seen:  # smolagents' own tool, not ours
                continue
            seen.add(key)
            for problem in provider_problems(request["provider"], tool):
                problems.append(f"{request['provider']} {request['api']}: {tool_name(tool)}: {problem}")
    assert run.report["requests"], run.failures(["no model request was built"])
    assert not problems, run.failures(problems[:40] + [f"... {len(problems)} problems in all"])


def test_tool_calls_through_the_framework_return_the_structured_result(run):
    calls = run.report["calls"]
    assert calls, run.failures(["no tool call was made"])
    wrong = []
    for call in calls:
        where = f"{call['tool']} via {call.get('via', run.name)} with {sorted(call['arguments'])}"
        if not call["ok"]:
            wrong.append(f"{where}: {call['error']}")
        elif call["structured"] != expected_result(run, call["tool"], call["arguments"]):
            wrong.append(f"{where}: {json.dumps(call['structured'])[:300]}")
    assert not wrong, run.failures(wrong)


def test_every_planned_call_was_made_through_the_framework(run):
    made = {call["tool"] for call in run.report["calls"]}
    assert {name for name, _ in _common.CALLS} <= made, run.failures([f"calls made: {sorted(made)}"])


def test_openai_agents_sends_strict_exactly_the_tools_the_lint_predicts(runs):
    """The lint's model of openai-agents' strict conversion (schema_rules.openai_strict_outcome) against the SDK."""
    agents = runs.get("openai_agents")
    published = {tool["name"]: tool["inputSchema"] for tool in list_tools(agents)}
    differ = []
    for name, outcome in agents.report["conversions"]["strict"].items():
        predicted, reason = schema_rules.openai_strict_outcome(published[name])
        if (predicted == "strict") != bool(outcome["strict"]):
            differ.append(
                f"{name}: SDK strict={outcome['strict']} ({outcome.get('fallback')}), lint {predicted} ({reason})"
            )
    assert not differ, agents.failures(differ)


def test_an_optional_argument_sent_as_null_reaches_ollama_as_not_given(run):
    sent = run.fake.bodies("/api/generate")
    assert sent, run.failures(["no generate call reached the fake Ollama"])
    nulls = [f"{key}: null in {sorted(body)}" for body in sent for key, value in body.items() if value is None]
    assert not nulls, run.failures(nulls)
