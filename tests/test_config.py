"""Configuration: flags over environment over .env, Ollama's OLLAMA_HOST forms, clear errors; the CLI."""

import logging
import os
import subprocess
import sys
import threading
import time
import warnings

import pytest

import ollama_mcp
from conftest import ROOT, wait_for
from ollama_mcp import ConfigError, load_config, parse_ollama_host


@pytest.mark.parametrize(
    "value, port, url",
    [
        ("", None, "http://127.0.0.1:11434"),
        ("localhost", None, "http://localhost:11434"),
        ("localhost", 9999, "http://localhost:9999"),
        ("gpu-box:11500", None, "http://gpu-box:11500"),
        (":5555", None, "http://127.0.0.1:5555"),
        ("0.0.0.0", None, "http://0.0.0.0:11434"),
        ("http://ollama.lan", None, "http://ollama.lan:80"),
        ("https://ollama.example.com", None, "https://ollama.example.com:443"),
        ("https://h:8443/ollama/", None, "https://h:8443/ollama"),
        ("[::1]:11434", None, "http://[::1]:11434"),
    ],
)
def test_ollama_host_forms(value, port, url):
    assert parse_ollama_host(value, port) == url


def test_ollama_host_rejects_other_schemes():
    with pytest.raises(ConfigError, match="OLLAMA_HOST"):
        parse_ollama_host("ftp://x")


def test_defaults():
    config = load_config({}, environ={}, env_file="")
    assert (config.host, config.port, config.ollama_url) == ("0.0.0.0", 4838, "http://127.0.0.1:11434")
    assert config.ollama_timeout == 300.0 and config.log_format == "text"


def test_flags_over_environment_over_dotenv(tmp_path):
    env_file = tmp_path / "x.env"
    env_file.write_text("MCP_PORT=1111\nMCP_HOST=10.0.0.1\nOLLAMA_HOST=dotenv-host\nLOG_LEVEL=debug\n")
    config = load_config(
        {"port": "3333"}, environ={"MCP_PORT": "2222", "OLLAMA_HOST": "env-host:1"}, env_file=str(env_file)
    )
    assert config.port == 3333
    assert config.host == "10.0.0.1"
    assert config.ollama_url == "http://env-host:1"
    assert config.log_level == "DEBUG"


def test_dotenv_in_an_untrusted_working_directory_is_not_read(tmp_path, monkeypatch):
    # An MCP client may start the stdio server inside any project: its .env must not steer us.
    (tmp_path / ".env").write_text("OLLAMA_HOST=attacker.example\nMCP_TOOLS_DIR=/tmp/evil\nMCP_MODEL_DIRS=/\n")
    monkeypatch.chdir(tmp_path)
    config = load_config({}, environ={})
    assert config.ollama_url == "http://127.0.0.1:11434"
    assert config.tools_dir == "" and config.model_dirs == ()


def test_dotenv_is_found_from_the_scripts_folder_upwards(tmp_path):
    (tmp_path / ".env").write_text("OLLAMA_HOST=from-dotenv\nOLLAMA_PORT=1234\n")
    script = tmp_path / "app" / "vendor" / "ollama_mcp.py"
    script.parent.mkdir(parents=True)
    found = ollama_mcp.find_env_file(script)
    assert found == str(tmp_path / ".env")
    assert load_config({}, environ={}, env_file=found).ollama_url == "http://from-dotenv:1234"


def test_split_form_host_and_port():
    assert (
        load_config({}, environ={"OLLAMA_HOST": "localhost", "OLLAMA_PORT": "11500"}, env_file="").ollama_url
        == "http://localhost:11500"
    )


def test_ollama_url_flag_wins():
    config = load_config({"ollama_url": "http://flag:1"}, environ={"OLLAMA_HOST": "env:2"}, env_file="")
    assert config.ollama_url == "http://flag:1"


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("MCP_PORT", "abc", "MCP_PORT: 'abc' is not a whole number"),
        ("MCP_PORT", "70000", "MCP_PORT: 70000 is out of range"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL: 'loud' is not one of"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("OLLAMA_TIMEOUT", "soon", "OLLAMA_TIMEOUT"),
        ("OLLAMA_PORT", "x", "OLLAMA_PORT"),
    ],
)
def test_bad_values_name_the_variable(name, value, words):
    with pytest.raises(ConfigError) as info:
        load_config({}, environ={name: value}, env_file="")
    assert words in str(info.value)


def test_a_bad_flag_is_named_as_the_flag():
    with pytest.raises(ConfigError, match="^--port: 'abc' is not a whole number"):
        load_config({"port": "abc"}, environ={}, env_file="")
    with pytest.raises(ConfigError, match="^--log-level: 'loud'"):
        load_config({"log_level": "loud"}, environ={}, env_file="")


def test_missing_env_file_is_an_error():
    with pytest.raises(ConfigError, match="--env-file"):
        load_config({}, environ={}, env_file="/nonexistent/.env")


def test_list_values():
    config = load_config(
        {},
        environ={"MCP_ALLOWED_ORIGINS": "https://a.example, https://b.example ,", "MCP_ALLOWED_HOSTS": "Box.LAN"},
        env_file="",
    )
    assert config.allowed_origins == ("https://a.example", "https://b.example")
    assert config.allowed_hosts == ("box.lan",)


def test_every_setting_is_declared_whole():
    for f in ollama_mcp.SETTINGS:
        assert f.metadata["variable"] and f.metadata["meaning"], f.name
        assert f.metadata["group"] in ollama_mcp.SETTING_GROUPS, f.name
    assert len(set(ollama_mcp.VARIABLES)) == len(ollama_mcp.VARIABLES)


def test_the_env_example_is_a_valid_configuration_of_the_defaults(tmp_path):
    defaults = load_config({}, environ={}, env_file="")
    assert load_config({}, environ={}, env_file=str(ROOT / ".env.example")) == defaults


# --- the command line -----------------------------------------------------------------------


def run_cli(*args, env=None, cwd=None):
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ""}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, str(ROOT / "ollama_mcp.py"), *args],
        capture_output=True,
        text=True,
        env=base,
        cwd=cwd,
        timeout=30,
    )


def test_cli_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"ollama-mcp {ollama_mcp.__version__}"


def test_cli_list_tools(tmp_path):
    r = run_cli("--list-tools", env={"MCP_TOOLS_DIR": str(tmp_path)})
    lines = r.stdout.splitlines()
    assert r.returncode == 0
    assert [line.split()[0] for line in lines] == [t.name for t in ollama_mcp.BUILTIN_TOOLS]


def test_cli_bad_value_stops_with_one_line(tmp_path):
    r = run_cli("--list-tools", env={"MCP_PORT": "abc"}, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == "ollama-mcp: configuration error: MCP_PORT: 'abc' is not a whole number"


def test_cli_check_when_ollama_answers(fake, tmp_path):
    r = run_cli("--check", "--ollama-url", fake.url, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Ollama: 0.24.0" in r.stdout and "gemma3:270m" in r.stdout and "OLLAMA_TIMEOUT" in r.stdout


def test_cli_check_when_ollama_is_down(tmp_path):
    r = run_cli("--check", "--ollama-url", "http://127.0.0.1:9", cwd=tmp_path)
    assert r.returncode == 1
    assert "NOT reachable at http://127.0.0.1:9" in r.stdout and "ollama serve" in r.stdout


def test_a_port_in_use_is_one_clear_line(tmp_path):
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        r = run_cli(
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ollama-url",
            "http://127.0.0.1:9",
            cwd=tmp_path,
            env={"MCP_TOOLS_DIR": str(tmp_path)},
        )
    finally:
        busy.close()
    assert r.returncode == 1  # werkzeug reports a busy port itself and exits
    assert f"Port {port} is in use" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_log_lines_leave_in_order_in_few_writes_and_never_wait_on_stderr():
    class SlowStream:
        writes = []

        def write(self, text):
            time.sleep(0.5)  # a full pipe: the reader is slow
            self.writes.append(text)

        def flush(self):
            pass

    handler = ollama_mcp._LogWriter(SlowStream())
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.Logger("test-writer")
    log.addHandler(handler)

    def say(thread):
        for i in range(50):
            log.info("%s %d", thread, i)

    started = time.monotonic()
    threads = [threading.Thread(target=say, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 0.4, "logging waited for the stream"
    handler.flush()  # what logging.shutdown() does at exit: everything waiting is written
    lines = "".join(SlowStream.writes).splitlines()
    assert len(lines) == 200 and len(SlowStream.writes) < 20
    for n in range(4):
        assert [line for line in lines if line.startswith(f"t{n} ")] == [f"t{n} {i}" for i in range(50)]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_writes_its_log_lines_too():
    read, write = os.pipe()
    handler = ollama_mcp._LogWriter(os.fdopen(write, "w"))
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.Logger("test-fork")
    log.addHandler(handler)
    with warnings.catch_warnings():  # Python 3.12+ warns of forking a process with threads: that is the case
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: no flush at exit, so only the writer thread can have written the line
        log.info("from the child")
        time.sleep(0.5)
        os._exit(0)
    os.waitpid(pid, 0)
    handler.stream.close()
    assert os.read(read, 1000) == b"from the child\n"


def test_while_stderr_is_not_read_waiting_lines_are_capped_and_the_rest_counted(monkeypatch):
    moving = threading.Event()

    class StuckStream:
        text = []

        def write(self, text):
            moving.wait(10)
            self.text.append(text)

        def flush(self):
            pass

    monkeypatch.setattr(ollama_mcp._LogWriter, "MAX_WAITING", 5)
    handler = ollama_mcp._LogWriter(StuckStream())
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.Logger("test-stuck")
    log.addHandler(handler)
    log.info("first")
    assert wait_for(lambda: not handler._pending), "the writer took the first line and is stuck writing it"
    for i in range(20):
        log.info("line %d", i)
    moving.set()
    handler.flush()
    lines = "".join(StuckStream.text).splitlines()
    assert lines == ["first"] + [f"line {i}" for i in range(5)] + [
        "15 log lines dropped: stderr was not read fast enough"
    ]
