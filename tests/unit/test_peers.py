"""Forwarding to peers over real loopback HTTP: jobs and outputs of another instance reach it; only
configured peers are contacted, tokens go to their own peer only, redirects are not followed."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from aiohttp import web
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, ResourceLink

from mcp_bridge.bridge import build_mcp
from mcp_bridge.config import Settings
from mcp_bridge.engine.peers import FORWARDED_HEADER, Peer, Peers, parse_peers
from mcp_bridge.tools.services import Services
from tests.unit._bare import bare_server
from tests.unit.fake_comfy import fake_services

pytestmark = pytest.mark.anyio

BASE = {"prompt": "a fox", "width": 64, "height": 64, "steps": 2, "seed": 7}
UUID = "3f2a9c1e-0b7d-4e55-9a61-2b8f0c6d7e10"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


@asynccontextmanager
async def instance(root: Path, own: str, peers: dict[str, Peer], **settings: Any) -> AsyncIterator[Services]:
    root.mkdir(parents=True, exist_ok=True)
    async with fake_services(root, Settings(**settings)) as services:
        services.runner.instance_id = own
        services.peers = Peers(own, peers, timeout_s=5.0)
        yield services


@asynccontextmanager
async def served(root: Path, services: Services) -> AsyncIterator[str]:
    """``services`` behind a real HTTP MCP endpoint; yields its URL."""
    async with bare_server(root, services.settings, mcp=build_mcp(services)) as server:
        yield server.url + "/mcp"


@asynccontextmanager
async def serving(routes: web.RouteTableDef) -> AsyncIterator[str]:
    """``routes`` on a free loopback port; yields the URL of its /mcp path."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def recorder(redirect_to: str | None = None) -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP server that records every request's headers (and redirects when told to)."""
    seen: list[dict[str, str]] = []
    routes = web.RouteTableDef()

    @routes.route("*", "/{tail:.*}")
    async def anything(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if redirect_to is not None:
            raise web.HTTPTemporaryRedirect(redirect_to)
        return web.Response(status=404)

    async with serving(routes) as url:
        yield url, seen


async def test_a_peers_job_and_output_are_waited_on_read_and_cancelled_through_another_instance(
    tmp_path: Path,
) -> None:
    settings = {"require_token_on_loopback": True}
    async with instance(tmp_path / "b", "b", {}, **settings) as b, served(tmp_path / "b", b) as url:
        async with Client(build_mcp(b)) as direct:
            made = await direct.call_tool("generate_image", BASE)
        job_id = made.structured_content["job_id"]  # type: ignore[index]
        (link,) = [block for block in made.content if isinstance(block, ResourceLink)]
        token = (tmp_path / "b" / "comfyui-mcp-bridge.token").read_text().strip()
        async with (
            instance(tmp_path / "a", "a", {"b": Peer("b", url, token)}) as a,
            Client(build_mcp(a)) as client,
        ):
            progress: list[float] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)

            waited = await client.call_tool("wait_job", {"job_id": job_id}, progress_callback=on_progress)
            got = await client.call_tool("get_job", {"job_id": job_id})
            cancelled = await client.call_tool("cancel_job", {"job_id": job_id})
            read = await client.read_resource(str(link.uri))
    assert job_id.startswith("b.") and str(link.uri).startswith("comfy://b/output/")
    assert not waited.is_error, text(waited)
    assert waited.structured_content["state"] == "succeeded"  # type: ignore[index]
    assert got.structured_content == waited.structured_content
    assert cancelled.structured_content == {
        "job_id": job_id,
        "outcome": "already_finished",
        "state": "succeeded",
    }
    blob = read.contents[0]
    data = base64.b64decode(blob.blob)  # type: ignore[union-attr]
    assert data.startswith(b"\x89PNG") and blob.mime_type == "image/png"


async def test_a_queued_peer_job_is_cancelled_through_another_instance(tmp_path: Path) -> None:
    async with instance(tmp_path / "b", "b", {}) as b, served(tmp_path / "b", b) as url:
        b.comfy.hold = True  # type: ignore[attr-defined]
        job = await b.runner.submit("t", {"1": {"class_type": "EmptyImage", "inputs": {}}})
        async with instance(tmp_path / "a", "a", {"b": Peer("b", url)}) as a, Client(build_mcp(a)) as client:
            cancelled = await client.call_tool("cancel_job", {"job_id": job.id})
    assert cancelled.structured_content == {"job_id": job.id, "outcome": "removed", "state": "cancelled"}


async def test_an_instance_not_in_the_peers_setting_is_refused_and_nobody_is_contacted(
    tmp_path: Path,
) -> None:
    async with recorder() as (url, seen):
        peers = {"b": Peer("b", url, "token-of-b")}
        async with instance(tmp_path, "a", peers) as a, Client(build_mcp(a)) as client:
            waited = await client.call_tool("wait_job", {"job_id": f"evil.{UUID}"})
            with pytest.raises(Exception, match="evil"):
                await client.read_resource("comfy://evil/output/mcp/x.png")
    assert waited.is_error and "'evil'" in text(waited) and "peers: b" in text(waited)
    assert seen == []


async def test_a_peer_that_redirects_gets_no_token_to_the_other_host(tmp_path: Path) -> None:
    async with recorder() as (elsewhere, caught), recorder(redirect_to=elsewhere) as (url, seen):
        peers = {"b": Peer("b", url, "token-of-b")}
        async with instance(tmp_path, "a", peers) as a, Client(build_mcp(a)) as client:
            waited = await client.call_tool("get_job", {"job_id": f"b.{UUID}"})
    assert waited.is_error and "'b'" in text(waited), text(waited)
    assert seen and all(h.get("Authorization") == "Bearer token-of-b" for h in seen)
    assert caught == []  # the redirect was not followed: the other host saw nothing, no token


async def test_a_peer_that_is_down_is_a_tool_error_naming_it(tmp_path: Path) -> None:
    async with recorder() as (url, _seen):
        pass  # the port is closed now
    async with instance(tmp_path, "a", {"b": Peer("b", url)}) as a, Client(build_mcp(a)) as client:
        waited = await client.call_tool("wait_job", {"job_id": f"b.{UUID}", "timeout_s": 1})
    assert waited.is_error and f"peer 'b' ({url})" in text(waited), text(waited)


async def test_a_forwarded_request_is_never_forwarded_again(tmp_path: Path) -> None:
    async with recorder() as (peer_url, seen):
        async with instance(tmp_path, "a", {"b": Peer("b", peer_url)}) as a, served(tmp_path, a) as url:
            http = httpx2.AsyncClient(headers={FORWARDED_HEADER: "c"})
            transport = streamable_http_client(url, http_client=http)
            async with http, Client(transport, mode="2026-07-28") as client:
                waited = await client.call_tool("wait_job", {"job_id": f"b.{UUID}"})
    assert waited.is_error and "belongs to instance 'b', not this one ('a')" in text(waited)
    assert seen == []


def test_tokens_pair_with_their_own_peer_and_this_instance_is_left_out() -> None:
    peers = parse_peers(
        "a",
        ["a=http://10.0.0.1:8188/mcp", "b=http://10.0.0.2:8188/mcp", "c=https://c.lan/mcp"],
        ["b=tb", "c=tc", "z=tz"],
    )
    assert peers == {
        "b": Peer("b", "http://10.0.0.2:8188/mcp", "tb"),
        "c": Peer("c", "https://c.lan/mcp", "tc"),
    }
    assert peers["b"].health_url() == "http://10.0.0.2:8188/mcp-bridge/health"
    with pytest.raises(ValueError, match="peer_tokens") as caught:
        parse_peers("a", [], ["b"])
    assert "tb" not in str(caught.value)


async def test_server_info_and_queue_status_say_which_peers_answer_and_how_busy_they_are(
    tmp_path: Path,
) -> None:
    async with recorder() as (gone, _seen):
        pass  # nothing listens there any more
    routes = web.RouteTableDef()

    @routes.get("/mcp-bridge/health")
    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "instance_id": "b", "queue_length": 3})

    async with serving(routes) as healthy:
        peers = {"b": Peer("b", healthy), "c": Peer("c", gone)}
        async with instance(tmp_path, "a", peers) as a, Client(build_mcp(a)) as client:
            info = await client.call_tool("get_server_info", {})
            queue = await client.call_tool("get_queue_status", {})
    data = info.structured_content
    assert data is not None and data["instance_id"] == "a"
    by_id = {peer["id"]: peer for peer in data["peers"]}
    assert by_id["b"]["answers"] is True and by_id["b"]["queue_length"] == 3
    assert by_id["c"]["answers"] is False and by_id["c"]["error"]
    assert queue.structured_content["peers"] == [  # type: ignore[index]
        {"id": "b", "answers": True, "queue_length": 3},
        {"id": "c", "answers": False, "queue_length": None},
    ]


async def test_job_id_is_marked_for_the_mcp_param_job_id_header(tmp_path: Path) -> None:
    async with instance(tmp_path, "a", {}) as a, Client(build_mcp(a)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ("get_job", "wait_job", "cancel_job"):
        assert tools[name].input_schema["properties"]["job_id"]["x-mcp-header"] == "Job-Id", name
