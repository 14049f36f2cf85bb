"""Build (or reuse) one virtualenv per agent framework, for tests/test_frameworks.py.

The frameworks have conflicting dependencies, so each gets its own venv, made from its pinned
requirements file `tests/frameworks/<name>.txt` (every package of the venv, `==` pinned). A venv lives
in a cache folder outside the repository, `$OLLAMA_MCP_FRAMEWORKS_HOME/<name>-<hash>` (default
`~/.cache/ollama-mcp-frameworks`), where the hash covers the requirements file and the Python version:
an unchanged requirements file reuses its venv at no cost; a changed one builds a new venv and removes
the stale ones of that name. A venv counts as built once its `.complete` marker is written, after pip
has finished; builds take a lock per name, so an interrupted or concurrent build is never used half-made.

    python tests/frameworks/build_venvs.py [NAME ...]        build or reuse (all by default); print
                                                             one line "NAME PYTHON SECONDS" each
    python tests/frameworks/build_venvs.py --lock NAME ...   resolve NAME.in afresh and write NAME.txt

Standard library only: it runs under whichever Python runs the tests.
"""

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ["openai_agents", "pydantic_ai", "langchain", "smolagents", "mcp_use", "llama_index", "agno"]
CACHE_ENV = "OLLAMA_MCP_FRAMEWORKS_HOME"
PIP_TIMEOUT = 1500


def cache_home():
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ollama-mcp-frameworks")


def requirements(name):
    return HERE / f"{name}.txt"


def venv_dir(name):
    digest = hashlib.sha256(requirements(name).read_bytes())
    digest.update(f"{sys.version_info[:3]} {sys.executable}".encode())
    return cache_home() / f"{name}-{digest.hexdigest()[:16]}"


def venv_python(path):
    return Path(path) / "bin" / "python"


class BuildError(Exception):
    """The venv could not be built (no registry, a package that does not install); the message says why."""


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT, **kw)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise BuildError(f"{' '.join(map(str, cmd[:4]))} ... exited {proc.returncode}:\n" + "\n".join(tail))
    return proc.stdout


def _make_venv(path, requirement_args):
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True, timeout=300)
    pip = [str(venv_python(path)), "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    _run([*pip, "install", *requirement_args])


@contextlib.contextmanager
def _locked(name):
    cache_home().mkdir(parents=True, exist_ok=True)
    with open(cache_home() / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure(name):
    """The python of `name`'s venv, built first when missing; (python path, seconds spent building or 0)."""
    target = venv_dir(name)
    if (target / ".complete").exists():
        return venv_python(target), 0.0
    with _locked(name):
        if (target / ".complete").exists():
            return venv_python(target), 0.0
        started = time.monotonic()
        shutil.rmtree(target, ignore_errors=True)  # what an interrupted build left
        try:
            _make_venv(target, ["-r", str(requirements(name))])
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        (target / ".complete").write_text(f"{time.monotonic() - started:.1f}\n")
        for stale in cache_home().glob(f"{name}-*"):
            if stale != target and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        return venv_python(target), time.monotonic() - started


def lock(name):
    """Resolve `name`.in in a scratch venv and write every installed package, pinned, to `name`.txt."""
    source = HERE / f"{name}.in"
    with tempfile.TemporaryDirectory() as tmp:
        _make_venv(Path(tmp) / "v", ["-r", str(source)])
        frozen = _run([str(venv_python(Path(tmp) / "v")), "-m", "pip", "freeze", "--all", "--exclude", "pip"])
    header = (
        f"# Every package of the {name} venv, pinned: resolved from {source.name} by\n"
        f"# `python tests/frameworks/build_venvs.py --lock {name}` (Python {sys.version.split()[0]}).\n"
    )
    requirements(name).write_text(header + frozen)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=FRAMEWORKS)
    parser.add_argument("--lock", action="store_true", help="re-resolve NAME.in into NAME.txt")
    args = parser.parse_args(argv)
    failed = False
    for name in args.names:
        try:
            if args.lock:
                lock(name)
                print(name, requirements(name), flush=True)
            else:
                python, seconds = ensure(name)
                print(name, python, f"{seconds:.1f}", flush=True)
        except (BuildError, subprocess.SubprocessError, OSError) as exc:
            failed = True
            print(f"{name}: venv not built: {exc}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
