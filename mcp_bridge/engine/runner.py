"""Submit prompts as jobs, follow them with progress, cancel them precisely.

The glue between the job registry (plain Python) and ComfyUI's queue (the adapter).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ..comfyui.adapter import Comfy
from .jobs import Job, JobRegistry

log = logging.getLogger("comfyui_mcp_bridge")

ProgressReport = Callable[[float, float, str], Awaitable[None]]


class JobRunner:
    """Queue prompts on ComfyUI as jobs and follow them."""

    def __init__(self, comfy: Comfy, registry: JobRegistry) -> None:
        self.comfy = comfy
        self.registry = registry

    async def submit(
        self,
        tool: str,
        prompt: dict[str, Any],
        summary: str = "",
        meta: dict[str, Any] | None = None,
        *,
        job_id: str | None = None,
    ) -> Job:
        """Register a job, then queue its prompt (raises ``PromptRejected``; nothing is queued then)."""
        job_id = job_id or str(uuid.uuid4())
        job = self.registry.create(job_id, tool, prompt, summary)
        job.meta.update(meta or {})
        try:
            await self.comfy.enqueue(prompt, job_id)
        except BaseException:
            self.comfy.unwatch(job_id)
            self.registry.discard(job_id)
            raise
        self.registry.refresh_positions()
        return job

    def cancel(self, job: Job) -> str:
        """Cancel ``job``: remove it if pending, interrupt it if running; returns what happened."""
        if job.state.finished:
            return "already_finished"
        job.cancel_requested = True
        outcome = self.comfy.cancel(job.id)
        if outcome == "removed":
            self.comfy.unwatch(job.id)
            self.registry.mark_cancelled(job.id)
        return outcome

    def on_done(self, job_id: str, entry: dict[str, Any] | None) -> None:
        """Completion from ComfyUI (on the loop): finish the job and stop watching its events."""
        self.comfy.unwatch(job_id)
        self.registry.on_done(job_id, entry)

    async def follow(self, job: Job, report: ProgressReport | None, timeout: float) -> bool:
        """Wait up to ``timeout`` s for ``job``, reporting progress (0–100) on every change.

        Returns True if the job finished. Progress values strictly increase, as MCP requires.
        """
        changed = asyncio.Event()
        unsubscribe = job.subscribe(lambda _job: changed.set())
        deadline = time.monotonic() + timeout
        last_value = -1.0
        last_message = None
        try:
            while not job.state.finished:
                if report is not None:
                    value = round(job.fraction() * 100, 2)
                    message = job.message()
                    if value > last_value or message != last_message:
                        value = max(value, round(last_value + 0.01, 2))
                        if value <= 100:
                            await report(value, 100.0, message)
                        last_value, last_message = value, message
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                changed.clear()
                try:
                    await asyncio.wait_for(changed.wait(), left)
                except asyncio.TimeoutError:
                    return job.state.finished
            return True
        finally:
            unsubscribe()
