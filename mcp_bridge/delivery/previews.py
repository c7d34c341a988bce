"""Each output file of a result checked, measured and previewed — started as soon as it exists.

ComfyUI reports an output node's files in its ``executed`` event, before the rest of the prompt (and
the history entry) is done; :class:`EarlyPreviews` starts preparing them then, in a worker thread,
so the result only awaits work already under way. An early preparation that fails, was dropped, or
was never started is simply done again when the result is made.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from ..comfyui.artifacts import MIME_BY_EXTENSION, Artifact, ArtifactInfo
from ..comfyui.backend import ComfyBackend
from ..engine.jobs import Job, JobRegistry, JobState
from ..media import artifacts
from . import tensor_previews
from .paths import PathPolicy, PathRejected

log = logging.getLogger("comfyui_mcp_bridge")

PREVIEW_SIDE = 512  # longest side of a result's previews
# Jobs whose early previews are kept until their result is made (one runs at a time in ComfyUI; the
# others are results nobody asked for yet): the oldest beyond this are dropped.
KEEP_JOBS = 32
MADE_WAIT_S = 30.0  # an in-prompt preview still encoding when its file is prepared


def locate(path: Path, output_dir: str) -> Path:
    """``path`` (where ComfyUI wrote an artifact) checked to lie inside its output folder, links
    resolved: a node reporting ``../`` names cannot make a result read other files (``PathRejected``)."""
    policy = PathPolicy([output_dir], suffixes=MIME_BY_EXTENSION)
    return policy.resolve_input(str(path), output_dir)


@dataclass(frozen=True)
class Prepared:
    """What a result says of one file."""

    info: ArtifactInfo | None  # None: the file is gone or outside the output folder
    preview: artifacts.Preview | None


def prepare(
    path: Path,
    output_dir: str,
    artifact: Artifact,
    preview_side: int,
    made: Future[artifacts.Preview] | None = None,
) -> Prepared:
    """Check the file, measure it, make its preview — or take the one ``made`` from the image tensor
    inside the prompt (:mod:`.tensor_previews`) — (blocking: run it in a worker thread)."""
    try:
        path = locate(path, output_dir)
        info = artifacts.describe(artifact, path)
    except (PathRejected, OSError) as exc:
        log.warning("mcp-bridge: output %s cannot be read: %s", artifact.relative_path, exc)
        return Prepared(None, None)
    if made is not None:
        try:
            return Prepared(info, made.result(timeout=MADE_WAIT_S))
        except Exception:  # noqa: BLE001 - the file is there: decode it instead
            log.info("mcp-bridge: no in-prompt preview of %s; decoding the file", artifact.relative_path)
    return Prepared(info, artifacts.preview(artifact, path, max_side=preview_side))


class EarlyPreviews:
    """Preparations started at each output node's ``executed`` event, per job, until its result takes
    them. Bounded: a job's own output files, for at most :data:`KEEP_JOBS` jobs; a job that ends
    without success drops (cancels) its own. Lives on the event loop."""

    def __init__(self, comfy: ComfyBackend, keep_jobs: int = KEEP_JOBS) -> None:
        self.comfy = comfy
        self.keep_jobs = keep_jobs
        self._jobs: OrderedDict[str, dict[Artifact, asyncio.Future[Prepared]]] = OrderedDict()

    def attach(self, registry: JobRegistry) -> EarlyPreviews:
        """Follow ``registry``'s jobs: start on their outputs, drop what failed jobs started."""
        registry.observe_outputs(self.start)
        registry.observe(self._changed)
        return self

    def start(self, job: Job, found: tuple[Artifact, ...]) -> None:
        """Start preparing the output files an ``executed`` event of ``job`` named."""
        if job.state.finished:
            return
        loop = asyncio.get_running_loop()
        started = self._jobs.pop(job.id, {})
        self._jobs[job.id] = started  # the newest last
        out = self.comfy.output_directory()
        made = _made_previews(job, found)
        for artifact in found:
            if artifact.folder_type != "output" or artifact in started:
                continue  # temp previews are no results
            path = self.comfy.file_path(artifact)
            work = functools.partial(prepare, path, out, artifact, PREVIEW_SIDE, made.get(artifact))
            future = loop.run_in_executor(None, work)
            future.add_done_callback(_quiet)
            started[artifact] = future
        while len(self._jobs) > self.keep_jobs:
            self._cancel(self._jobs.popitem(last=False)[1])

    def take(self, job_id: str) -> dict[Artifact, asyncio.Future[Prepared]]:
        """The preparations started for a job (handed over once: a later result prepares afresh)."""
        return self._jobs.pop(job_id, {})

    def drop(self, job_id: str) -> None:
        """Cancel and forget a job's preparations."""
        self._cancel(self._jobs.pop(job_id, {}))

    def __len__(self) -> int:
        return len(self._jobs)

    def _changed(self, job: Job) -> None:
        if job.state.finished and job.state is not JobState.SUCCEEDED and job.id in self._jobs:
            self.drop(job.id)

    @staticmethod
    def _cancel(futures: dict[Artifact, asyncio.Future[Prepared]]) -> None:
        for future in futures.values():
            future.cancel()


def _made_previews(job: Job, found: tuple[Artifact, ...]) -> dict[Artifact, Future[artifacts.Preview]]:
    """The in-prompt previews of ``found``'s still images, by their node's key and batch order."""
    made: dict[Artifact, Future[artifacts.Preview]] = {}
    for node_id in dict.fromkeys(a.node_id for a in found if a.kind == "image"):
        files = [a for a in found if a.node_id == node_id and a.kind == "image"]
        for prompt_id in job.prompt_ids:
            futures = tensor_previews.STORE.take(f"{prompt_id}/{node_id}")
            if futures is not None:
                if len(futures) == len(files):  # else a mismatch: decode the files
                    made.update(zip(files, futures, strict=True))
                break
    return made


def _quiet(future: asyncio.Future[Prepared]) -> None:
    # Taken or not, a failed preparation is retried by the result: read its error so none is logged
    # as never retrieved.
    if not future.cancelled():
        future.exception()


async def prepared(
    comfy: ComfyBackend,
    found: list[Artifact],
    preview_side: int,
    early: dict[Artifact, asyncio.Future[Prepared]],
) -> list[Prepared]:
    """Each artifact prepared: by its early preparation where one ran (at the same preview size),
    otherwise now, in worker threads."""
    out = comfy.output_directory()

    async def one(artifact: Artifact) -> Prepared:
        future = early.get(artifact) if preview_side == PREVIEW_SIDE else None
        if future is not None and not future.cancelled():
            try:
                return await future
            except Exception:  # noqa: BLE001 - the early try failed: prepare it the usual way
                log.info("mcp-bridge: early preview of %s failed; retrying", artifact.relative_path)
        return await asyncio.to_thread(prepare, comfy.file_path(artifact), out, artifact, preview_side)

    return list(await asyncio.gather(*(one(artifact) for artifact in found)))
