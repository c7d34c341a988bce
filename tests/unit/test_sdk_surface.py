"""The parts of the MCP SDK the transport relies on, checked directly so an SDK change fails here first."""

from __future__ import annotations

import inspect

from mcp.server.mcpserver import MCPServer
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from mcp_bridge.mcp.server import lowlevel_server


def test_the_lowlevel_server_is_the_one_mcpserver_serves_through() -> None:
    mcp = MCPServer("probe")

    async def middleware(ctx: object, call_next: object) -> object:  # pragma: no cover - never called
        raise AssertionError

    mcp.middleware.append(middleware)
    server = lowlevel_server(mcp)
    assert server.name == "probe"
    assert server.middleware is mcp.middleware  # our observer runs on every transport we serve
    assert callable(server.create_initialization_options) and callable(server.run)


def test_the_caps_we_pass_exist() -> None:
    assert "max_sessions" in inspect.signature(StreamableHTTPSessionManager).parameters
    assert "session_idle_timeout" in inspect.signature(StreamableHTTPSessionManager).parameters
    assert "max_request_body_size" in inspect.signature(SseServerTransport).parameters


def test_both_protocol_eras_are_known() -> None:
    assert "2025-11-25" in HANDSHAKE_PROTOCOL_VERSIONS and "2026-07-28" in MODERN_PROTOCOL_VERSIONS


def test_initialize_declares_tools_list_changed() -> None:
    """The one non-public seam (server/live_tools.py): handshake-era initialize must say listChanged."""
    from mcp_bridge.mcp.server import create_mcp_server

    options = lowlevel_server(create_mcp_server()).create_initialization_options()
    assert options.capabilities.tools is not None and options.capabilities.tools.list_changed is True


def test_the_session_api_live_tools_use_exists() -> None:
    from mcp.server.session import ServerSession
    from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged

    assert callable(ServerSession.send_tool_list_changed)
    assert callable(InMemorySubscriptionBus.publish) and ToolsListChanged
    assert "subscriptions" in inspect.signature(MCPServer).parameters
