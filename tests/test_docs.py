"""Documentation that is generated or must list every tool stays in step with the code."""

import importlib.util
import json

import pytest

import ollama_mcp
from conftest import ROOT


def load_script(name):
    """A script of docs/ as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_reference_is_up_to_date():
    generator = load_script("make_tool_reference")
    assert (ROOT / "docs" / "tool_reference.md").read_text() == generator.render(), (
        "run: python docs/make_tool_reference.py"
    )


def test_readme_tools_table_lists_every_tool():
    readme = (ROOT / "README.md").read_text()
    missing = [t.name for t in ollama_mcp.BUILTIN_TOOLS if f"| `{t.name}` |" not in readme]
    assert missing == []


def test_readme_settings_table_and_env_example_are_up_to_date():
    generator = load_script("make_settings")
    readme = (ROOT / "docs" / "configuration.md").read_text()
    assert generator.readme_with_table(readme) == readme, "run: python docs/make_settings.py"
    assert (ROOT / ".env.example").read_text() == generator.env_example(), "run: python docs/make_settings.py"
    for name in ollama_mcp.VARIABLES:
        assert f"| `{name}` |" in readme and f"\n{name}=" in generator.env_example(), name


def python_blocks(path):
    """The ```python blocks of a Markdown file."""
    text = path.read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


@pytest.mark.slow
def test_every_api_reference_example_runs(fake, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("OLLAMA_HOST", fake.url)
    monkeypatch.setenv("MCP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MCP_TOOLS_DIR", str(tmp_path / "none"))
    blocks = python_blocks(ROOT / "docs" / "api_reference.md")
    assert len(blocks) == 5
    for block in blocks:
        exec(compile(block, "api_reference.md", "exec"), {"__name__": "example"})
    out = capsys.readouterr().out
    assert "0.24.0" in out and "The sky" in out and "tools" in out and "['2026-07-28']" in out


def test_the_api_reference_names_only_public_names():
    text = (ROOT / "docs" / "api_reference.md").read_text()
    for name in (
        "make_app",
        "McpServer",
        "OllamaClient",
        "load_config",
        "Config",
        "tool",
        "strict_object",
        "open_object",
    ):
        assert name in ollama_mcp.__all__ and f"`{name}" in text, name


def example_calls():
    """(tool, arguments) of every example in docs/examples.md."""
    text = (ROOT / "docs" / "examples.md").read_text()
    calls = []
    for section in text.split("\n## `")[1:]:
        name = section.split("`", 1)[0]
        call = section.split("Call:\n\n```json\n", 1)[1].split("\n```", 1)[0]
        calls.append((name, json.loads(call)))
    return calls


def test_examples_cover_every_tool_with_valid_arguments():
    calls = example_calls()
    tools = {t.name: t for t in ollama_mcp.BUILTIN_TOOLS}
    assert sorted({name for name, _ in calls}) == sorted(tools), "python docs/make_examples.py --ollama URL"
    for name, arguments in calls:
        tools[name].check_arguments(arguments)  # raises ToolError naming the argument that changed


def test_examples_are_what_the_script_calls():
    module = load_script("make_examples")
    assert example_calls() == [(name, args) for name, args in module.CALLS]
