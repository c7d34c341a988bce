"""A bare aiohttp application carrying only the bridge's MCP routes (no ComfyUI), for unit tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
from aiohttp import web
from mcp.server.mcpserver import MCPServer

from mcp_bridge import config
from mcp_bridge.http import transport
from mcp_bridge.http.transport import McpTransport
from mcp_bridge.mcp import server as mcp_server


@dataclass
class Options:
    """Stands in for adapter.ServerOptions."""

    user_directory: str
    listen: str = "127.0.0.1"
    port: int = 8188
    tls: bool = False
    cors_origin: str | None = None


@dataclass
class Bare:
    """A running bare server."""

    url: str
    port: int
    transport: McpTransport
    app: web.Application

    @property
    def token(self) -> str:
        assert self.transport.policy.token is not None
        return self.transport.policy.token

    def counts(self) -> dict[str, int]:
        return dict(self.transport.snapshot()["counts"])


def api_twins(routes: web.RouteTableDef) -> web.RouteTableDef:
    """Mirror every route under /api, as ComfyUI's PromptServer.add_routes does."""
    api = web.RouteTableDef()
    for route in routes:
        assert isinstance(route, web.RouteDef)
        api.route(route.method, "/api" + route.path)(route.handler)
    return api


@contextlib.asynccontextmanager
async def bare_server(
    user_dir: Path,
    settings: config.Settings | None = None,
    *,
    listen: str = "127.0.0.1",
    cors_origin: str | None = None,
    config_error: str | None = None,
    mcp: MCPServer | None = None,
    extra: web.RouteTableDef | None = None,
) -> AsyncIterator[Bare]:
    """Serve the MCP routes (and their /api twins) on a free loopback port (``mcp``: this server
    instead of the bridge's own tools only; ``extra``: more routes)."""
    settings = settings or config.Settings(debug_tools=True)
    mcp = mcp or mcp_server.create_mcp_server(settings)
    app = web.Application()
    if extra is not None:
        app.add_routes(extra)
    options = Options(str(user_dir), listen=listen, cors_origin=cors_origin)
    mcp_transport = transport.create_transport(
        mcp_server.lowlevel_server(mcp), options, settings, config_error=config_error
    )
    routes = web.RouteTableDef()
    transport.add_routes(routes, app, mcp_transport)
    app.add_routes(routes)
    app.add_routes(api_twins(routes))
    app.on_shutdown.append(mcp_transport.shutdown)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Bare(f"http://127.0.0.1:{port}", port, mcp_transport, app)
    finally:
        with anyio.fail_after(30):
            await runner.cleanup()


async def wait_for(predicate: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Poll ``predicate()`` until it is true, failing after ``limit_s`` (a bound, not a measurement)."""
    with anyio.fail_after(limit_s):
        while not predicate():  # noqa: ASYNC110 - polling state owned by the server under test
            await anyio.sleep(0.02)
