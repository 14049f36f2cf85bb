"""The peer for bench/run.py: the same tools as a proxy on the official SDK's server.

`mcp.server.mcpserver.MCPServer` (FastMCP before mcp 2) over Streamable HTTP on uvicorn, with
an async httpx client (keep-alive) to Ollama. Only what the benchmark calls:

    python bench/peer_fastmcp.py --port 0 --ollama-url http://127.0.0.1:11434
"""

import argparse
import asyncio
import json
import socket
import sys

import httpx2 as httpx
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

OLLAMA = "http://127.0.0.1:11434"
server = MCPServer("ollama-peer")
_client = None


def client():
    global _client
    if _client is None:
        _client = httpx.AsyncClient(base_url=OLLAMA, timeout=300)
    return _client


@server.tool()
async def ollama_list_models() -> dict:
    """List installed models."""
    r = await client().get("/api/tags")
    r.raise_for_status()
    models = r.json().get("models") or []
    return {"models": [{"name": m["name"], "size": m.get("size")} for m in models], "count": len(models)}


async def _generate(model, prompt, options, ctx=None):
    text, final, count = [], {}, 0
    async with client().stream(
        "POST", "/api/generate", json={"model": model, "prompt": prompt, "options": options or {}, "stream": True}
    ) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line:
                continue
            chunk = json.loads(line)
            piece = chunk.get("response") or ""
            if piece:
                text.append(piece)
                count += 1
                if ctx is not None:
                    await ctx.report_progress(count, None, piece)
            if chunk.get("done"):
                final = chunk
    return {"response": "".join(text), "done_reason": final.get("done_reason"), "eval_count": final.get("eval_count")}


@server.tool()
async def ollama_generate(model: str, prompt: str, options: dict | None = None) -> dict:
    """Complete a prompt."""
    return await _generate(model, prompt, options)


@server.tool()
async def ollama_generate_stream(model: str, prompt: str, ctx: Context, options: dict | None = None) -> dict:
    """Complete a prompt, streaming tokens as progress notifications."""
    return await _generate(model, prompt, options, ctx)


@server.tool()
async def ollama_batch_generate(
    model: str, prompts: list[str], options: dict | None = None, concurrency: int = 4
) -> dict:
    """Run many prompts with bounded concurrency."""
    gate = asyncio.Semaphore(concurrency)

    async def one(p):
        async with gate:
            return await _generate(model, p, options)

    return {"results": await asyncio.gather(*(one(p) for p in prompts))}


def main():
    global OLLAMA
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ollama-url", default=OLLAMA)
    args = p.parse_args()
    OLLAMA = args.ollama_url
    sock = socket.socket()
    sock.bind(("127.0.0.1", args.port))
    app = server.streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    print(f"PEER_URL=http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
