"""Faults, floods and slow clients against a real ComfyUI: the bridge stays usable and bounded."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import anyio
import pytest
from _mcp_clients import connect

from testbed.raw_mcp import (
    HEADERS,
    INITIALIZE,
    NonReadingSse,
    initialize_only,
    message,
    open_session,
    ping,
    session_headers,
    slow_body,
)
from testbed.server import ComfyServer

pytestmark = pytest.mark.anyio

TIGHT = {
    "COMFYUI_MCP_DEBUG_TOOLS": "1",
    "COMFYUI_MCP_MAX_SESSIONS": "4",
    "COMFYUI_MCP_MAX_OPEN_REQUESTS": "4",
    "COMFYUI_MCP_REQUEST_BODY_TIMEOUT_S": "2",
    "COMFYUI_MCP_MAX_SESSION_REQUESTS": "8",
    "COMFYUI_MCP_STREAM_STALL_TIMEOUT_S": "2",
}


@pytest.fixture(scope="module")
def tight(comfy: ComfyServer) -> Iterator[ComfyServer]:
    """A ComfyUI of the same version with small limits (4 sessions, 4 requests, 2 s timeouts)."""
    server = ComfyServer(comfy.version, env=TIGHT)
    server.start()
    yield server
    server.stop()


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


async def test_initialize_only_sessions_cannot_lock_out_a_real_client(tight: ComfyServer) -> None:
    server = tight
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
            for session_id in (streaming, busy, idle[1]):
                async with http.delete(server.url + "/mcp", headers=session_headers(session_id)) as resp:
                    await resp.read()


async def test_slow_bodies_get_408_while_a_normal_client_is_served(tight: ComfyServer) -> None:
    async with aiohttp.ClientSession() as http, anyio.create_task_group() as tg:
        statuses: list[int] = []

        async def slow() -> None:
            statuses.append(await slow_body("127.0.0.1", tight.port, interval=1.0))

        for _ in range(8):  # twice max_open_requests, one byte a second
            tg.start_soon(slow)

        async def all_reading() -> bool:
            return (await sessions_snapshot(http, tight))["counts"]["reading_requests"] == 4

        await until(all_reading)
        async with connect("streamable-2026", tight.url) as client:
            result = await client.call_tool("get_server_info", {})
            assert not result.is_error
    assert statuses == [408] * 8


async def test_an_sse_client_that_never_reads_is_refused_then_dropped(tight: ComfyServer) -> None:
    async with aiohttp.ClientSession() as http:
        baseline = (await sessions_snapshot(http, tight))["counts"]["loop_tasks"]
        async with NonReadingSse("127.0.0.1", tight.port) as sse:
            assert (await sse.post(http, INITIALIZE))[0] == 202
            answers = []
            for n in range(5000):
                answers.append(await sse.post(http, message("tools/list", id=n + 10)))
                if answers[-1][0] != 202:
                    break
            status, text = answers[-1]
            assert status == 429, answers[-3:]
            assert "max_session_requests 8" in text

            async def dropped() -> bool:
                return (await sessions_snapshot(http, tight))["counts"]["sse_sessions"] == 0

            await until(dropped)
            assert (await sse.post(http, message("tools/list", id=1)))[0] == 404

        async def back_to_baseline() -> bool:
            return int((await sessions_snapshot(http, tight))["counts"]["loop_tasks"]) <= baseline

        await until(back_to_baseline)
    assert "closed a connection from 127.0.0.1 that read nothing for 2 s" in tight.log_text()


async def test_many_stateless_clients_expiring_together_write_no_tracebacks(
    comfy: ComfyServer, comfy_factory: Callable[..., ComfyServer]
) -> None:
    idle_s = 20  # well past the time 400 calls take on a loaded machine: none expires before the count
    server = comfy_factory(comfy.version, env={"COMFYUI_MCP_SESSION_IDLE_TIMEOUT_S": str(idle_s)})
    clients = 400
    headers = {**HEADERS, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}
    async with aiohttp.ClientSession() as http:
        for n in range(clients):  # 2026-era clients, told apart by name: each is an entry until it expires
            meta = {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": f"client-{n}", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            }
            body = message("tools/list", {"_meta": meta}, id=n)
            async with http.post(server.url + "/mcp", data=json.dumps(body), headers=headers) as resp:
                assert resp.status == 200
                await resp.read()
        last_seen = time.monotonic()
        assert (await sessions_snapshot(http, server))["counts"]["stateless_clients"] == clients
        lines_before = len(server.log_text().splitlines())
        # They all go idle together: nothing asks for a snapshot until every entry is past the timeout
        # (the timeout itself is what is waited for here), then one request expires them all at once.
        await anyio.sleep(last_seen + idle_s + 1 - time.monotonic())
        assert (await sessions_snapshot(http, server))["counts"]["stateless_clients"] == 0
    written = server.log_text().splitlines()[lines_before:]
    assert not [line for line in written if "Traceback" in line or "RecursionError" in line]
    assert len(written) < 10, written[:10]
