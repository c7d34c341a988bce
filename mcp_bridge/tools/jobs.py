"""MCP tools about jobs and ComfyUI's queue: get_job, wait_job, cancel_job, get_queue_status."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from ..engine.jobs import Job, JobState
from ..mcp.toolset import Toolset
from .context import is_mine, session_of
from .errors import Refused
from .forwarding import forward_if_remote
from .results import present
from .services import Services

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

# Mirrored into an ``Mcp-Param-Job-Id`` header by 2026-07-28 clients: a balancer routes on its prefix.
JobId = Annotated[
    str,
    Field(
        description="The job id a generation call returned.",
        json_schema_extra={"x-mcp-header": "Job-Id"},
    ),
]


def job_or_error(services: Services, job_id: str) -> Job:
    """The job with this id, or a tool error (naming no other job: a job id is its capability)."""
    job = services.registry.get(job_id.strip())
    if job is None:
        raise Refused(
            f"Unknown job id {job_id[:80]!r}: job ids come from the generation tools, and finished jobs "
            "are kept for a limited time."
        )
    return job


async def follow_job(
    services: Services, job: Job, ctx: Context | None, wait_s: float, *, cancel_on_abort: bool
) -> CallToolResult:
    """Wait for ``job`` up to ``wait_s`` seconds with MCP progress, then present it.

    If the call itself is cancelled (MCP ``notifications/cancelled``, a closed 2026 stream) and
    ``cancel_on_abort`` is set, the job is cancelled too.
    """
    # report_progress is a no-op when the caller asked for no progress.
    report = ctx.report_progress if ctx is not None else None
    if cancel_on_abort and job.owner is None:  # the call that submitted the job: its session owns it
        job.owner = session_of(ctx)
    try:
        await services.runner.follow(job, report, wait_s)
    except asyncio.CancelledError:
        if cancel_on_abort and not job.state.finished:
            services.runner.cancel(job)
        raise
    return await present(services, job)


async def peer_counts(services: Services) -> list[dict[str, Any]]:
    """How busy each peer is, from its health route (counts only)."""
    if not services.peers.peers:
        return []
    keys = ("id", "answers", "queue_length")
    return [{key: entry.get(key) for key in keys} for entry in await services.peers.status()]


async def queue_status(services: Services, ctx: Context | None) -> dict[str, Any]:
    """get_queue_status's answer: ComfyUI's queue, our jobs marked, job ids only for the caller's."""
    view = services.comfy.queue_view()

    def describe(prompt_id: str, position: int | None) -> dict[str, Any]:
        job = services.registry.of_prompt(prompt_id)
        if job is None:  # queued through ComfyUI's own API: its prompt id is no job handle here
            entry: dict[str, Any] = {"prompt_id": prompt_id, "ours": False}
        elif is_mine(job, ctx):
            entry = {"prompt_id": prompt_id, "ours": True, "mine": True, "job_id": job.id}
            entry.update(tool=job.tool, message=job.message(), summary=job.summary)
        else:  # another client's job: the id is its capability, so it is never shown
            entry = {"ours": True, "mine": False, "tool": job.tool, "message": job.message()}
        if position is not None:
            entry["position"] = position
        return entry

    mine = [
        j.to_dict() for j in services.registry.active() if j.state is JobState.RUNNING and is_mine(j, ctx)
    ]
    return {
        "running": [describe(pid, None) for pid in view.running],
        "pending": [describe(pid, i + 1) for i, pid in enumerate(view.pending)],
        "queue_length": len(view.running) + len(view.pending),
        "our_running_jobs": mine,
        "peers": await peer_counts(services),
    }


def register(tools: Toolset, services: Services) -> None:
    """Add the job and queue tools."""

    @tools.tool(annotations=READ_ONLY)
    async def get_job(job_id: JobId, ctx: Context | None = None) -> CallToolResult:
        """A job's state at once: queued or running (with progress), or the result its call returns."""
        remote = await forward_if_remote(services, ctx, "get_job", {"job_id": job_id})
        if remote is not None:
            return remote
        return await present(services, job_or_error(services, job_id))

    @tools.tool(annotations=READ_ONLY)
    async def wait_job(job_id: JobId, timeout_s: float = 30.0, ctx: Context | None = None) -> CallToolResult:
        """Wait up to timeout_s (capped by the server) for a job, with progress: its result, or its
        state if it still runs (call again)."""
        if not (timeout_s == timeout_s and 0 <= timeout_s):  # NaN or negative
            raise Refused("timeout_s must be a number of seconds >= 0.")
        wait = min(timeout_s, services.settings.call_wait_s)
        remote = await forward_if_remote(
            services, ctx, "wait_job", {"job_id": job_id, "timeout_s": wait}, wait
        )
        if remote is not None:
            return remote
        job = job_or_error(services, job_id)
        return await follow_job(services, job, ctx, wait, cancel_on_abort=False)

    @tools.tool(
        annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True, open_world_hint=False)
    )
    async def cancel_job(job_id: JobId, ctx: Context | None = None) -> dict[str, Any]:
        """Cancel a job: removed if queued, interrupted if running; never anyone else's prompt."""
        remote = await forward_if_remote(services, ctx, "cancel_job", {"job_id": job_id}, 10.0)
        if remote is not None:
            if remote.is_error or remote.structured_content is None:
                raise Refused(" ".join(c.text for c in remote.content if isinstance(c, TextContent)))
            answer: dict[str, Any] = remote.structured_content
            return answer
        job = job_or_error(services, job_id)
        outcome = services.runner.cancel(job)
        if outcome == "interrupted":
            await job.wait(10.0)
        return {"job_id": job.id, "outcome": outcome, "state": job.state.value}

    @tools.tool(annotations=READ_ONLY)
    async def get_queue_status(ctx: Context | None = None) -> dict[str, Any]:
        """ComfyUI's queue: running and pending prompts in order; this server's marked ``ours`` (job
        ids only for your session's); ``peers``: each other instance's queue length."""
        return await queue_status(services, ctx)
