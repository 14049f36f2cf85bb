"""openai-agents: MCPServerStreamableHttp, strict schema conversion on, one agent run on a mocked OpenAI model.

The agent's model is OpenAIResponsesModel over an AsyncOpenAI client whose HTTP transport is mocked: it records
each Responses API request and answers with a canned model turn. The script: call ollama_list_models, then
ollama_generate with its optional arguments unset, then answer. The tool results come back to the model in the
next request's `function_call_output` items, which is where this driver reads them.
"""

import json
import os

os.environ["OPENAI_AGENTS_DONT_LOG_TOOL_DATA"] = "0"  # so a failed strict conversion logs its reason

import httpx2
from agents import Agent, OpenAIResponsesModel, RunConfig, RunContextWrapper, Runner, set_tracing_disabled
from agents.mcp import MCPServerStreamableHttp, MCPUtil
from openai import AsyncOpenAI

from _common import CALLS, CapturedLog, ModelTransport, describe, main, parse_json

DISTRIBUTIONS = ["openai-agents", "openai", "mcp", "httpx2"]


def response(output):
    return {
        "id": "resp_test",
        "object": "response",
        "created_at": 0,
        "model": "gpt-test",
        "status": "completed",
        "output": output,
        "parallel_tool_calls": False,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 1,
            "output_tokens": 1,
            "total_tokens": 2,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


def function_call(index, name, arguments):
    item = {"type": "function_call", "id": f"fc_{index}", "call_id": f"call_{index}", "name": name}
    return lambda body: response([item | {"arguments": json.dumps(arguments), "status": "completed"}])


def final_answer(body):
    text = {"type": "output_text", "text": "Done.", "annotations": []}
    return response([{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [text]}])


async def run(url, report):
    set_tracing_disabled(True)
    script = [function_call(i, name, args) for i, (name, args) in enumerate(CALLS)] + [final_answer]
    model_http = ModelTransport(httpx2, "openai", "responses", script)
    client = AsyncOpenAI(
        api_key="sk-test",
        base_url="http://model.test/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=model_http.transport),
    )
    server = MCPServerStreamableHttp(
        {"url": url, "timeout": 30},
        cache_tools_list=True,
        client_session_timeout_seconds=60,
        use_structured_content=True,
    )
    async with server:
        agent = Agent(
            name="ollama",
            instructions="Use the Ollama tools.",
            model=OpenAIResponsesModel(model="gpt-test", openai_client=client),
            mcp_servers=[server],
            mcp_config={"convert_schemas_to_strict": True},
        )
        listed = await server.list_tools()
        report.data["tools"] = [tool.name for tool in listed]

        # The SDK's own per-tool conversion (what Agent.get_mcp_tools does for each tool). A schema it cannot
        # make strict is logged and sent non-strict: the log line is the conversion's error.
        log = CapturedLog("openai.agents")
        for tool in listed:
            log.records.clear()
            try:
                converted = MCPUtil.to_function_tool(tool, server, True, agent)
            except Exception as exc:
                report.conversion("strict", tool.name, error=describe(exc))
                continue
            failures = [line for line in log.records if "strict mode" in line]
            report.conversion(
                "strict",
                tool.name,
                schema=converted.params_json_schema,
                strict=converted.strict_json_schema,
                error=None,
            )
            report.data["conversions"]["strict"][tool.name]["fallback"] = failures[0] if failures else None

        try:
            await agent.get_all_tools(RunContextWrapper(None))
        except Exception as exc:
            report.error("Agent.get_all_tools", exc)

        try:
            result = await Runner.run(agent, "List my models, then ask gemma a question.", run_config=RunConfig())
            report.data["final_output"] = result.final_output
        except Exception as exc:
            report.error("Runner.run", exc)
        finally:
            report.data["requests"] = model_http.requests

    outputs = {}
    for request in model_http.requests:
        for item in request["body"].get("input") or []:
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                outputs[item["call_id"]] = item["output"]
    for index, (name, args) in enumerate(CALLS):
        output = outputs.get(f"call_{index}")
        if output is None:
            report.call(name, args, error="the tool result never reached the model")
            continue
        text = output if isinstance(output, str) else json.dumps(output)
        structured = parse_json(text)
        error = None if isinstance(structured, dict) else f"not the structured result: {text[:500]}"
        report.call(name, args, structured=structured, text=text, error=error)


if __name__ == "__main__":
    main("openai_agents", DISTRIBUTIONS, run)
