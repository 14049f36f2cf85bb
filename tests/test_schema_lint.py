"""The published tool schemas, resource templates and prompts pass every provider's and client's rules.

What `tools/list` publishes is what agent frameworks convert and send to OpenAI, Anthropic and Gemini
on every turn: one refused tool fails every request. The rules live in tests/schema_rules.py, one
function per target, each with its source. `python tests/test_schema_lint.py` prints the counts.
"""

import collections
import json
import sys

import pytest
import schema_rules

import conftest
import ollama_mcp

MODEL_VIEW_BUDGET = 18_000  # bytes, issue 18: the whole catalogue a model reads on every turn


# The three ways in to what the server publishes: one line each to change if the names move.
def published_tools():
    return list(ollama_mcp.build_registry(ollama_mcp.Config(tools_dir=str(conftest.ROOT / "tools"))))


def resource_templates():
    return ollama_mcp.RESOURCE_TEMPLATES


def prompts():
    return ollama_mcp.PROMPTS


def published_input_schemas():
    """{tool name: the inputSchema tools/list publishes} (the published view, not the server's private one)."""
    return {t.name: t.spec()["inputSchema"] for t in published_tools()}


def lint(rule):
    """{tool name: [problem, ...]} for every published tool that breaks `rule`."""
    found = {}
    for name, schema in published_input_schemas().items():
        problems = rule(schema)
        if problems:
            found[name] = problems
    return found


def failure_report(target, found, shown=25):
    total = sum(len(p) for p in found.values())
    lines = [f"{target}: {total} problems in {len(found)} tools"]
    lines += [f"  {name}: {len(problems)}" for name, problems in sorted(found.items())]
    lines.append("first problems:")
    lines += [f"  {name} {p}" for name, problems in sorted(found.items()) for p in problems][:shown]
    return "\n".join(lines)


def model_view(spec):
    """What a model reads of one tool, as issue 18 measures it: default json.dumps, UTF-8."""
    view = {"name": spec["name"], "description": spec["description"], "inputSchema": spec["inputSchema"]}
    return json.dumps(view).encode("utf-8")


@pytest.mark.parametrize("target", sorted(schema_rules.TARGETS))
def test_every_published_input_schema_passes_the_rules_of(target):
    found = lint(schema_rules.TARGETS[target])
    assert not found, failure_report(target, found)


def test_every_tool_name_is_accepted_by_openai_anthropic_and_gemini():
    problems = [p for t in published_tools() for p in schema_rules.tool_name_problems(t.name)]
    assert not problems, "\n".join(problems)


def test_the_lint_sees_the_tool_packs_too():
    names = set(published_input_schemas())
    assert "ollama_rank_texts" in names  # tools/semantic_rank.py
    assert "ollama_chat" in names


def test_every_resource_template_is_rfc6570_level_1_with_the_variable_it_names():
    templates = resource_templates()
    assert templates
    problems = [p for t in templates for p in schema_rules.uri_template_problems(t.uri_template, t.variable)]
    assert not problems, "\n".join(problems)


def test_every_resource_template_expands_under_the_prefix_the_server_reads():
    for t in resource_templates():
        assert t.uri_template == f"{t.prefix}{{{t.variable}}}", t


def test_every_prompt_argument_has_an_identifier_name_and_a_description():
    entries = [(p.name, [{"name": n, "description": d, "required": r} for n, d, r in p.arguments]) for p in prompts()]
    assert entries
    problems = [
        problem for name, arguments in entries for problem in schema_rules.prompt_argument_problems(name, arguments)
    ]
    assert not problems, "\n".join(problems)


def test_every_prompt_has_a_name_clients_accept_and_a_description():
    for p in prompts():
        assert not schema_rules.tool_name_problems(p.name), p.name
        assert p.description.strip(), p.name


def test_the_model_view_of_the_whole_catalogue_fits_the_budget():
    sizes = {t.name: len(model_view(t.spec())) for t in published_tools()}
    total = sum(sizes.values())
    largest = ", ".join(f"{n} {b}" for n, b in sorted(sizes.items(), key=lambda kv: -kv[1])[:8])
    assert total <= MODEL_VIEW_BUDGET, f"{total} bytes for {len(sizes)} tools (budget {MODEL_VIEW_BUDGET}); {largest}"


# --- the rules themselves: each catches what it is for (so a green lint means something) ---------


def test_the_lookaround_scanner_skips_escapes_and_character_classes():
    assert schema_rules.lookarounds(r"^a$(?!\n)") == ["(?!"]
    assert schema_rules.lookarounds(r"(?<=x)y(?<!z)") == ["(?<=", "(?<!"]
    assert schema_rules.lookarounds(r"\(?=[(?=]") == []
    assert schema_rules.lookarounds(r"(?<name>a)") == []


def test_re2_and_ecma_refuse_what_their_engines_refuse():
    assert schema_rules.re2_problems({"pattern": "^a(?!b)"})
    assert schema_rules.ecma_problems({"pattern": r"\Z"})
    assert schema_rules.ecma_problems({"patternProperties": {r"(?P<n>x)": {}}})
    assert not schema_rules.re2_problems({"pattern": "^[A-Za-z0-9._-]{1,128}$"})
    assert not schema_rules.ecma_problems({"pattern": "^[A-Za-z0-9._-]{1,128}$"})


def test_openai_refuses_lookaround_root_combinators_and_arrays_without_items():
    schema = {
        "type": "object",
        "oneOf": [{"required": ["a"]}],
        "properties": {"a": {"type": "string", "pattern": "^x$(?!\\n)"}, "b": {"type": "array"}},
        "additionalProperties": False,
    }
    problems = "\n".join(schema_rules.openai_problems(schema))
    assert "$.properties.a.pattern: regex lookaround is not supported" in problems
    assert "$.oneOf: 'oneOf' is not allowed at the top level" in problems
    assert "$.properties.b: array schema missing items" in problems


def test_openai_agents_falls_back_to_non_strict_on_an_open_object_and_converts_a_closed_one():
    open_object = {"type": "object", "properties": {"format": {"type": "object", "additionalProperties": True}}}
    closed = {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False}
    assert schema_rules.openai_strict_outcome(open_object)[0] == "fallback"
    assert schema_rules.openai_strict_outcome(closed) == ("strict", None)
    assert schema_rules.agents_strict_conversion({"type": "object", "properties": {"n": {}}})["required"] == ["n"]
    assert schema_rules.openai_strict_problems(closed) == []


def test_openai_strict_refuses_not_after_conversion():
    schema = {"type": "object", "properties": {"s": {"type": "string", "not": {"const": "."}}}}
    assert any("'not' is not supported in strict mode" in p for p in schema_rules.openai_strict_problems(schema))


def test_anthropic_refuses_a_root_one_of_and_a_root_that_is_not_an_object():
    assert schema_rules.anthropic_problems({"type": "object", "oneOf": [{}, {}]})
    assert schema_rules.anthropic_problems({"type": "string"})
    assert schema_rules.anthropic_problems({"type": "object", "required": "model"})  # not 2020-12
    assert not schema_rules.anthropic_problems({"type": "object", "properties": {}, "additionalProperties": False})


def test_gemini_refuses_integer_enums_untyped_branches_const_and_x_keys():
    schema = {
        "type": "object",
        "properties": {
            "mirostat": {"type": "integer", "enum": [0, 1, 2]},
            "format": {"anyOf": [{"const": "json"}, {"type": "object"}]},
            "model": {"type": "string", "x-mcp-header": "Model"},
        },
    }
    problems = "\n".join(schema_rules.gemini_problems(schema))
    assert "$.properties.mirostat.enum: enum only allowed for STRING type" in problems
    assert "$.properties.format.anyOf[0]: no `type`" in problems
    assert "$.properties.format.anyOf[0].const: Gemini's Schema has no 'const' field" in problems
    assert "$.properties.model[\"x-mcp-header\"]: Gemini has no 'x-mcp-header' field" in problems


def test_the_portable_subset_wants_explicit_additional_properties_and_typed_branches():
    schema = {"type": "object", "properties": {"f": {"anyOf": [{"enum": ["low"]}, {"type": "object"}]}}}
    problems = "\n".join(schema_rules.portable_problems(schema))
    assert "$: an object schema without an explicit `additionalProperties`" in problems
    assert "$.properties.f.anyOf[0]: a union branch without a `type`" in problems
    assert "$.properties.f.anyOf[1]: an object schema without an explicit `additionalProperties`" in problems
    assert schema_rules.portable_problems({"type": "object", "additionalProperties": False, "x-private": 1})


def test_uri_templates_must_be_level_1_and_name_their_variable():
    assert not schema_rules.uri_template_problems("ollama://models/{name}", "name")
    assert schema_rules.uri_template_problems("ollama://models/{+name}", "name")
    assert schema_rules.uri_template_problems("ollama://models/{name}", "model")
    assert schema_rules.uri_template_problems("ollama://models/{a}{b}", "a")
    assert schema_rules.uri_template_problems("ollama://mod els/{name}", "name")


def counts():
    """{target: (problems, tools with problems)} over today's published tools."""
    result = collections.OrderedDict()
    for target in sorted(schema_rules.TARGETS):
        found = lint(schema_rules.TARGETS[target])
        result[target] = (sum(len(p) for p in found.values()), len(found))
    return result


if __name__ == "__main__":  # python tests/test_schema_lint.py: the per-target counts, and strict outcomes
    tools = published_input_schemas()
    print(f"{len(tools)} published tools")
    for target, (problems, affected) in counts().items():
        print(f"{target:14} {problems:5} problems in {affected:2} tools")
    outcomes = collections.Counter(schema_rules.openai_strict_outcome(s)[0] for s in tools.values())
    print("openai-agents strict conversion:", dict(outcomes))
    if "-v" in sys.argv:
        for target, rule in sorted(schema_rules.TARGETS.items()):
            print(failure_report(target, lint(rule), shown=10**6))
