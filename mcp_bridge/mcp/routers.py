"""``describe_tool`` and ``run_tool``: every tool within reach of the ``core`` and ``compact`` profiles.

``run_tool`` hands the call to the server's own ``call_tool`` with the caller's context: the named
tool's handler validates the arguments, reports progress and is cancelled exactly as when it is called
by its name, and its errors read the same.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from .profiles import ROUTERS
from .toolset import Toolset

_READS = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def add_routers(toolset: Toolset) -> None:
    """Add describe_tool and run_tool to ``toolset`` (listed only by the core and compact profiles)."""

    async def describe_tool(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        name = _tool_name(arguments, {"tool"}, routers_ok=True)
        tools = {tool.name: tool for tool in await _all_tools(ctx)}
        if name not in tools:
            raise ToolError(_unknown(name, tools))
        tool = tools[name].model_dump(by_alias=True, exclude_none=True, mode="json")
        tool.pop("_meta", None)
        return CallToolResult(content=[TextContent(text=json.dumps(tool, separators=(",", ":")))])

    async def run_tool(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        name = _tool_name(arguments, {"tool", "arguments"})
        given = arguments.get("arguments", {})
        if not isinstance(given, dict):
            raise ToolError("arguments: must be an object of the tool's arguments (describe_tool shows them)")
        known = {tool.name for tool in await _all_tools(ctx)}
        if name not in known:
            raise ToolError(_unknown(name, known))
        try:
            result = await ctx.mcp_server.call_tool(name, given, ctx)
        except ToolError as exc:  # the text a direct call's error has
            return CallToolResult(content=[TextContent(text=str(exc))], is_error=True)
        if not isinstance(result, CallToolResult):
            raise ToolError(f"{name} asked for input, which run_tool cannot relay: call {name} itself")
        return result

    toolset.add_spec_tool(
        "describe_tool",
        describe_tool,
        schema=_schema({"tool": {"type": "string", "description": "A tool's name."}}, ["tool"]),
        description="A tool's description and arguments (JSON Schema), as the full tool list has them.",
        annotations=_READS,
    )
    toolset.add_spec_tool(
        "run_tool",
        run_tool,
        schema=_schema(
            {
                "tool": {"type": "string", "description": "The tool's name."},
                "arguments": {"type": "object", "description": "Its arguments (describe_tool shows them)."},
            },
            ["tool"],
        ),
        description="Call any tool of this server by name, with its own validation, result and progress.",
        annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False),
    )


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _tool_name(arguments: dict[str, Any], allowed: set[str], *, routers_ok: bool = False) -> str:
    extra = sorted(set(arguments) - allowed)
    if extra:
        raise ToolError(f"{', '.join(extra)}: unknown field (give {' and '.join(sorted(allowed))})")
    name = arguments.get("tool")
    if not isinstance(name, str) or not name:
        raise ToolError("tool: required, a tool's name")
    if name in ROUTERS and not routers_ok:
        raise ToolError(f"tool: {name} is not run through run_tool; call it directly")
    return name


async def _all_tools(ctx: Context) -> list[Any]:
    server: Any = ctx.mcp_server
    return list(await server.all_tools())


def _unknown(name: str, known: Any) -> str:
    names = sorted(known)
    return f"tool: no tool named {name[:80]!r}; the tools are: {', '.join(names)}"
