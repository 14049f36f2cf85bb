"""agno: MCPTools over Streamable HTTP, an Agent on agno's OpenAIChat with an AsyncOpenAI client on a mocked transport.

The conversion is agno's own: each MCP tool becomes a Function whose `to_dict()` is what OpenAIChat puts in the
request's `tools`. The mocked model answers: call ollama_list_models, call ollama_generate (optionals unset), then
a final answer; the tool results come back in the next requests' tool messages. The tools are also called directly
through agno's FunctionCall.
"""

import json
import os

os.environ["AGNO_TELEMETRY"] = "false"  # no network but the registry's

import httpx2
from agno.agent import Agent
from agno.models.openai import OpenAIChat
from agno.tools.function import FunctionCall
from agno.tools.mcp import MCPTools
from openai import AsyncOpenAI

from _common import CALLS, ModelTransport, describe, main, parse_json

DISTRIBUTIONS = ["agno", "openai", "mcp"]


def completion(message, finish_reason):
    choice = {"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant"} | message}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4.1", "choices": [choice]} | {
        "usage": usage
    }


def tool_call_turn(index, name, arguments):
    call = {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    return completion({"content": None, "tool_calls": [call]}, "tool_calls")


def as_structured(value):
    """The structured content of a tool result: agno's ToolResult keeps it in its metadata, a message as text."""
    metadata = getattr(value, "metadata", None)
    if isinstance(metadata, dict) and "structured_content" in metadata:
        value = metadata["structured_content"]
    value = parse_json(value) if isinstance(value, str) else value
    return value, (None if isinstance(value, dict) else f"not the structured result: {str(value)[:500]}")


async def run(url, report):
    async with MCPTools(url=url, transport="streamable-http", timeout_seconds=30) as toolkit:
        functions = toolkit.get_async_functions() if hasattr(toolkit, "get_async_functions") else toolkit.functions
        report.data["tools"] = list(functions)
        for name, function in functions.items():
            try:
                sent = function.to_dict()
            except Exception as exc:
                report.conversion("Function.to_dict", name, error=describe(exc))
            else:
                report.conversion("Function.to_dict", name, schema=sent.get("parameters"), strict=sent.get("strict"))

        for name, args in CALLS:
            try:
                call = FunctionCall(function=functions[name], arguments=args)
                outcome = await call.aexecute()
            except Exception as exc:
                report.call(name, args, error=describe(exc))
            else:
                structured, error = as_structured(call.result)
                if outcome.status != "success":
                    error = f"{outcome.status}: {call.error or call.result}"
                report.call(name, args, structured=structured, text=str(call.result), error=error)
            report.data["calls"][-1]["via"] = "FunctionCall.aexecute"

        script = [lambda body, i=i, c=c: tool_call_turn(i, *c) for i, c in enumerate(CALLS)]
        script.append(lambda body: completion({"content": "Done."}, "stop"))
        mock = ModelTransport(httpx2, "openai", "chat.completions", script)
        client = AsyncOpenAI(
            api_key="sk-test",
            base_url="http://model.test/v1",
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=mock.transport),
        )
        agent = Agent(model=OpenAIChat(id="gpt-4.1", async_client=client), tools=[toolkit], telemetry=False)
        try:
            output = await agent.arun("List my models, then ask gemma a question.")
            report.data["final_output"] = output.content
        except Exception as exc:
            report.error("Agent.arun", exc)
        report.data["requests"] = mock.requests
        results = {}
        for request in mock.requests:
            for message in request["body"].get("messages") or []:
                if message.get("role") == "tool":
                    results[message["tool_call_id"]] = message["content"]
        for index, (name, args) in enumerate(CALLS):
            if f"call_{index}" not in results:
                report.call(name, args, error="the tool result never reached the model")
            else:
                structured, error = as_structured(results[f"call_{index}"])
                report.call(name, args, structured=structured, text=str(results[f"call_{index}"]), error=error)
            report.data["calls"][-1]["via"] = "Agent.arun"


if __name__ == "__main__":
    main("agno", DISTRIBUTIONS, run)
