"""The MCP routes on a bare aiohttp app (no ComfyUI): SDK clients, session registry, caps, shutdown."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import httpx2
import pytest
from _bare import Bare, bare_server, wait_for
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from mcp_bridge import config

pytestmark = pytest.mark.anyio

KINDS = ["sse", "streamable-2025", "streamable-2026"]


@contextlib.asynccontextmanager
async def connect(kind: str, url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Client]:
    """An SDK client for one of the ways in; its HTTP client closed with it (the SDK leaves it open)."""
    if kind == "sse":
        async with Client(sse_client(url + "/mcp/sse", headers=headers), mode="legacy") as client:
            yield client
        return
    mode = "legacy" if kind == "streamable-2025" else "auto"  # auto discovers 2026-07-28
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=30) as http,
        Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[Bare]:
    async with bare_server(tmp_path) as server:
        yield server


@pytest.mark.parametrize("prefix", ["", "/api"])
@pytest.mark.parametrize("kind", KINDS)
async def test_sdk_clients_call_get_server_info(bare: Bare, kind: str, prefix: str) -> None:
    async with connect(kind, bare.url + prefix) as client:
        assert client.server_info is not None and client.server_info.name == "comfyui-mcp-bridge"
        assert client.protocol_version == ("2026-07-28" if kind == "streamable-2026" else "2025-11-25")
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "get_server_info" in tools and tools["get_server_info"].output_schema is not None
        result = await client.call_tool("get_server_info", {})
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["bridge_version"]
        assert result.structured_content["queue_length"] == 0  # no ComfyUI here
    await wait_for(lambda: bare.counts()["sessions"] == 0 and bare.counts()["open_requests"] == 0)


async def test_tool_errors_reach_the_client_with_their_message(bare: Bare) -> None:
    async with connect("streamable-2026", bare.url) as client:
        result = await client.call_tool("debug_fail", {"message": "no such checkpoint 'x'"})
        assert result.is_error
        assert "no such checkpoint 'x'" in result.content[0].text  # type: ignore[union-attr]


async def test_the_sse_endpoint_event_names_the_messages_url_under_the_same_prefix(bare: Bare) -> None:
    for prefix in ("", "/api"):
        async with aiohttp.ClientSession() as session:
            async with session.get(bare.url + prefix + "/mcp/sse") as resp:
                assert resp.status == 200
                first = await resp.content.readuntil(b"\r\n\r\n")
        assert b"event: endpoint" in first
        assert f"data: {prefix}/mcp/messages?session_id=".encode() in first


async def test_the_registry_tracks_sessions_and_clients(bare: Bare) -> None:
    events: list[tuple[str, str]] = []
    remove = bare.transport.registry.add_observer(
        lambda event, info: events.append((event, info["transport"]))
    )
    assert bare.transport.snapshot()["manager"] == "idle"  # started lazily
    async with connect("sse", bare.url) as sse, connect("streamable-2025", bare.url) as shttp:
        await sse.call_tool("get_server_info", {})
        await shttp.call_tool("get_server_info", {})
        snap = bare.transport.snapshot()
        assert snap["manager"] == "running"
        live = {s["transport"]: s for s in snap["sessions"]}
        assert set(live) == {"sse", "streamable-http"}
        for info in live.values():
            assert info["client_name"] == "mcp" and info["protocol_version"] == "2025-11-25"
            assert info["peer"] == "127.0.0.1" and info["requests"] >= 2
            assert info["connected_since"] <= info["last_activity"]
        assert snap["counts"]["sse_streams"] == 1
    async with connect("streamable-2026", bare.url) as modern:
        await modern.call_tool("get_server_info", {})
    await wait_for(lambda: bare.counts()["sessions"] == 0)
    snap = bare.transport.snapshot()
    assert [s["transport"] for s in snap["sessions"]] == ["streamable-http-2026"]
    assert snap["sessions"][0]["protocol_version"] == "2026-07-28"
    remove()
    assert ("opened", "sse") in events and ("closed", "sse") in events
    assert ("opened", "streamable-http") in events and ("closed", "streamable-http") in events
    assert ("identified", "streamable-http-2026") in events


async def test_the_status_route_serves_the_snapshot(bare: Bare) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(bare.url + "/api/mcp-bridge/sessions") as resp:
            data = await resp.json()
    assert resp.status == 200
    assert data["counts"]["sessions"] == 0 and data["token_required"] is False
    assert data["limits"]["max_sessions"] == config.Settings().max_sessions


async def test_the_sse_stream_cap_answers_503_and_frees_up(tmp_path: Path) -> None:
    # The session cap (an idle session makes room, a busy one never) is tested in test_session_limits.
    settings = config.Settings(max_sessions=2, max_sse_streams=1)
    async with bare_server(tmp_path, settings) as bare:
        async with connect("sse", bare.url) as first:
            await first.list_tools()
            async with aiohttp.ClientSession() as session:
                async with session.get(bare.url + "/mcp/sse") as resp:
                    assert resp.status == 503
        await wait_for(lambda: bare.counts()["sessions"] == 0)
        async with connect("sse", bare.url) as again, connect("streamable-2025", bare.url) as other:
            await again.list_tools()
            await other.list_tools()
        assert bare.transport.snapshot()["rejections"]["sse-limit"] == 1


async def test_requests_beyond_the_open_request_cap_answer_503_and_free_up(tmp_path: Path) -> None:
    # 2026-era calls have no session to count: the cap on open requests is what bounds them.
    settings = config.Settings(debug_tools=True, max_open_requests=1)
    async with bare_server(tmp_path, settings) as bare:

        async def long_call() -> None:
            async with connect("streamable-2026", bare.url) as client:
                await client.call_tool("debug_sleep", {"seconds": 600})

        async with anyio.create_task_group() as tg:
            tg.start_soon(long_call)
            await wait_for(lambda: bare.counts()["calls_in_flight"] == 1)
            async with aiohttp.ClientSession() as session:
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
                async with session.post(bare.url + "/mcp", json=body) as resp:
                    assert resp.status == 503
                    assert "limit 1" in await resp.text()
            tg.cancel_scope.cancel()
        await wait_for(lambda: bare.counts()["open_requests"] == 0)
        async with connect("streamable-2026", bare.url) as client:
            assert (await client.call_tool("get_server_info", {})).is_error is False
        assert bare.transport.snapshot()["rejections"]["request-limit"] == 1


@pytest.mark.parametrize("kind", ["sse", "streamable-2026"])
async def test_a_client_gone_mid_call_leaves_no_call_or_session_behind(bare: Bare, kind: str) -> None:
    """Client and server share this loop, so tasks are counted in the integration test instead."""

    async def call_forever() -> None:
        async with connect(kind, bare.url) as client:
            await client.call_tool("debug_sleep", {"seconds": 600})

    async with anyio.create_task_group() as tg:
        tg.start_soon(call_forever)
        await wait_for(lambda: bare.counts()["calls_in_flight"] == 1)
        tg.cancel_scope.cancel()  # the client goes away (its connections close)
    await wait_for(
        lambda: (
            bare.counts()["calls_in_flight"] == 0
            and bare.counts()["sessions"] == 0
            and bare.counts()["open_requests"] == 0
        )
    )


async def test_fifty_sessions_opened_and_closed_bring_the_counts_back_to_zero(bare: Bare) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for i in range(50):
            client = await stack.enter_async_context(
                connect("sse" if i % 5 == 0 else "streamable-2025", bare.url)
            )
            await client.list_tools()
        counts = bare.counts()
        assert counts["sessions"] == 50 and counts["sse_streams"] == 10
    await wait_for(lambda: bare.counts()["sessions"] == 0 and bare.counts()["open_requests"] == 0)
    assert bare.counts()["sse_streams"] == 0 and bare.counts()["standalone_streams"] == 0


async def test_shutdown_cancels_open_streams_and_stops_the_manager(tmp_path: Path) -> None:
    """aiohttp waits up to 60 s for running handlers; on_shutdown must end MCP streams at once."""
    ended: list[str] = []

    async def hold(kind: str, bare: Bare) -> None:
        try:
            async with connect(kind, bare.url) as client:
                await client.call_tool("debug_sleep", {"seconds": 600})
        except Exception:  # noqa: BLE001 - however the client notices, its call has ended
            pass
        ended.append(kind)

    async with anyio.create_task_group() as tg:
        async with bare_server(tmp_path) as bare:
            for kind in KINDS:
                tg.start_soon(hold, kind, bare)
            await wait_for(lambda: bare.counts()["calls_in_flight"] == 3)
            transport = bare.transport
        # bare_server's exit ran runner.cleanup() (bounded by fail_after): the streams were cut.
        assert transport.snapshot()["manager"] == "stopped"
        assert transport.snapshot()["counts"]["open_requests"] == 0
        await wait_for(lambda: len(ended) == 3)


async def test_requests_after_shutdown_are_refused(tmp_path: Path) -> None:
    async with bare_server(tmp_path) as bare:
        await bare.transport.shutdown()
        async with aiohttp.ClientSession() as session:
            for path in ("/mcp/sse", "/mcp"):
                async with session.get(bare.url + path, headers={"Accept": "text/event-stream"}) as resp:
                    assert resp.status == 503
