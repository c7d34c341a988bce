"""Faults, floods and slow clients against a real ComfyUI: the bridge stays usable and bounded."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anyio
import pytest
from _mcp_clients import connect

from testbed.raw_mcp import initialize_only, message, open_session, ping, session_headers
from testbed.server import ComfyServer

pytestmark = pytest.mark.anyio


async def sessions_snapshot(http: aiohttp.ClientSession, server: ComfyServer) -> dict[str, Any]:
    async with http.get(server.url + "/mcp-bridge/sessions") as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data


async def until(check: Callable[[], Any], limit_s: float = 30.0) -> None:
    """Poll the async ``check()`` until it is true (a bound, not a measurement)."""
    with anyio.fail_after(limit_s):
        while not await check():
            await anyio.sleep(0.05)


@contextlib.asynccontextmanager
async def open_stream(
    http: aiohttp.ClientSession, server: ComfyServer, session_id: str
) -> AsyncIterator[None]:
    """Hold a session's standalone GET stream open."""
    headers = {**session_headers(session_id), "Accept": "text/event-stream"}
    async with http.get(server.url + "/mcp", headers=headers) as resp:
        assert resp.status == 200
        yield


async def call_in_flight(http: aiohttp.ClientSession, server: ComfyServer, session_id: str) -> None:
    """A tools/call that stays in flight until cancelled."""
    body = message("tools/call", {"name": "debug_sleep", "arguments": {"seconds": 600}}, id=3)
    async with http.post(
        server.url + "/mcp", data=json.dumps(body), headers=session_headers(session_id)
    ) as resp:
        await resp.read()


async def test_initialize_only_sessions_cannot_lock_out_a_real_client(
    comfy: ComfyServer, comfy_factory: Callable[..., ComfyServer]
) -> None:
    env = {"COMFYUI_MCP_DEBUG_TOOLS": "1", "COMFYUI_MCP_MAX_SESSIONS": "4"}
    server = comfy_factory(comfy.version, env=env)
    async with aiohttp.ClientSession() as http:
        streaming = await open_session(http, server.url)
        busy = await open_session(http, server.url)
        async with open_stream(http, server, streaming), anyio.create_task_group() as tg:
            tg.start_soon(call_in_flight, http, server, busy)

            async def one_call_in_flight() -> bool:
                return (await sessions_snapshot(http, server))["counts"]["calls_in_flight"] == 1

            await until(one_call_in_flight)
            # The cap is filled by two more sessions that only said initialize (like two curl calls).
            idle = [await initialize_only(http, server.url) for _ in range(2)]
            async with connect("streamable-2025", server.url) as client:
                result = await client.call_tool("get_server_info", {})
                assert not result.is_error
                assert result.structured_content is not None
                assert result.structured_content["comfyui_version"] == server.version
                # The least recently used *idle* session made room; the older streaming and busy ones stayed.
                assert [await ping(http, server.url, sid) for sid in idle] == [404, 200]
                assert await ping(http, server.url, streaming) == 200
                assert await ping(http, server.url, busy) == 200
                live = {s["id"] for s in (await sessions_snapshot(http, server))["sessions"]}
                assert {streaming, busy, idle[1]} <= live and idle[0] not in live
            tg.cancel_scope.cancel()
