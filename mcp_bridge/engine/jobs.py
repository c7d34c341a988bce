"""Jobs: what a tool call started (one or more ComfyUI prompts), fed by ComfyUI's events, awaitable.

A job id is the caller's handle (:mod:`.ids`: it names this instance); the prompts it queued have
ids of their own, so the engine never takes one for the other.

Plain Python: the adapter hands events in (on the event loop); tools await jobs and listen to their
progress; the status panel observes every change. Finished jobs are kept for a bounded count and time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..comfyui.artifacts import Artifact
from ..comfyui.backend import PromptEvent, PromptOutcome

log = logging.getLogger("comfyui_mcp_bridge")


class JobState(str, Enum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


Listener = Callable[["Job"], None]
OutputListener = Callable[["Job", tuple[Artifact, ...]], None]


@dataclass
class Job:
    """The bridge's view of one tool call's work: its prompts on ComfyUI's queue, run in order."""

    id: str
    tool: str
    node_types: dict[str, str]  # of the prompt running now (the job's prompts share one workflow)
    prompt_ids: list[str] = field(default_factory=list)
    prompts_done: int = 0
    summary: str = ""
    state: JobState = JobState.QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    queue_position: int | None = None  # 1 = next to run
    node: str | None = None
    step: int | None = None
    steps: int | None = None
    nodes_done: set[str] = field(default_factory=set)
    artifacts: list[Artifact] = field(default_factory=list)  # what the job produced, in node order
    error: dict[str, Any] | None = None
    cancel_requested: bool = False
    on_queue: bool = False  # its prompt reached ComfyUI's queue
    owner: str | None = None  # the MCP session that submitted it (None: a stateless call, or the panel)
    meta: dict[str, Any] = field(default_factory=dict)
    delivery: Any = None  # what the job-end step did (files written for output_path, a write error)
    _done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _listeners: list[Listener] = field(default_factory=list, repr=False)

    @property
    def outputs(self) -> list[dict[str, str]]:
        """The ``{filename, subfolder, type}`` records of the job's artifacts (the panel shows them)."""
        return [artifact.record() for artifact in self.artifacts]

    @property
    def node_type(self) -> str | None:
        return self.node_types.get(self.node or "")

    def fraction(self) -> float:
        """Share of the work done (0..1): prompts done, and the current prompt's nodes (with the
        current node's sampler steps)."""
        total = max(len(self.node_types), 1)
        done: float = len(self.nodes_done)
        if self.node and self.node not in self.nodes_done and self.step is not None and self.steps:
            done += min(self.step / self.steps, 1.0)
        prompts = max(len(self.prompt_ids), 1)
        current = min(done / total, 1.0)
        return 1.0 if self.state.finished else min((self.prompts_done + current) / prompts, 1.0)

    @property
    def open_prompts(self) -> list[str]:
        """Prompt ids not finished yet, in run order."""
        return self.prompt_ids[self.prompts_done :]

    def message(self) -> str:
        """A short sentence for people: what the job is doing right now."""
        if self.state is JobState.QUEUED:
            if self.queue_position:
                return f"queued: position {self.queue_position} in ComfyUI's queue"
            return "queued"
        if self.state is JobState.RUNNING:
            what = self.node_type or "starting"
            if self.node_type and self.step is not None and self.steps:
                return f"running {what}: step {self.step}/{self.steps}"
            return f"running {what}"
        if self.error:
            return f"{self.state.value}: {self.error.get('message', '')!s}".rstrip(": ")
        return str(self.state.value)

    def elapsed(self) -> float:
        """Seconds since the job was queued (until it finished)."""
        return (self.finished or time.time()) - self.created

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe snapshot."""
        return {
            "job_id": self.id,
            "prompt_ids": list(self.prompt_ids),  # ComfyUI's ids of its prompts (its queue, history)
            "tool": self.tool,
            "summary": self.summary,
            "state": self.state.value,
            "message": self.message(),
            "progress": round(self.fraction(), 4),
            "queue_position": self.queue_position,
            "node": self.node,
            "node_type": self.node_type,
            "step": self.step,
            "steps": self.steps,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "elapsed_s": round(self.elapsed(), 3),
            "outputs": list(self.outputs),
            "error": self.error,
        }

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(job)`` after every change; return a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def wait(self, timeout: float | None) -> bool:
        """Wait until the job finished or ``timeout`` seconds passed; True if it finished."""
        if self.state.finished:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._done.wait()), timeout)
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            return False
        return True


REMOVED_ERROR = {
    "type": "removed",
    "message": "its prompt was removed from ComfyUI's queue outside this MCP server (for example in "
    "ComfyUI's queue panel or with POST /queue) before it ran",
}


class JobRegistry:
    """All jobs of this process, keyed by job id; ComfyUI's events find theirs by prompt id."""

    def __init__(
        self,
        queue_view: Callable[[], tuple[list[str], list[str]]] | None = None,
        keep_finished: int = 200,
        keep_seconds: float = 3600.0,
    ) -> None:
        # Jobs still queued or running, and finished ones in the order they finished (oldest first):
        # every hot path touches only the first, pruning only the front of the second.
        self._active: dict[str, Job] = {}
        self._finished: OrderedDict[str, Job] = OrderedDict()
        self._by_prompt: dict[str, str] = {}  # prompt id -> job id, for every retained job
        self._queue_view = queue_view
        self._keep_finished = keep_finished
        self._keep_seconds = keep_seconds
        self._observers: list[Listener] = []
        self._output_observers: list[OutputListener] = []
        self._finished_in_comfy: Callable[[str], bool] | None = None
        self._refresh_scheduled = False

    # -- lookup --

    def get(self, job_id: str) -> Job | None:
        return self._active.get(job_id) or self._finished.get(job_id)

    def of_prompt(self, prompt_id: str) -> Job | None:
        """The job that queued ``prompt_id`` (None for prompts queued by anyone else)."""
        job_id = self._by_prompt.get(prompt_id)
        return self.get(job_id) if job_id is not None else None

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._active or job_id in self._finished

    def all(self) -> list[Job]:
        """Every retained job, oldest first."""
        return sorted((*self._active.values(), *self._finished.values()), key=lambda job: job.created)

    def active(self) -> list[Job]:
        """Jobs still queued or running, oldest first."""
        return list(self._active.values())

    def observe(self, observer: Listener) -> Callable[[], None]:
        """Call ``observer(job)`` after any job changes (the status panel)."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def observe_outputs(self, observer: OutputListener) -> None:
        """Call ``observer(job, artifacts)`` when an output node of a job's prompt reports the files it
        wrote (its ``executed`` event, before the prompt ends)."""
        self._output_observers.append(observer)

    def detect_removals(self, finished_in_comfy: Callable[[str], bool]) -> None:
        """Cancel a queued job whose prompt left ComfyUI's queue without running (someone removed it).

        ``finished_in_comfy(prompt_id)`` tells a prompt that ran (its history exists) from a removed one.
        """
        self._finished_in_comfy = finished_in_comfy

    # -- life --

    def create(
        self,
        job_id: str,
        tool: str,
        prompt: dict[str, Any],
        summary: str = "",
        prompt_ids: list[str] | None = None,
    ) -> Job:
        """Register a job before its prompts go on the queue (a tiny prompt finishes in ~1 ms).

        ``prompt_ids``: the ids its prompts will have, in run order (default: one, the job id).
        """
        prompt_ids = list(prompt_ids or [job_id])
        job = Job(
            id=job_id, tool=tool, node_types=_node_types(prompt), summary=summary, prompt_ids=prompt_ids
        )
        self._active[job_id] = job
        self._by_prompt.update(dict.fromkeys(prompt_ids, job_id))
        self._changed(job)
        return job

    def discard(self, job_id: str) -> None:
        """Forget a job that never reached the queue (ComfyUI refused its prompt); observers see it go."""
        job = self._active.pop(job_id, None)
        if job is not None:
            self._forget_prompts(job)
            self._changed(job)

    def _forget_prompts(self, job: Job) -> None:
        for prompt_id in job.prompt_ids:
            self._by_prompt.pop(prompt_id, None)

    def on_event(self, event: PromptEvent) -> None:
        """Apply one event from ComfyUI (called on the event loop)."""
        if event.kind == "queue_changed":
            self.queue_changed()
            return
        job = self._active.get(self._by_prompt.get(str(event.prompt_id), ""))
        if job is None or job.state.finished or str(event.prompt_id) not in job.open_prompts:
            return
        if event.kind == "started":
            self._start(job)
        elif event.kind == "cached":
            job.nodes_done.update(event.nodes)
        elif event.kind == "executing":
            self._start(job)
            if job.node and job.node != event.node:
                job.nodes_done.add(job.node)
            job.node = event.node
            job.step = job.steps = None
        elif event.kind == "progress":
            self._start(job)
            if event.node is not None:
                job.node = event.node
            job.step, job.steps = event.step, event.steps
        elif event.kind == "executed":
            if event.node is not None:
                job.nodes_done.add(event.node)
            if event.artifacts:
                self._outputs_seen(job, event.artifacts)
        elif event.kind in ("failed", "interrupted"):
            job.error = event.error
        else:
            return
        self._changed(job)

    def on_done(self, outcome: PromptOutcome) -> None:
        """ComfyUI finished the prompt and wrote its history entry (called on the event loop)."""
        job = self._active.get(self._by_prompt.get(outcome.prompt_id, ""))
        if job is None or job.state.finished or outcome.prompt_id not in job.open_prompts:
            return
        job.artifacts.extend(outcome.artifacts)
        if job.error is None:
            job.error = outcome.error
        if outcome.succeeded and job.error is None and outcome.prompt_id != job.prompt_ids[-1]:
            self._next_prompt(job, outcome.prompt_id)
            return
        if outcome.succeeded and job.error is None:
            state = JobState.SUCCEEDED
        elif job.error and job.error.get("type") == "interrupted":
            state = JobState.CANCELLED if job.cancel_requested else JobState.INTERRUPTED
        else:
            state = JobState.FAILED
            job.error = job.error or {"type": "error", "message": "ComfyUI reported a failure"}
        self._finish(job, state)

    def _next_prompt(self, job: Job, prompt_id: str) -> None:
        # One of several prompts is done: the job goes on with the next one (its own nodes).
        job.prompts_done = job.prompt_ids.index(prompt_id) + 1
        job.nodes_done.clear()
        job.node = None
        job.step = job.steps = None
        self._changed(job)

    def mark_cancelled(self, job_id: str) -> None:
        """The job was taken off the queue before it ran."""
        job = self._active.get(job_id)
        if job is not None and not job.state.finished:
            job.cancel_requested = True
            self._finish(job, JobState.CANCELLED)

    def mark_on_queue(self, job_id: str) -> None:
        """The job's prompt is on ComfyUI's queue now (from here on, leaving it unrun means removed)."""
        job = self._active.get(job_id)
        if job is not None:
            job.on_queue = True

    def queue_changed(self) -> None:
        """ComfyUI's queue changed: refresh positions once per turn of the event loop, however many
        changes arrived in it (immediately when no loop runs)."""
        if self._refresh_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.refresh_positions()
            return
        self._refresh_scheduled = True
        loop.call_soon(self._scheduled_refresh)

    def _scheduled_refresh(self) -> None:
        self._refresh_scheduled = False
        try:
            self.refresh_positions()
        except Exception:  # noqa: BLE001 - a queue read must never break the loop's callbacks
            log.exception("mcp-bridge: refreshing queue positions failed")

    def refresh_positions(self) -> None:
        """Recompute queue positions of waiting jobs from ComfyUI's queue; a job is told only when its
        own position changed. A waiting job whose prompt is gone without having run is cancelled."""
        waiting = [job for job in self._active.values() if job.state is JobState.QUEUED]
        if not waiting or self._queue_view is None:
            return
        running, pending = self._queue_view()
        order = {pid: i + 1 for i, pid in enumerate(pending)}
        running_ids = set(running)
        for job in waiting:
            first = job.open_prompts[0] if job.open_prompts else job.id
            position = order.get(first)
            if first in running_ids:
                self._start(job)
            elif position is None and self._removed(job):
                job.error = dict(REMOVED_ERROR)
                self._finish(job, JobState.CANCELLED)
                continue
            elif position != job.queue_position:
                job.queue_position = position
            else:
                continue
            self._changed(job)

    def _removed(self, job: Job) -> bool:
        # Neither pending nor running: removed, unless it already ran (its history exists; our
        # completion hook hands it over a moment later).
        if not job.on_queue or self._finished_in_comfy is None or not job.open_prompts:
            return False
        return not self._finished_in_comfy(job.open_prompts[0])

    # -- internals --

    def _start(self, job: Job) -> None:
        if job.state is JobState.QUEUED:
            job.state = JobState.RUNNING
            job.started = time.time()
            job.queue_position = None

    def _finish(self, job: Job, state: JobState) -> None:
        job.state = state
        job.finished = time.time()
        job.node = None
        job.step = job.steps = None
        job.queue_position = None
        job._done.set()
        self._active.pop(job.id, None)
        self._finished[job.id] = job
        self._prune()
        self._changed(job)

    def _outputs_seen(self, job: Job, artifacts: tuple[Artifact, ...]) -> None:
        for observer in self._output_observers:
            try:
                observer(job, artifacts)
            except Exception:  # noqa: BLE001 - an early preview is an optimisation, never an error
                log.exception("mcp-bridge: output observer failed")

    def _changed(self, job: Job) -> None:
        for listener in (*job._listeners, *self._observers):
            try:
                listener(job)
            except Exception:  # noqa: BLE001 - one bad listener must not stop the others
                log.exception("mcp-bridge: job listener failed")

    def _prune(self) -> None:
        cutoff = time.time() - self._keep_seconds
        while self._finished:
            oldest = next(iter(self._finished.values()))
            if len(self._finished) <= self._keep_finished and (oldest.finished or 0) >= cutoff:
                break
            _, gone = self._finished.popitem(last=False)
            self._forget_prompts(gone)


def _node_types(prompt: dict[str, Any]) -> dict[str, str]:
    return {
        str(node_id): str(node.get("class_type", "?"))
        for node_id, node in prompt.items()
        if isinstance(node, dict)
    }


def summarize(values: Iterable[tuple[str, Any]], limit: int = 120) -> str:
    """``key=value`` pairs shortened for one line (the panel shows this)."""
    text = ", ".join(f"{k}={v!r}" for k, v in values if v not in (None, "", [], {}))
    return text if len(text) <= limit else text[: limit - 1] + "…"
