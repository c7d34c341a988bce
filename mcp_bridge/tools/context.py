"""What a tool call's MCP context tells the layers below: the caller's session and its roots."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from mcp.server.mcpserver import Context
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from ..delivery.outputs import ListRoots
from ..engine.jobs import Job


def session_of(ctx: Context | None) -> str | None:
    """The MCP session a request came in (a job is "mine" when my session submitted it).

    The ``Mcp-Session-Id`` of a 2025-era Streamable HTTP session, the ``session_id`` of a legacy SSE
    one (both checked by the transport before the request arrives); None for stateless 2026-era
    requests, which have no session.
    """
    if ctx is None or ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return None
    headers = ctx.headers
    session_id = headers.get("mcp-session-id") if headers is not None else None
    if session_id:
        return "streamable:" + session_id
    query = getattr(ctx.request_context.request, "query_params", None)
    session_id = query.get("session_id") if query is not None else None
    return "sse:" + session_id if session_id else None


def is_mine(job: Job, ctx: Context | None) -> bool:
    """Whether the caller's session submitted ``job`` (never for stateless callers)."""
    return job.owner is not None and job.owner == session_of(ctx)


def roots_of(ctx: Context | None) -> ListRoots | None:
    """How to ask the caller for its roots (None when it declared none)."""
    caps = ctx.client_capabilities if ctx is not None else None
    if ctx is None or caps is None or caps.roots is None:
        return None
    session = ctx.request_context.session

    async def list_roots() -> Iterable[str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # roots are deprecated in 2026-07-28, still used by clients
            listed = await session.list_roots()
        return [str(root.uri) for root in listed.roots]

    return list_roots
