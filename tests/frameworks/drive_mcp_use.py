"""mcp-use: MCPClient over Streamable HTTP, its LangChainAdapter (each tool's inputSchema made a pydantic model), and
an MCPAgent on langchain-openai's ChatOpenAI with a mocked transport.

The conversion is the adapter's own (`LangChainAdapter.create_tools`, jsonschema_to_pydantic), then what
ChatOpenAI.bind_tools sends for each tool (`convert_to_openai_tool`). The mocked model answers: call
ollama_list_models, call ollama_generate (optionals unset), then a final answer; the tool results come back in the
next requests' tool messages. Before that, the tools are invoked directly (`tool.ainvoke(arguments)`); the agent
closes the client's sessions when its run ends.
"""

import json
import os

os.environ["MCP_USE_ANONYMIZED_TELEMETRY"] = "false"  # no network but the registry's

import httpx2
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from mcp_use import MCPAgent, MCPClient
from mcp_use.agents.adapters import LangChainAdapter

from _common import CALLS, ModelTransport, describe, main, parse_json

DISTRIBUTIONS = ["mcp-use", "langchain", "langchain-core", "langchain-openai", "openai", "mcp"]


def completion(message, finish_reason):
    choice = {"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant"} | message}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4.1", "choices": [choice]} | {
        "usage": usage
    }


def tool_call_turn(index, name, arguments):
    call = {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    return completion({"content": None, "tool_calls": [call]}, "tool_calls")


def tool_results(requests):
    found = {}
    for request in requests:
        for message in request["body"].get("messages") or []:
            if message.get("role") == "tool":
                found[message["tool_call_id"]] = message["content"]
    return found


def structured_or_error(text):
    """The structured result in a tool's text, or what went wrong (mcp-use turns a failed call into an error dict)."""
    value = parse_json(text) if isinstance(text, str) else text
    if isinstance(value, dict) and {"error", "details"} <= set(value):
        return None, f"{value['error']}: {value['details']}"
    return value, (None if isinstance(value, dict) else f"not the structured result: {str(text)[:500]}")


async def run(url, report):
    client = MCPClient.from_dict({"mcpServers": {"ollama": {"url": url}}})
    try:
        adapter = LangChainAdapter()
        try:
            tools = await adapter.create_tools(client)
        except Exception as exc:
            report.error("LangChainAdapter.create_tools", exc)
            tools = []
        session = client.get_session("ollama") if client.get_all_active_sessions() else None
        listed = await session.list_tools() if session else []
        report.data["tools"] = [tool.name for tool in listed] or [tool.name for tool in tools]
        made = {tool.name for tool in tools}
        for name in report.data["tools"]:
            if name not in made:
                report.conversion("LangChainAdapter + convert_to_openai_tool", name, error="no LangChain tool made")
        for tool in tools:
            try:
                function = convert_to_openai_tool(tool)["function"]
            except Exception as exc:
                report.conversion("LangChainAdapter + convert_to_openai_tool", tool.name, error=describe(exc))
            else:
                schema = function.get("parameters")
                report.conversion("LangChainAdapter + convert_to_openai_tool", tool.name, schema=schema)

        by_name = {tool.name: tool for tool in tools}
        for name, args in CALLS:
            if name not in by_name:
                continue
            try:
                text = await by_name[name].ainvoke(args)
            except Exception as exc:
                report.call(name, args, error=describe(exc))
            else:
                structured, error = structured_or_error(text)
                report.call(name, args, structured=structured, text=str(text), error=error)
            report.data["calls"][-1]["via"] = "tool.ainvoke"

        script = [lambda body, i=i, c=c: tool_call_turn(i, *c) for i, c in enumerate(CALLS)]
        script.append(lambda body: completion({"content": "Done."}, "stop"))
        mock = ModelTransport(httpx2, "openai", "chat.completions", script)
        llm = ChatOpenAI(
            model="gpt-4.1",
            api_key="sk-test",
            base_url="http://model.test/v1",
            max_retries=0,
            http_async_client=httpx2.AsyncClient(transport=mock.transport),
        )
        agent = MCPAgent(llm=llm, client=client, max_steps=10, retry_on_error=False)
        try:
            report.data["final_output"] = await agent.run("List my models, then ask gemma a question.")
        except Exception as exc:
            report.error("MCPAgent.run", exc)
        report.data["requests"] = mock.requests
        results = tool_results(mock.requests)
        for index, (name, args) in enumerate(CALLS):
            if f"call_{index}" not in results:
                report.call(name, args, error="the tool result never reached the model")
            else:
                structured, error = structured_or_error(results[f"call_{index}"])
                report.call(name, args, structured=structured, text=results[f"call_{index}"], error=error)
            report.data["calls"][-1]["via"] = "MCPAgent"

    finally:
        await client.close_all_sessions()


if __name__ == "__main__":
    main("mcp_use", DISTRIBUTIONS, run)
