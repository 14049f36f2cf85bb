"""The layout of ollama_mcp.py as its header promises: numbered sections in dependency order,
each using only the names of the sections above it (and its own)."""

import ast
import builtins
import functools
import re
from pathlib import Path

import ollama_mcp

SOURCE = Path(ollama_mcp.__file__).read_text()
BANNER = re.compile(r"^# (\d+)\. (.+)$", re.M)


@functools.cache
def sections():
    """((number, title, first line, last line), ...) of the module's banners."""
    found = [(int(m.group(1)), m.group(2), SOURCE.count("\n", 0, m.start()) + 1) for m in BANNER.finditer(SOURCE)]
    ends = [line - 1 for _, _, line in found[1:]] + [SOURCE.count("\n") + 1]
    return tuple((n, title, start, end) for (n, title, start), end in zip(found, ends, strict=True))


def section_of(line):
    return next((n for n, _, start, end in sections() if start <= line <= end), 0)


def top_level_names(tree):
    """name -> the line where the module defines it (functions, classes, assignments)."""
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node.lineno
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        names.setdefault(name.id, node.lineno)
    return names


def test_the_sections_are_numbered_in_order_and_listed_in_the_header():
    numbers = [n for n, _, _, _ in sections()]
    assert numbers == list(range(1, len(numbers) + 1))
    header = ollama_mcp.__doc__
    for n, title, _, _ in sections():
        assert f"{n}. {title.lower()}" in " ".join(header.lower().split()), (n, title)


def test_each_section_uses_only_the_sections_above_it():
    tree = ast.parse(SOURCE)
    defined = top_level_names(tree)
    later = []
    for node in tree.body:
        user = section_of(node.lineno)
        for name in ast.walk(node):
            if isinstance(name, ast.Name) and name.id in defined and not hasattr(builtins, name.id):
                where = section_of(defined[name.id])
                if where > user:
                    later.append(f"{name.id} (section {where}) used in section {user}, line {name.lineno}")
    assert later == [], "\n".join(sorted(set(later)))


def test_the_transports_leave_the_protocol_to_the_dispatcher():
    # Eras, sessions, method tables and error statuses are decided in McpServer.open(); a transport
    # frames bytes, says who is asking, and supplies notify() and peer_gone().
    n, _, start, end = next(s for s in sections() if s[1] == "Transports")
    text = "\n".join(SOURCE.splitlines()[start:end])
    for name in ("RPC_HANDLERS", "is_modern", "PROTOCOL_VERSIONS", "MODERN_ERROR_STATUS", "RequestContext", "sessions",
                 "handle", "handle_batch", "Session"):  # fmt: skip
        assert not re.search(rf"(?<![A-Za-z_-]){name}\b", text), f"section {n} uses {name}"


def test_the_built_in_catalogue_uses_only_the_public_api():
    # What the built-in tools, resources and prompts use of the core, a tool pack can use too.
    tree = ast.parse(SOURCE)
    defined = top_level_names(tree)
    appendix = {n for n, title, _, _ in sections() if title.startswith("Built-in")}
    assert len(appendix) == 2
    private = set()
    for node in tree.body:
        if section_of(node.lineno) in appendix:
            for name in ast.walk(node):
                outside = isinstance(name, ast.Name) and section_of(defined.get(name.id, 0)) not in appendix | {0}
                if outside and name.id not in ollama_mcp.__all__:
                    private.add(name.id)
    assert private == set(), f"the catalogue uses names outside __all__: {sorted(private)}"


def test_every_public_name_exists():
    assert [name for name in ollama_mcp.__all__ if not hasattr(ollama_mcp, name)] == []
