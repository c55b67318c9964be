"""A real MCP client for Warden's tests: the official Python SDK (`pip install mcp`).

Reads a plan as JSON on stdin, connects to `warden mcp` as it says, carries it out, and
prints what the server answered as one JSON object on stdout; the Rust test asserts on
that and on the audit log. The plan:

    {
      "server": {"stdio": {"command": "...", "args": ["mcp", "..."], "env": {...}}}
              | {"http": {"url": "http://127.0.0.1:PORT/mcp", "token": "..."}},
      "mode": "auto" | "legacy",          # protocol negotiation, as mcp.Client takes it
      "elicit": "accept" | "refuse" | "decline" | null,   # how to answer approvals
      "steps": [{"list": true} | {"call": NAME, "arguments": {...}, "meta": {...},
                                  "request_state": S, "input_responses": {...}}
                | {"together": [CALL, ...]}]   # calls sent at once, answered in any order
    }

The output: {"protocol": VERSION, "steps": [...], "elicitations": [MESSAGE, ...]}, each
step a tool list or a call's result (is_error, text, structured, meta) or an "error"
(a protocol error the SDK raised); a "together" step is {"together": [RESULT, ...]} in
the order of its calls, each with "seconds", how long it took to be answered.
"""

import asyncio
import json
import sys
import time

import mcp.types as types
from mcp import StdioServerParameters
from mcp.client import Client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.client.streamable_http import streamable_http_client


def dump(model):
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


async def main():
    plan = json.load(sys.stdin)
    elicitations = []

    async def on_elicit(context, params):
        elicitations.append(params.message)
        answer = plan.get("elicit")
        if answer == "accept":
            return types.ElicitResult(action="accept", content={"approve": True})
        if answer == "refuse":
            return types.ElicitResult(action="accept", content={"approve": False})
        return types.ElicitResult(action="decline")

    server = plan["server"]
    http_client = None
    if "stdio" in server:
        s = server["stdio"]
        target = StdioServerParameters(command=s["command"], args=s["args"], env=s.get("env"))
    else:
        h = server["http"]
        headers = {"Authorization": f"Bearer {h['token']}"} if h.get("token") else {}
        http_client = create_mcp_http_client(headers=headers)
        target = streamable_http_client(h["url"], http_client=http_client)

    options = {"mode": plan.get("mode", "auto")}
    if plan.get("elicit") is not None:
        options["elicitation_callback"] = on_elicit
    async def call(client, step):
        extra = {}
        if "request_state" in step:  # a forged retry, for the tests
            extra = {
                "request_state": step["request_state"],
                "input_responses": step.get("input_responses", {}),
            }
        result = await client.call_tool(
            step["call"], step.get("arguments", {}), meta=step.get("meta"), **extra
        )
        text = "".join(c.text for c in result.content if getattr(c, "text", None))
        return {
            "is_error": bool(result.is_error),
            "text": text,
            "structured": result.structured_content,
            "meta": result.meta,
        }

    async def timed(client, step):
        started = time.monotonic()
        try:
            answer = await call(client, step)
        except Exception as e:
            answer = {"error": f"{type(e).__name__}: {e}"}
        answer["seconds"] = time.monotonic() - started
        return answer

    steps = []
    async with Client(target, **options) as client:
        for step in plan["steps"]:
            try:
                if step.get("list"):
                    listed = await client.list_tools()
                    steps.append({"tools": [dump(t) for t in listed.tools]})
                elif "together" in step:
                    answers = await asyncio.gather(*(timed(client, s) for s in step["together"]))
                    steps.append({"together": list(answers)})
                else:
                    steps.append(await call(client, step))
            except Exception as e:  # a protocol error is a result the test checks
                steps.append({"error": f"{type(e).__name__}: {e}"})
        protocol = client.protocol_version
    if http_client is not None:
        await http_client.aclose()
    json.dump({"protocol": protocol, "steps": steps, "elicitations": elicitations}, sys.stdout)


asyncio.run(main())
