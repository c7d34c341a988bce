"""Tools added and removed while the server runs, and telling clients that the list changed.

:class:`~.mcp_server.BridgeMCPServer` lists and calls the tools kept here next to those it was built
with (through its public ``list_tools``/``call_tool``). A change is announced with
``notifications/tools/list_changed`` to every open 2025-era session (remembered by its transport
session id from the middleware, forgotten when the transport closes it, at most :data:`MAX_SESSIONS`),
and on the 2026-07-28 ``subscriptions/listen`` bus.

The one SDK seam that is not public: the handshake-era ``tools.listChanged`` capability comes only from
``NotificationOptions`` passed to ``Server.create_initialization_options``, which the SDK's session
manager calls without arguments. :func:`announce_list_changes` binds the options on the server
instance; tests/unit/test_sdk_surface.py fails if that stops reaching ``initialize``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.mcpserver.tools import Tool
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

log = logging.getLogger("comfyui_mcp_bridge")

MAX_SESSIONS = 4096


def announce_list_changes(server: Server[Any]) -> None:
    """Make ``initialize`` declare ``tools.listChanged`` (handshake-era sessions)."""
    options = NotificationOptions(tools_changed=True)
    create = type(server).create_initialization_options
    bound = functools.partial(create, server, options)
    setattr(server, "create_initialization_options", bound)  # noqa: B010 - an instance override


class LiveTools:
    """The tools that come and go at run time, by name, and the sessions to tell about it."""

    def __init__(self, bus: InMemorySubscriptionBus | None = None) -> None:
        self.bus = bus or InMemorySubscriptionBus()
        self.tools: dict[str, Tool] = {}
        self._sessions: dict[str, ServerSession] = {}  # transport session id -> its latest session
        self.notified = 0  # notifications sent (for tests and the panel)

    def put(self, tool: Tool) -> None:
        """Add ``tool`` or replace the one of the same name."""
        self.tools[tool.name] = tool

    def remove(self, name: str) -> None:
        self.tools.pop(name, None)

    async def observe(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        """SDK middleware: remember each handshake-era session (it can receive notifications)."""
        session = getattr(ctx, "session", None)
        if isinstance(session, ServerSession) and ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            key = _session_key(getattr(ctx, "request", None))
            if key is not None:
                self._sessions.pop(key, None)
                self._sessions[key] = session  # the newest last
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.pop(next(iter(self._sessions)))
        return await call_next(ctx)

    def forget(self, session_id: str) -> None:
        """The transport closed a session: stop telling it."""
        self._sessions.pop(session_id, None)

    async def changed(self) -> int:
        """Tell every session and listener that the tool list changed; return the sessions told."""
        told = 0
        for key, session in list(self._sessions.items()):
            try:
                await session.send_tool_list_changed()
                told += 1
            except Exception:  # noqa: BLE001 - a closed session just stops listening
                self._sessions.pop(key, None)
        try:
            await self.bus.publish(ToolsListChanged())
        except Exception:  # noqa: BLE001 - listeners are best effort too
            log.debug("comfyui-mcp-bridge: tools/list_changed not published", exc_info=True)
        self.notified += told
        return told


def _session_key(request: object) -> str | None:
    """The transport session id of a request: the Mcp-Session-Id header, or SSE's session_id query."""
    headers = getattr(request, "headers", None)
    query = getattr(request, "query_params", None)
    found = headers.get("mcp-session-id") if headers is not None else None
    if found is None and query is not None:
        found = query.get("session_id")
    return str(found) if found else None
