"""Submit prompts as jobs, follow them with progress, cancel them precisely.

The glue between the job registry (plain Python) and ComfyUI's queue (the adapter).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ..comfyui.backend import ComfyBackend, PromptOutcome
from .ids import new_job_id
from .jobs import Job, JobRegistry, JobState

log = logging.getLogger("comfyui_mcp_bridge")

ProgressReport = Callable[[float, float, str], Awaitable[None]]
Deliver = Callable[[Job], Awaitable[Any]]  # the job-end step of a call; its result goes to job.delivery

# A waiting job's queue position is sent at most this often (coalesced: the latest one wins). Every
# queue change moves every waiting job, so telling each one every time costs O(n²) notifications.
STEP_BACKLOG = 64  # sampler steps a slow client may lag behind before the oldest are dropped
POSITION_NOTICE_INTERVAL_S = 1.0


class JobRunner:
    """Queue prompts on ComfyUI as jobs and follow them."""

    def __init__(self, comfy: ComfyBackend, registry: JobRegistry, instance_id: str = "local") -> None:
        self.comfy = comfy
        self.registry = registry
        self.instance_id = instance_id  # the owner part of the job ids made here
        self._deliveries: dict[str, Deliver] = {}
        self._settled: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        registry.detect_removals(comfy.has_run)
        registry.observe(self._on_change)

    async def submit(
        self,
        tool: str,
        prompt: dict[str, Any] | list[dict[str, Any]],
        summary: str = "",
        meta: dict[str, Any] | None = None,
        *,
        job_id: str | None = None,
        deliver: Deliver | None = None,
    ) -> Job:
        """Register a job, then queue its prompt, or its prompts in order when given a list (raises
        ``PromptRejected``; nothing of the job stays queued then).

        ``deliver`` runs once when the job ends, whoever is (or is not) waiting for it; followers see
        the job settled only after it ran.
        """
        prompts = prompt if isinstance(prompt, list) else [prompt]
        if not prompts:
            raise ValueError("a job needs at least one prompt")
        job_id = job_id or new_job_id(self.instance_id)
        prompt_ids = [str(uuid.uuid4()) for _ in prompts]
        job = self.registry.create(job_id, tool, prompts[0], summary, prompt_ids)
        job.meta.update(meta or {})
        if deliver is not None:
            self._deliveries[job_id] = deliver
            self._settled[job_id] = asyncio.Event()
        queued: list[str] = []
        try:
            for one, prompt_id in zip(prompts, prompt_ids, strict=True):
                await self.comfy.enqueue(one, prompt_id)
                queued.append(prompt_id)
        except BaseException:
            for prompt_id in prompt_ids:
                if prompt_id in queued:
                    self.comfy.cancel(prompt_id)
                self.comfy.unwatch(prompt_id)
            self._deliveries.pop(job_id, None)
            self._settled.pop(job_id, None)
            self.registry.discard(job_id)
            raise
        self.registry.mark_on_queue(job_id)
        self.registry.refresh_positions()
        return job

    def cancel(self, job: Job) -> str:
        """Cancel ``job``: remove it if pending, interrupt it if running; returns what happened."""
        if job.state.finished:
            return "already_finished"
        job.cancel_requested = True
        # The last first: a pending prompt behind the running one must not start when it stops.
        outcomes = [self.comfy.cancel(prompt_id) for prompt_id in reversed(job.open_prompts)]
        if "interrupted" in outcomes:
            return "interrupted"
        if "removed" in outcomes:
            for prompt_id in job.prompt_ids:
                self.comfy.unwatch(prompt_id)
            self.registry.mark_cancelled(job.id)
            return "removed"
        return "not_found"

    async def settled(self, job: Job, timeout: float = 60.0) -> None:
        """Wait until a finished job's delivery has run (at once when it has none or it ran)."""
        event = self._settled.get(job.id)
        if event is not None:
            try:
                await asyncio.wait_for(asyncio.shield(event.wait()), timeout)
            except asyncio.TimeoutError:
                log.warning("mcp-bridge: job %s: delivery still running after %.0f s", job.id, timeout)

    def _on_change(self, job: Job) -> None:
        # Registry observer (on the loop): a job that just ended (done, cancelled, removed from
        # ComfyUI's queue) is no longer watched and gets its delivery, exactly once.
        if job.state.finished:
            for prompt_id in job.open_prompts[1:]:  # a failed prompt ends its job: drop the rest
                self.comfy.cancel(prompt_id)
            for prompt_id in job.prompt_ids:
                self.comfy.unwatch(prompt_id)
        if job.state.finished and job.id in self._deliveries:
            task = asyncio.get_running_loop().create_task(self._deliver(job, self._deliveries.pop(job.id)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, job: Job, deliver: Deliver) -> None:
        try:
            job.delivery = await deliver(job)
        except Exception:  # noqa: BLE001 - a failed delivery is logged; the job itself stays as it ended
            log.exception("mcp-bridge: job %s: delivery failed", job.id)
        finally:
            event = self._settled.pop(job.id, None)
            if event is not None:
                event.set()

    def on_done(self, outcome: PromptOutcome) -> None:
        """Completion from ComfyUI (on the loop): finish the job with the files it produced and stop
        watching its events."""
        self.comfy.unwatch(outcome.prompt_id)
        self.registry.on_done(outcome)

    async def follow(
        self,
        job: Job,
        report: ProgressReport | None,
        timeout: float,
        *,
        position_interval: float = POSITION_NOTICE_INTERVAL_S,
    ) -> bool:
        """Wait up to ``timeout`` s for ``job``, reporting progress (0–100) on every change.

        Returns True if the job finished. Progress values strictly increase, as MCP requires. A change
        of queue position alone is reported at most every ``position_interval`` s.
        """
        changed = _Wake()
        steps: deque[tuple[float, str]] = deque(maxlen=STEP_BACKLOG)

        def on_change(_job: Job) -> None:
            # Sampler steps can come faster than the client's stream takes them: keep each one, so
            # the caller sees every step rather than only the latest state when it wakes.
            if report is not None and job.step is not None and job.state is JobState.RUNNING:
                steps.append((round(job.fraction() * 100, 2), job.message()))
            changed.set()

        unsubscribe = job.subscribe(on_change)
        deadline = time.monotonic() + timeout
        progress = _Progress(report, position_interval)
        try:
            while True:
                # Clear before reading the job: a change during the report below (it awaits the
                # client's stream) sets the event again instead of being lost.
                changed.clear()
                while steps:
                    await progress.send_values(*steps.popleft())
                if job.state.finished:
                    return True
                retry_in = await progress.send(job)
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if not await changed.wait(min(left, retry_in)) and time.monotonic() >= deadline:
                    return job.state.finished
        finally:
            unsubscribe()


class _Wake:
    """A flag a waiter sleeps on, resumed in the very next turn of the loop after ``set()`` (an
    ``asyncio.Event`` under ``wait_for`` takes three turns: every event and the job's end wait on them)."""

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[bool] | None = None

    def set(self) -> None:
        self._set = True
        if self._waiter is not None:
            _resolve(self._waiter, True)

    def clear(self) -> None:
        self._set = False

    async def wait(self, timeout: float) -> bool:
        """True once set, False after ``timeout`` seconds."""
        if self._set:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout, _resolve, waiter, False)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class _Progress:
    """What one follower told its caller so far; decides what to send next."""

    def __init__(self, report: ProgressReport | None, position_interval: float) -> None:
        self.report = report
        self.position_interval = position_interval
        self.value = -1.0
        self.message: str | None = None
        self.position: int | None = None
        self.sent_at = -float("inf")

    async def send(self, job: Job) -> float:
        """Report ``job`` if it changed; return how long a held-back position change may wait."""
        if self.report is None:
            return float("inf")
        value = round(job.fraction() * 100, 2)
        message = job.message()
        if value <= self.value and message == self.message:
            return float("inf")
        if self._only_position_moved(job, value):
            wait = self.sent_at + self.position_interval - time.monotonic()
            if wait > 0:
                return wait  # coalesced: the latest position goes out when the interval is over
        await self.send_values(value, message)
        self.position = job.queue_position
        return float("inf")

    async def send_values(self, value: float, message: str) -> None:
        """Report one state unless it is what was sent last; values strictly increase."""
        if self.report is None or (value <= self.value and message == self.message):
            return
        value = max(value, round(self.value + 0.01, 2))
        if value <= 100:
            await self.report(value, 100.0, message)
        self.value, self.message = value, message
        self.sent_at = time.monotonic()

    def _only_position_moved(self, job: Job, value: float) -> bool:
        return (
            job.state is JobState.QUEUED
            and self.message is not None
            and self.position is not None
            and job.queue_position is not None
            and value <= self.value
        )
