"""pydantic-ai: MCPToolset over Streamable HTTP, an Agent on three mocked models (OpenAI Responses, OpenAI Chat
Completions, Anthropic Messages).

Each model's SDK client has a mocked HTTP transport that records the request and answers with a canned turn, so
the request body is exactly what pydantic-ai would send the provider. For each model:
- one run per tool, with the toolset filtered to that tool: that tool's conversion (the schema the request
  carries for it, or the error the run raised);
- one run with every tool whose script calls ollama_list_models, then ollama_generate with its optionals unset,
  then answers: the captured requests, and the tool results as they come back to the model.
Then both tools are called directly through the toolset (MCPToolset.direct_call_tool).
"""

import json

import httpx2
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from _common import CALLS, ModelTransport, describe, main, parse_json

DISTRIBUTIONS = ["pydantic-ai-slim", "fastmcp-slim", "openai", "anthropic", "mcp", "httpx2"]
USAGE_OPENAI = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}


class Responses:
    api, provider = "responses", "openai"

    @staticmethod
    def _response(output):
        usage = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
        return {"id": "resp_1", "object": "response", "created_at": 0, "model": "gpt-4.1", "status": "completed"} | {
            "output": output,
            "parallel_tool_calls": False,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
        }

    @classmethod
    def tool_call(cls, index, name, arguments):
        item = {"type": "function_call", "id": f"fc_{index}", "call_id": f"call_{index}", "name": name}
        return cls._response([item | {"arguments": json.dumps(arguments), "status": "completed"}])

    @classmethod
    def final(cls):
        text = {"type": "output_text", "text": "Done.", "annotations": []}
        message = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [text]}
        return cls._response([message])

    @staticmethod
    def tools(body):
        return {tool["name"]: tool for tool in body.get("tools") or []}

    @staticmethod
    def schema(tool):
        return tool.get("parameters")

    @staticmethod
    def results(body):
        items = body.get("input") or []
        return {
            i["call_id"]: i["output"] for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"
        }

    @staticmethod
    def model(http):
        client = AsyncOpenAI(api_key="sk-test", base_url="http://model.test/v1", max_retries=0, http_client=http)
        return OpenAIResponsesModel("gpt-4.1", provider=OpenAIProvider(openai_client=client))


class Chat(Responses):
    api = "chat.completions"

    @staticmethod
    def _completion(message, finish_reason):
        choice = {"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant"} | message}
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4.1"} | {
            "choices": [choice],
            "usage": USAGE_OPENAI,
        }

    @classmethod
    def tool_call(cls, index, name, arguments):
        call = {
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        return cls._completion({"content": None, "tool_calls": [call]}, "tool_calls")

    @classmethod
    def final(cls):
        return cls._completion({"content": "Done."}, "stop")

    @staticmethod
    def tools(body):
        return {tool["function"]["name"]: tool for tool in body.get("tools") or []}

    @staticmethod
    def schema(tool):
        return tool["function"].get("parameters")

    @staticmethod
    def results(body):
        messages = body.get("messages") or []
        return {m["tool_call_id"]: m["content"] for m in messages if m.get("role") == "tool"}

    @staticmethod
    def model(http):
        client = AsyncOpenAI(api_key="sk-test", base_url="http://model.test/v1", max_retries=0, http_client=http)
        return OpenAIChatModel("gpt-4.1", provider=OpenAIProvider(openai_client=client))


class Messages(Responses):
    api, provider = "messages", "anthropic"

    @staticmethod
    def _message(content, stop_reason):
        return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5"} | {
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }

    @classmethod
    def tool_call(cls, index, name, arguments):
        return cls._message([{"type": "tool_use", "id": f"call_{index}", "name": name, "input": arguments}], "tool_use")

    @classmethod
    def final(cls):
        return cls._message([{"type": "text", "text": "Done."}], "end_turn")

    @staticmethod
    def schema(tool):
        return tool.get("input_schema")

    @staticmethod
    def results(body):
        found = {}
        for message in body.get("messages") or []:
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if block.get("type") == "tool_result":
                    found[block["tool_use_id"]] = block.get("content")
        return found

    @staticmethod
    def model(http):
        client = AsyncAnthropic(api_key="sk-ant-test", base_url="http://model.test", max_retries=0, http_client=http)
        return AnthropicModel("claude-sonnet-4-5", provider=AnthropicProvider(anthropic_client=client))


APIS = [Responses, Chat, Messages]


def result_text(content):
    """A tool result as the model receives it: a string, or Anthropic's list of content blocks."""
    if isinstance(content, list):
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return content if isinstance(content, str) else json.dumps(content)


async def convert_each(api, toolset, names, report):
    converter = f"{api.provider} {api.api}"
    for name in names:
        mock = ModelTransport(httpx2, api.provider, api.api, [lambda body: api.final()])
        only = toolset.filtered(lambda ctx, tool_def, name=name: tool_def.name == name)
        agent = Agent(api.model(httpx2.AsyncClient(transport=mock.transport)), toolsets=[only])
        try:
            await agent.run("Use the tool.")
            sent = api.tools(mock.requests[0]["body"])[name]
            report.conversion(converter, name, schema=api.schema(sent), strict=sent.get("strict"))
        except Exception as exc:
            report.conversion(converter, name, error=describe(exc))


async def run_script(api, toolset, report):
    script = [lambda body, i=i, c=c: api.tool_call(i, *c) for i, c in enumerate(CALLS)] + [lambda body: api.final()]
    mock = ModelTransport(httpx2, api.provider, api.api, script)
    agent = Agent(api.model(httpx2.AsyncClient(transport=mock.transport)), toolsets=[toolset])
    try:
        await agent.run("List my models, then ask gemma a question.")
    except Exception as exc:
        report.error(f"{api.provider} {api.api}: Agent.run", exc)
    report.data["requests"].extend(mock.requests)
    results = {}
    for request in mock.requests:
        results.update(api.results(request["body"]))
    for index, (name, args) in enumerate(CALLS):
        if f"call_{index}" not in results:
            report.call(name, args, error=f"{api.api}: the tool result never reached the model")
        else:
            text = result_text(results[f"call_{index}"])
            structured = parse_json(text)
            error = None if isinstance(structured, dict) else f"{api.api}: not the structured result: {text[:500]}"
            report.call(name, args, structured=structured, text=text, error=error)
        report.data["calls"][-1]["via"] = f"{api.provider} {api.api}"


async def run(url, report):
    toolset = MCPToolset(url, cache_tools=True, tool_error_behavior="error")
    async with toolset:
        names = [tool.name for tool in await toolset.list_tools()]
        report.data["tools"] = names
        for api in APIS:
            await convert_each(api, toolset, names, report)
            await run_script(api, toolset, report)
        for name, args in CALLS:
            try:
                out = await toolset.direct_call_tool(name, args)
            except Exception as exc:
                report.call(name, args, error=describe(exc))
            else:
                error = None if isinstance(out, dict) else f"not the structured result: {out!r:.500}"
                report.call(name, args, structured=out, text=None, error=error)
            report.data["calls"][-1]["via"] = "MCPToolset.direct_call_tool"


if __name__ == "__main__":
    main("pydantic_ai", DISTRIBUTIONS, run)
