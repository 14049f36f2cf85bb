"""Documentation that is generated or must list every tool stays in step with the code."""

import importlib.util

import ollama_mcp
from conftest import ROOT


def load_generator():
    spec = importlib.util.spec_from_file_location("make_tool_reference", ROOT / "docs" / "make_tool_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_reference_is_up_to_date():
    generator = load_generator()
    assert (ROOT / "docs" / "tool_reference.md").read_text() == generator.render(), "run: python docs/make_tool_reference.py"


def test_readme_tools_table_lists_every_tool():
    readme = (ROOT / "README.md").read_text()
    missing = [t.name for t in ollama_mcp.BUILTIN_TOOLS if f"| `{t.name}` |" not in readme]
    assert missing == []


def test_readme_configuration_table_lists_every_variable():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in list(ollama_mcp._ENV_FIELDS) + list(ollama_mcp._OTHER_VARIABLES) if f"| `{name}` |" not in readme]
    assert missing == []
