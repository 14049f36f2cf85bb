"""Write docs/tool_reference.md from the tool registry, the resources and the prompts.

    python docs/make_tool_reference.py          # rewrite the file
    python docs/make_tool_reference.py --check  # exit 1 when the file is stale

tests/test_docs.py fails when the committed file differs from what this renders.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ollama_mcp  # noqa: E402

TARGET = ROOT / "docs" / "tool_reference.md"


def _type(schema):
    if "enum" in schema:
        return " \\| ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and "items" in schema:
        return f"array of {_type(schema['items'])}"
    return kind


def _hints(annotations):
    flags = [
        name
        for name, key in (
            ("read-only", "readOnlyHint"),
            ("destructive", "destructiveHint"),
            ("idempotent", "idempotentHint"),
            ("open world", "openWorldHint"),
        )
        if annotations.get(key)
    ]
    return ", ".join(flags) or "changes state"


def render():
    """The Markdown reference of every built-in tool, in registry order."""
    lines = [
        "# Tool reference",
        "",
        f"The {len(ollama_mcp.BUILTIN_TOOLS)} built-in tools of ollama-mcp {ollama_mcp.__version__}, generated from "
        "the registry",
        "by `python docs/make_tool_reference.py`. Each returns `structuredContent` matching its output",
        "schema and the same JSON as a text block; a failure is a result with `isError: true`.",
        "",
    ]
    for t in ollama_mcp.BUILTIN_TOOLS:
        lines += [f"## `{t.name}`: {t.title}", "", t.description, "", f"Hints: {_hints(t.annotations)}.", ""]
        props = t.input_schema.get("properties", {})
        required = set(t.input_schema.get("required", []))
        if props:
            lines += ["| Argument | Type | Required | Meaning |", "|---|---|---|---|"]
            for name, schema in props.items():
                meaning = schema.get("description", "").replace("|", "\\|")
                lines.append(f"| `{name}` | {_type(schema)} | {'yes' if name in required else ''} | {meaning} |")
        else:
            lines.append("No arguments.")
        outputs = ", ".join(f"`{k}`" for k in t.output_schema.get("properties", {}))
        lines += ["", f"Returns: {outputs}.", ""]
        mirrored = ", ".join(f"`{'.'.join(path)}` as `Mcp-Param-{name}`" for path, name in t.header_params)
        if mirrored:
            lines += [f"Over HTTP in protocol 2026-07-28 the client also sends {mirrored}.", ""]
    return "\n".join(lines + _options() + _resources_and_prompts())


def _options():
    """The typed table `options` is checked against: a model sees only an open object and its common keys."""
    lines = [
        "# Model options",
        "",
        "`options` of the generation and embedding tools. Published to models as an open object naming the",
        "common keys; every key is checked against this table, so a misspelt option is an error naming it.",
        "",
        "| Option | Type | Meaning |",
        "|---|---|---|",
    ]
    for name, schema in ollama_mcp.OPTIONS["properties"].items():
        meaning = schema.get("description", "").replace("|", "\\|")
        lines.append(f"| `{name}` | {_type(schema)} | {meaning} |")
    return lines + [""]


def _resources_and_prompts():
    lines = [
        "# Resources",
        "",
        "Readable in both protocol eras with `resources/read`; each is JSON (`application/json`) and is",
        "offered only while the tool named beside it is exposed. `resources/list` also lists every",
        "installed model as `ollama://models/<name>`. In protocol 2026-07-28 `subscriptions/listen`",
        "reports changes made through this server (`resourcesListChanged`, `resourceSubscriptions`).",
        "",
        "| URI | Name | What it holds | Follows |",
        "|---|---|---|---|",
    ]
    for r in ollama_mcp.RESOURCES:
        lines.append(f"| `{r.uri}` | {r.title} | {r.description} | `{r.tool}` |")
    for t in ollama_mcp.RESOURCE_TEMPLATES:
        lines.append(
            f"| `{t.uri_template}` (template) | {t.title} | {t.description} `completion/complete` offers values for "
            f"`{t.variable}`. | `{t.tool}` |"
        )
    lines += [
        "",
        "# Prompts",
        "",
        "Offered while the tool they lead to is exposed; model arguments complete to installed models.",
        "",
    ]
    for p in ollama_mcp.PROMPTS:
        lines += [
            f"## `{p.name}`: {p.title}",
            "",
            p.description,
            "",
            "| Argument | Required | Meaning |",
            "|---|---|---|",
        ]
        lines += [f"| `{name}` | {'yes' if required else ''} | {meaning} |" for name, meaning, required in p.arguments]
        lines += ["", f"Follows: `{p.tool}`.", ""]
    return lines


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if TARGET.exists() and TARGET.read_text() == text else 1)
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(ollama_mcp.BUILTIN_TOOLS)} tools)")
