"""LangChain: MultiServerMCPClient.get_tools over Streamable HTTP, convert_to_openai_tool(strict=True) on every
tool, ChatOpenAI.bind_tools(strict=True) on a mocked transport, and the tools invoked as an agent's tool node does.

ChatOpenAI's OpenAI client has a mocked HTTP transport: it records the request and answers with one assistant turn
that calls ollama_list_models and ollama_generate (optionals unset). Each call is then run through the tool object
with `tool.ainvoke(tool_call)` (what LangGraph's ToolNode does), which returns a ToolMessage whose artifact holds
the structured content. Last, generate is invoked again with every optional argument present as None, as agents
built on LangChain send an unset optional (mcp-use's, for one).
"""

import copy
import json

import httpx2
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_openai import ChatOpenAI

from _common import CALLS, GENERATE_CALL, GENERATE_NULLS, ModelTransport, describe, main

DISTRIBUTIONS = ["langchain-mcp-adapters", "langchain-core", "langchain-openai", "openai", "mcp"]


def tool_calls_turn(body):
    calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        for i, (name, args) in enumerate(CALLS)
    ]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    choice = {"index": 0, "finish_reason": "tool_calls", "message": message}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4.1", "choices": [choice]} | {
        "usage": usage
    }


def closed_open_objects(before, after, path="$"):
    """Where strict conversion turned an object that accepts other keys into one that accepts none."""
    found = []
    if isinstance(before, dict) and isinstance(after, dict):
        was_open = before.get("type") == "object" and before.get("additionalProperties", True) is not False
        if was_open and not before.get("properties") and after.get("additionalProperties") is False:
            found.append(path)
        for key, value in before.items():
            if key in after and isinstance(value, (dict, list)):
                found += closed_open_objects(value, after[key], f"{path}.{key}")
    elif isinstance(before, list) and isinstance(after, list):
        for i, (b, a) in enumerate(zip(before, after, strict=False)):
            found += closed_open_objects(b, a, f"{path}[{i}]")
    return found


async def call_through_tool(tool, call_id, args, report, via):
    try:
        message = await tool.ainvoke({"name": tool.name, "args": args, "id": call_id, "type": "tool_call"})
    except Exception as exc:
        report.call(tool.name, args, error=describe(exc))
    else:
        artifact = message.artifact or {}
        structured = artifact.get("structured_content") if isinstance(artifact, dict) else None
        text = message.content if isinstance(message.content, str) else json.dumps(message.content)
        error = None
        if message.status == "error" or structured is None:
            error = f"tool message status {message.status!r}: {text[:500]}"
        report.call(tool.name, args, structured=structured, text=text, error=error)
    report.data["calls"][-1]["via"] = via


async def run(url, report):
    client = MultiServerMCPClient({"ollama": {"transport": "streamable_http", "url": url}})
    tools = await client.get_tools()
    report.data["tools"] = [tool.name for tool in tools]
    by_name = {tool.name: tool for tool in tools}

    for tool in tools:
        try:
            converted = convert_to_openai_tool(tool, strict=True)
        except Exception as exc:
            report.conversion("convert_to_openai_tool(strict=True)", tool.name, error=describe(exc))
            continue
        function = converted["function"]
        report.conversion(
            "convert_to_openai_tool(strict=True)",
            tool.name,
            schema=function.get("parameters"),
            strict=function.get("strict"),
        )
        closed = closed_open_objects(copy.deepcopy(tool.args_schema), function.get("parameters"))
        report.data["conversions"]["convert_to_openai_tool(strict=True)"][tool.name]["closed_open_objects"] = closed

    mock = ModelTransport(httpx2, "openai", "chat.completions", [tool_calls_turn])
    model = ChatOpenAI(
        model="gpt-4.1",
        api_key="sk-test",
        base_url="http://model.test/v1",
        max_retries=0,
        http_async_client=httpx2.AsyncClient(transport=mock.transport),
    )
    try:
        reply = await model.bind_tools(tools, strict=True).ainvoke("List my models, then ask gemma a question.")
    except Exception as exc:
        report.error("ChatOpenAI.bind_tools(strict=True).ainvoke", exc)
        reply = None
    report.data["requests"] = mock.requests

    for call in reply.tool_calls if reply is not None else []:
        await call_through_tool(by_name[call["name"]], call["id"], call["args"], report, "model tool call")
    if reply is None:
        for index, (name, args) in enumerate(CALLS):
            await call_through_tool(by_name[name], f"direct_{index}", args, report, "tool.ainvoke")

    name, args = GENERATE_CALL
    with_nulls = args | dict.fromkeys(GENERATE_NULLS)
    await call_through_tool(by_name[name], "nulls", with_nulls, report, "tool.ainvoke, unset optionals as None")


if __name__ == "__main__":
    main("langchain", DISTRIBUTIONS, run)
