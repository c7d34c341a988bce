"""Bounds on ``tools/list``: pages that clients can read, and budgeted published tools (issue 24 #3).

An SDK client reads at most 1 MiB in one SSE event (``DEFAULT_MAX_SSE_EVENT_SIZE``) and its session dies
on a bigger one, so one busy publisher could lock every 2025-era client out. Two bounds:

- :func:`page_tools` serves ``tools/list`` in pages of at most :data:`PAGE_BYTES` of tools with the
  spec's cursors (a list that fits is one page, without a cursor). A cursor names its offset and the
  listing it came from: when the tools changed since, it is refused (-32602) and the client lists again.
- :func:`budget_schema` bounds a published tool's advertised input schema: a long saved text is not a
  schema default (the tool still runs with it when the argument is omitted), long descriptions are cut
  and long option lists are not enumerated (the tool's own validation still names them), all within
  :data:`TOOL_BYTES`. It changes what is said, never what is accepted.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ListToolsResult, PaginatedRequestParams
from mcp.types import Tool as MCPTool

PAGE_BYTES = 512 * 1024  # tools per page, as JSON: half of what an SDK client reads in one event
TOOL_BYTES = 16 * 1024  # one published tool's input schema
TEXT_DEFAULT_CHARS = 256  # a longer saved text is not advertised as the default
DESCRIPTION_CHARS = 300
ENUM_ITEMS = 64


def page_tools(server: Server[Any], list_tools: Callable[[], Awaitable[list[MCPTool]]]) -> None:
    """Answer ``tools/list`` on ``server`` with :func:`tools_page` over ``list_tools()`` (the SDK's public
    request-handler registration; the tools are those the server lists)."""

    async def handle(ctx: Any, params: PaginatedRequestParams) -> ListToolsResult:
        return tools_page(await list_tools(), params.cursor)

    server.add_request_handler("tools/list", PaginatedRequestParams, handle)


def tools_page(tools: list[MCPTool], cursor: str | None, page_bytes: int = PAGE_BYTES) -> ListToolsResult:
    """The page of ``tools`` that ``cursor`` names (None: the first), at most ``page_bytes`` of JSON (at
    least one tool), with the cursor of the next page when there is one."""
    version = _version(tools)
    start = 0 if cursor is None else _offset(cursor, version, len(tools))
    size, end = 0, start
    while end < len(tools):
        size += len(tools[end].model_dump_json(by_alias=True, exclude_none=True))
        if size > page_bytes and end > start:
            break
        end += 1
    following = _cursor(end, version) if end < len(tools) else None
    return ListToolsResult(tools=tools[start:end], next_cursor=following)


def _version(tools: list[MCPTool]) -> str:
    names = "\n".join(tool.name for tool in tools)
    return hashlib.sha256(names.encode()).hexdigest()[:16]


def _cursor(offset: int, version: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{version}".encode()).decode()


def _offset(cursor: str, version: str, count: int) -> int:
    try:
        offset_text, _, seen = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        offset = int(offset_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise MCPError(INVALID_PARAMS, "invalid cursor: pass the nextCursor of a tools/list answer") from None
    if seen != version or not 0 < offset < count:
        raise MCPError(INVALID_PARAMS, "the tool list changed since this cursor; list the tools again")
    return offset


def budget_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (a published tool's input schema) within :data:`TOOL_BYTES` (see the module doc)."""
    out = copy.deepcopy(schema)
    properties = out.get("properties")
    if not isinstance(properties, dict):
        return out
    for prop in properties.values():
        if isinstance(prop, dict):
            _budget_property(prop)
    if len(json.dumps(out)) > TOOL_BYTES:
        for prop in properties.values():
            if isinstance(prop, dict):
                prop.pop("description", None)
    return out


def _budget_property(prop: dict[str, Any]) -> None:
    notes = []
    default = prop.get("default")
    if isinstance(default, str) and len(default) > TEXT_DEFAULT_CHARS:
        del prop["default"]
        notes.append(f"default: the saved text ({len(default)} characters)")
    enum = prop.get("enum")
    if isinstance(enum, list) and len(enum) > ENUM_ITEMS:
        del prop["enum"]
        notes.append(f"one of the node's {len(enum)} values")
    description = str(prop.get("description", ""))
    if len(description) > DESCRIPTION_CHARS:
        description = description[: DESCRIPTION_CHARS - 3].rstrip() + "..."
    if notes:
        description = f"{description} ({'; '.join(notes)})".strip()
    if description:
        prop["description"] = description
