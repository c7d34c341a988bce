"""Session limits on a bare server: eviction at max_sessions, early reaping of initialize-only sessions."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import pytest
from _bare import Bare, bare_server, wait_for

from mcp_bridge import config
from mcp_bridge.http.sessions import MAX_STATELESS, STATELESS, SessionRegistry
from testbed.mcp_client import connect
from testbed.raw_mcp import HEADERS, INITIALIZE, NonReadingSse, initialize_only, message, ping, slow_body

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def server(tmp_path: Path, **settings: object) -> AsyncIterator[Bare]:
    async with bare_server(tmp_path, config.Settings(debug_tools=True, **settings)) as bare:  # type: ignore[arg-type]
        yield bare


async def test_at_the_cap_a_new_client_replaces_the_least_recently_used_idle_session(tmp_path: Path) -> None:
    async with server(tmp_path, max_sessions=3) as bare, aiohttp.ClientSession() as http:
        idle = [await initialize_only(http, bare.url) for _ in range(3)]
        assert bare.counts()["streamable_sessions"] == 3
        async with connect("streamable-2025", bare.url) as client:
            result = await client.call_tool("get_server_info", {})
            assert not result.is_error
            assert [await ping(http, bare.url, sid) for sid in idle] == [404, 200, 200]
        snap = bare.transport.snapshot()
        assert snap["rejections"]["session-evicted"] == 1


async def test_sessions_with_a_call_in_flight_or_an_open_stream_are_never_evicted(tmp_path: Path) -> None:
    async with server(tmp_path, max_sessions=2) as bare, aiohttp.ClientSession() as http:
        async with (
            connect("streamable-2025", bare.url) as streaming,
            connect("streamable-2025", bare.url) as busy,
        ):
            await streaming.list_tools()  # holds its GET stream open (the SDK client opens one)
            async with anyio.create_task_group() as tg:
                tg.start_soon(busy.call_tool, "debug_sleep", {"seconds": 600})
                await wait_for(lambda: bare.counts()["calls_in_flight"] == 1)
                async with http.post(bare.url + "/mcp", json=INITIALIZE, headers=HEADERS) as resp:
                    body = await resp.json()
                assert resp.status == 503
                assert "max_sessions 2" in body["error"]["message"]
                assert "in flight" in body["error"]["message"]
                assert not (await streaming.call_tool("get_server_info", {})).is_error
                tg.cancel_scope.cancel()
        assert "session-evicted" not in bare.transport.snapshot()["rejections"]


async def test_a_session_silent_after_initialize_is_closed_after_the_handshake_time(
    tmp_path: Path,
) -> None:
    async with server(tmp_path, session_handshake_timeout_s=1.0) as bare, aiohttp.ClientSession() as http:
        silent = await initialize_only(http, bare.url)
        async with connect("streamable-2025", bare.url) as client:
            await client.list_tools()
            await wait_for(lambda: bare.transport.registry.get(silent) is None)
            assert await ping(http, bare.url, silent) == 404
            assert not (await client.call_tool("get_server_info", {})).is_error
            assert bare.counts()["streamable_sessions"] == 1


async def test_slow_bodies_get_408_and_cannot_starve_other_clients(tmp_path: Path) -> None:
    async with server(tmp_path, max_open_requests=4, request_body_timeout_s=1.0) as bare:
        async with anyio.create_task_group() as tg:
            statuses: list[int] = []

            async def slow() -> None:
                statuses.append(await slow_body("127.0.0.1", bare.port, interval=0.3))

            for _ in range(8):
                tg.start_soon(slow)
            await wait_for(lambda: bare.counts()["reading_requests"] == 4)
            async with connect("streamable-2026", bare.url) as client:
                assert not (await client.call_tool("get_server_info", {})).is_error
        assert statuses == [408] * 8
        assert bare.counts()["reading_requests"] == 0 and bare.counts()["open_requests"] == 0


async def test_an_sse_client_that_never_reads_is_bounded_then_dropped(tmp_path: Path) -> None:
    settings = {"max_session_requests": 8, "stream_stall_timeout_s": 1.0}
    async with server(tmp_path, **settings) as bare, aiohttp.ClientSession() as http:
        async with http.get(bare.url + "/mcp-bridge/sessions") as resp:  # the keep-alive connection
            baseline = (await resp.json())["counts"]["loop_tasks"]
        async with NonReadingSse("127.0.0.1", bare.port) as sse:
            assert (await sse.post(http, INITIALIZE))[0] == 202
            statuses: list[int] = []
            text = ""
            for n in range(5000):
                status, text = await sse.post(http, message("tools/list", id=n + 10))
                statuses.append(status)
                if status != 202:
                    break
            assert statuses[-1] == 429, statuses[-5:]
            assert "max_session_requests 8" in text and "read the stream" in text
            # The stream stalls: it is closed and its session dropped; later messages find no session.
            await wait_for(lambda: bare.counts()["sse_sessions"] == 0)
            assert (await sse.post(http, message("tools/list", id=1)))[0] == 404
        await wait_for(lambda: bare.counts()["loop_tasks"] <= baseline)  # the server tasks are gone


async def test_only_an_initialize_makes_room_at_the_cap(tmp_path: Path) -> None:
    async with server(tmp_path, max_sessions=2) as bare, aiohttp.ClientSession() as http:
        idle = [await initialize_only(http, bare.url) for _ in range(2)]
        async with http.post(bare.url + "/mcp", json=message("ping"), headers=HEADERS) as resp:
            assert resp.status == 503  # not an initialize: refused by the SDK's own cap, nobody evicted
        assert [await ping(http, bare.url, sid) for sid in idle] == [200, 200]
        assert "session-evicted" not in bare.transport.snapshot()["rejections"]


def test_stateless_entries_are_capped_the_least_recently_seen_going_first() -> None:
    registry = SessionRegistry()
    for n in range(MAX_STATELESS + 10):
        registry.seen_stateless(f"client-{n}", "1", "2026-07-28", "127.0.0.1")
        if n == 0:
            first = registry.all()[0].id
    registry.seen_stateless("client-0", "1", "2026-07-28", "127.0.0.1")  # seen again: now the most recent
    assert registry.count(STATELESS) == MAX_STATELESS
    names = {info.client_name for info in registry.all()}
    assert "client-1" not in names and "client-0" in names and registry.get(first) is not None
