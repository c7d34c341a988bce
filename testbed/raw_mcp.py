"""Raw HTTP MCP clients for tests and benchmarks: what `curl` or a careless client sends, no SDK."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

PROTOCOL = "2025-11-25"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def message(method: str, params: dict[str, Any] | None = None, id: int | None = 1) -> dict[str, Any]:
    """A JSON-RPC request (or a notification with ``id=None``)."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        body["id"] = id
    if params is not None:
        body["params"] = params
    return body


INITIALIZE = message(
    "initialize",
    {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "raw-client", "version": "0"}},
)


def session_headers(session_id: str) -> dict[str, str]:
    """Headers of a request on an open Streamable HTTP session."""
    return {**HEADERS, "Mcp-Session-Id": session_id, "MCP-Protocol-Version": PROTOCOL}


async def initialize_only(http: aiohttp.ClientSession, url: str) -> str:
    """Open a session the way one `curl` call does: an initialize and nothing after it; its id."""
    async with http.post(url + "/mcp", data=json.dumps(INITIALIZE), headers=HEADERS) as resp:
        text = await resp.text()
        if resp.status != 200:
            raise AssertionError(f"initialize answered {resp.status}: {text}")
        return resp.headers["Mcp-Session-Id"]


async def open_session(http: aiohttp.ClientSession, url: str) -> str:
    """Initialize and confirm (``notifications/initialized``) a session; its id."""
    session_id = await initialize_only(http, url)
    await post(http, url, session_id, message("notifications/initialized", id=None))
    return session_id


async def post(http: aiohttp.ClientSession, url: str, session_id: str, body: dict[str, Any]) -> int:
    """POST one message on a session and read the whole answer; the HTTP status."""
    async with http.post(url + "/mcp", data=json.dumps(body), headers=session_headers(session_id)) as resp:
        await resp.read()
        return resp.status


async def ping(http: aiohttp.ClientSession, url: str, session_id: str) -> int:
    """The HTTP status of a ping on a session (404 once the session is gone)."""
    return await post(http, url, session_id, message("ping", id=7))
