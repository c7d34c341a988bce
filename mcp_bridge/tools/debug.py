"""Diagnostic tools for the test suite, registered only with the ``debug_tools`` setting.

``debug_run_workflow`` queues an arbitrary API-format workflow: that is code execution by another
name on a ComfyUI with code-running custom nodes, which is why it never exists unless a test turns
``debug_tools`` on.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations

from ..engine.jobs import summarize
from ..mcp.toolset import Toolset
from .jobs import follow_job
from .services import Services


def register(tools: Toolset, services: Services) -> None:
    """Add the debug tools."""

    @tools.tool(annotations=ToolAnnotations(open_world_hint=False))
    async def debug_run_workflow(
        workflow: dict[str, Any], wait_s: float | None = None, ctx: Context | None = None
    ) -> CallToolResult:
        """Diagnostics: queue a raw ComfyUI API-format workflow as a job and wait for it like a
        generation tool (wait_s overrides the configured bound)."""
        job = await services.runner.submit(
            "debug_run_workflow", workflow, summarize([("nodes", len(workflow))])
        )
        wait = services.settings.call_wait_s if wait_s is None else max(0.0, wait_s)
        return await follow_job(services, job, ctx, wait, cancel_on_abort=True)
