"""smolagents: ToolCollection.from_mcp over Streamable HTTP (mcpadapt, structured output on), a ToolCallingAgent on
smolagents' OpenAIModel with a mocked transport.

The conversion is smolagents' own `get_tool_json_schema`, which OpenAIModel applies to every tool of the agent
when it prepares a request. The mocked model answers three turns: call ollama_list_models, call ollama_generate
(optionals unset), call final_answer. The tools are also called directly through their smolagents Tool objects,
which return the structured content.
"""

import json

import httpx2
from smolagents import OpenAIModel, ToolCallingAgent, ToolCollection
from smolagents.models import get_tool_json_schema
from smolagents.monitoring import LogLevel

from _common import CALLS, ModelTransport, describe, main

DISTRIBUTIONS = ["smolagents", "mcpadapt", "openai", "mcp"]


def tool_call_turn(index, name, arguments):
    call = {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    choice = {"index": 0, "finish_reason": "tool_calls", "message": message}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4.1", "choices": [choice]} | {
        "usage": usage
    }


def run(url, report):
    server = {"url": url, "transport": "streamable-http"}
    with ToolCollection.from_mcp(server, trust_remote_code=True, structured_output=True) as collection:
        tools = list(collection.tools)
        report.data["tools"] = [tool.name for tool in tools]
        for tool in tools:
            try:
                converted = get_tool_json_schema(tool)
            except Exception as exc:
                report.conversion("get_tool_json_schema", tool.name, error=describe(exc))
            else:
                report.conversion("get_tool_json_schema", tool.name, schema=converted["function"]["parameters"])

        script = [lambda body, i=i, c=c: tool_call_turn(i, *c) for i, c in enumerate(CALLS)]
        script.append(lambda body: tool_call_turn(len(CALLS), "final_answer", {"answer": "Done."}))
        mock = ModelTransport(httpx2, "openai", "chat.completions", script)
        model = OpenAIModel(
            model_id="gpt-4.1",
            api_base="http://model.test/v1",
            api_key="sk-test",
            client_kwargs={"max_retries": 0, "http_client": httpx2.Client(transport=mock.transport)},
        )
        agent = ToolCallingAgent(tools=tools, model=model, max_steps=len(CALLS) + 1, verbosity_level=LogLevel.OFF)
        try:
            report.data["final_output"] = agent.run("List my models, then ask gemma a question.")
        except Exception as exc:
            report.error("ToolCallingAgent.run", exc)
        report.data["requests"] = mock.requests
        report.data["agent_steps"] = [
            {
                "tool_calls": [call.name for call in step.tool_calls or []],
                "observations": (step.observations or "")[:2000],
                "error": describe(step.error) if step.error is not None else None,
            }
            for step in agent.memory.steps
            if hasattr(step, "tool_calls")
        ]

        by_name = {tool.name: tool for tool in tools}
        for name, args in CALLS:
            try:
                out = by_name[name](**args)
            except Exception as exc:
                report.call(name, args, error=describe(exc))
            else:
                error = None if isinstance(out, dict) else f"not the structured result: {out!r:.500}"
                report.call(name, args, structured=out, error=error)
            report.data["calls"][-1]["via"] = "Tool.__call__"


if __name__ == "__main__":
    main("smolagents", DISTRIBUTIONS, run)
