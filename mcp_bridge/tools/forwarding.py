"""Calls about another instance's job or file, forwarded to that peer (never twice)."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from ..engine.ids import parse_job_id
from ..engine.peers import PeerError, forwarded_by
from .services import Services


async def forward_if_remote(
    services: Services, ctx: Context | None, tool: str, arguments: dict[str, Any], wait_s: float = 0.0
) -> CallToolResult | None:
    """The answer of the instance that owns ``arguments["job_id"]`` when that is a peer, else None."""
    handle = parse_job_id(str(arguments["job_id"]))
    if handle.instance is None or handle.instance == services.runner.instance_id:
        return None
    return await forward_to(
        services, ctx, handle.instance, f"Job {handle.text[:80]!r}", tool, arguments, wait_s
    )


async def forward_to(
    services: Services,
    ctx: Context | None,
    instance: str,
    what: str,
    tool: str,
    arguments: dict[str, Any],
    wait_s: float = 0.0,
) -> CallToolResult:
    """Call ``tool`` on the peer ``instance`` that owns ``what``, progress relayed; ``PeerError`` when
    it is no configured peer, does not answer, or this request was itself forwarded (never twice)."""
    if forwarded_by(ctx.headers if ctx is not None else None):
        own = services.runner.instance_id
        raise PeerError(f"{what} belongs to instance {instance!r}, not this one ({own!r}).")
    peer = services.peers.get(instance, what)
    report = ctx.report_progress if ctx is not None else None
    return await services.peers.call_tool(peer, tool, arguments, wait_s, report)
