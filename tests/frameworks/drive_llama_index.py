"""llama-index: McpToolSpec over BasicMCPClient (Streamable HTTP), each tool a FunctionTool with a pydantic schema made
from its inputSchema, and the request llama-index's OpenAI LLM would send for them (mocked transport).

The mocked model answers one turn calling ollama_list_models, ollama_generate (optionals unset) and ollama_generate
with its optionals null, as the schema llama-index sends allows; each call is then run as llama-index's agents run
it, `FunctionTool.acall(**arguments)`.
"""

import json

import httpx
from llama_index.core.llms import ChatMessage
from llama_index.core.tools import ToolMetadata
from llama_index.llms.openai import OpenAI
from llama_index.tools.mcp import BasicMCPClient, McpToolSpec

from _common import CALLS, GENERATE_CALL, GENERATE_NULLS, ModelTransport, describe, main

DISTRIBUTIONS = ["llama-index-tools-mcp", "llama-index-core", "llama-index-llms-openai", "openai", "mcp"]
# llama-index tells the model every optional argument is nullable (anyOf [T, null], default null): a model may take
# it at its word, so the script's third call sends generate's optionals as null.
MODEL_CALLS = [*CALLS, (GENERATE_CALL[0], GENERATE_CALL[1] | dict.fromkeys(GENERATE_NULLS))]


def tool_calls_turn(body):
    calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        for i, (name, args) in enumerate(MODEL_CALLS)
    ]
    choice = {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None}}
    choice["message"]["tool_calls"] = calls
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4.1", "choices": [choice]} | {
        "usage": usage
    }


async def run(url, report):
    spec = McpToolSpec(client=BasicMCPClient(url))
    listed = await spec.fetch_tools()
    report.data["tools"] = [tool.name for tool in listed]
    # The conversion to_tool_list_async applies to each tool, one tool at a time (to_tool_list_async itself stops
    # at the first tool that fails), then the FunctionTools themselves.
    for tool in listed:
        try:
            model = spec.create_model_from_json_schema(tool.input_schema, model_name=f"{tool.name}_Schema")
            sent = ToolMetadata(name=tool.name, description=tool.description, fn_schema=model).to_openai_tool()
        except Exception as exc:
            report.conversion("McpToolSpec + to_openai_tool", tool.name, error=describe(exc))
        else:
            report.conversion("McpToolSpec + to_openai_tool", tool.name, schema=sent["function"].get("parameters"))
    try:
        tools = await spec.to_tool_list_async()
    except Exception as exc:
        report.error("McpToolSpec.to_tool_list_async", exc)
        tools = []

    mock = ModelTransport(httpx, "openai", "chat.completions", [tool_calls_turn])
    llm = OpenAI(
        model="gpt-4.1",
        api_key="sk-test",
        api_base="http://model.test/v1",
        max_retries=0,
        async_http_client=httpx.AsyncClient(transport=mock.transport),
    )
    try:
        history = [ChatMessage(role="user", content="List my models, then ask gemma a question.")]
        # allow_parallel_tool_calls: FunctionAgent's default; without it llama-index keeps the first call only
        response = await llm.achat_with_tools(tools, chat_history=history, allow_parallel_tool_calls=True)
        selections = llm.get_tool_calls_from_response(response, error_on_no_tool_call=True)
    except Exception as exc:
        report.error("OpenAI.achat_with_tools", exc)
        selections = []
    report.data["requests"] = mock.requests

    by_name = {tool.metadata.name: tool for tool in tools}
    for selection in selections:
        tool = by_name[selection.tool_name]
        try:
            output = await tool.acall(**selection.tool_kwargs)
        except Exception as exc:
            report.call(selection.tool_name, selection.tool_kwargs, error=describe(exc))
        else:
            result = output.raw_output
            # mcp 2 names the fields in snake case, mcp 1 as on the wire
            structured = getattr(result, "structured_content", getattr(result, "structuredContent", None))
            failed = getattr(result, "is_error", getattr(result, "isError", False))
            text = str(output.content)
            error = f"the call failed: {text[:500]}" if failed or structured is None else None
            report.call(selection.tool_name, selection.tool_kwargs, structured=structured, text=text, error=error)
            report.data["calls"][-1]["sent"] = output.raw_input.get("kwargs")
        report.data["calls"][-1]["via"] = "FunctionTool.acall"


if __name__ == "__main__":
    main("llama_index", DISTRIBUTIONS, run)
