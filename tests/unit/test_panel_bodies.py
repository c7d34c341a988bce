"""The publish route reads the whole body it is sent, over a real aiohttp server (issue 24 #5)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mcp_bridge.comfyui.adapter import ServerOptions
from mcp_bridge.panel import routes as panel
from mcp_bridge.tools.published import Published
from tests.unit.fake_comfy import fake_services

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def workflow() -> dict[str, Any]:
    data = json.loads((Path(__file__).parents[2] / "workflows" / "tools" / "txt2img.json").read_text())
    data.pop("_bridge")
    data["4"]["inputs"]["ckpt_name"] = "tiny.safetensors"
    return data  # type: ignore[no-any-return]


@asynccontextmanager
async def served(root: Path) -> AsyncIterator[TestServer]:
    async with fake_services(root) as services:
        published = Published(services, root / "published")
        options = ServerOptions("127.0.0.1", 8188, False, None, str(root))
        board = panel.Panel(
            services, None, options, lambda e, d: None, asyncio.get_running_loop(), published=published
        )
        routes = web.RouteTableDef()
        board.add_routes(routes)
        app = web.Application()
        app.add_routes(routes)
        server = TestServer(app, host="127.0.0.1", port=8188)
        await server.start_server()
        try:
            yield server
        finally:
            await server.close()
            board.close()


async def post_in_parts(server: TestServer, path: str, body: bytes, parts: int = 4) -> tuple[int, Any]:
    """POST ``body`` the way a slow network delivers it: in ``parts``, with pauses between them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8188\r\nOrigin: http://127.0.0.1:8188\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode())
    step = -(-len(body) // parts)
    for start in range(0, len(body), step):
        writer.write(body[start : start + step])
        await writer.drain()
        await asyncio.sleep(0.05)
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


async def test_a_valid_body_that_arrives_in_parts_is_read_whole(tmp_path: Path) -> None:
    body = {
        "name": "slow_upload",
        "description": "a workflow whose body came in slowly",
        "prompt": workflow(),
        "selection": {"inputs": [["3", "steps"]], "outputs": []},
        "padding": "x" * 600_000,  # a big graph's worth of bytes
    }
    async with served(tmp_path) as server:
        status, reply = await post_in_parts(
            server, "/mcp-bridge/workflows/publish", json.dumps(body).encode()
        )
    assert status == 200, reply
    assert reply["workflow"]["name"] == "slow_upload"


@pytest.mark.parametrize("bad_id", [["a"], {"a": 1}, 7])
async def test_an_id_that_is_not_a_string_is_refused_by_name(tmp_path: Path, bad_id: object) -> None:
    body = {"id": bad_id, "name": "x", "description": "d", "prompt": workflow(), "selection": {}}
    async with served(tmp_path) as server:
        status, reply = await post_in_parts(
            server, "/mcp-bridge/workflows/publish", json.dumps(body).encode(), 1
        )
    assert status == 400 and "no published tool with that id" in reply["error"], reply
