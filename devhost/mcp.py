"""The MCP endpoint of the local host: JSON-RPC 2.0 over POST /runtime/webhooks/mcp (streamable HTTP, one
JSON response per request), as the Functions MCP extension serves it in Azure: initialize, tools/list and
tools/call, each call handed to the tool's function with the context the extension would pass."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PATH = "/runtime/webhooks/mcp"
_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean", "object": "object"}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    properties: list[dict[str, Any]]
    arg: str
    call: Callable[..., Any]

    def schema(self) -> dict[str, Any]:
        props = {}
        for p in self.properties:
            kind = {"type": _TYPES.get(p["propertyType"], "string")}
            props[p["propertyName"]] = {"type": "array", "items": kind} if p.get("isArray") else kind
            props[p["propertyName"]]["description"] = p.get("description", "")
        return {"name": self.name, "description": self.description,
                "inputSchema": {"type": "object", "properties": props}}


def tool_of(trigger: dict[str, Any], call: Callable[..., Any]) -> Tool:
    properties = json.loads(trigger.get("toolProperties") or "[]")
    return Tool(trigger["toolName"], trigger.get("description") or "", properties, trigger["name"], call)


def handle(tools: dict[str, Tool], headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """One JSON-RPC request; errors are JSON-RPC errors, tool refusals are results with isError."""
    try:
        req = json.loads(body)
        method, rid, params = req["method"], req.get("id"), req.get("params") or {}
    except (ValueError, KeyError, TypeError):
        return _reply(None, error={"code": -32700, "message": "not a JSON-RPC request"})
    if method == "initialize":
        return _reply(rid, {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                            "capabilities": {"tools": {"listChanged": False}},
                            "serverInfo": {"name": "closedloop (local host)", "version": "1.0"}})
    if method.startswith("notifications/"):
        return 202, {}, b""
    if method == "tools/list":
        return _reply(rid, {"tools": [t.schema() for t in tools.values()]})
    if method == "tools/call":
        tool = tools.get(str(params.get("name")))
        if tool is None:
            return _reply(rid, error={"code": -32602, "message": f"unknown tool {params.get('name')!r}"})
        context = {"name": tool.name, "arguments": params.get("arguments") or {},
                   "transport": {"name": "http-streamable", "properties": {"headers": headers}}}
        text = tool.call(**{tool.arg: json.dumps(context)})
        failed = isinstance(json.loads(text), dict) and "error" in json.loads(text)
        return _reply(rid, {"content": [{"type": "text", "text": text}], "isError": failed})
    return _reply(rid, error={"code": -32601, "message": f"no method {method}"})


def _reply(rid: Any, result: Any = None, error: Any = None) -> tuple[int, dict[str, str], bytes]:
    doc = {"jsonrpc": "2.0", "id": rid, **({"error": error} if error else {"result": result})}
    return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()
