"""The one presenter of a job: still going (its state, what to call next), done (a summary, small
previews, links, structured data) or failed (:class:`~.result.JobFailed` with the reason). Free of MCP
SDK types: the tool layer turns a :class:`~.result.Presented` into the SDK's result.

Full-size files never travel inline (clients cap messages near 1 MiB): each artifact comes back as a
preview (longest side <= 512 px, WebP: the image itself, or the first frame of an animation or
video) plus a resource link typed with the file's real MIME type (``comfy://output/...``, readable
with ``resources/read`` up to ``max_resource_read_bytes``) and ComfyUI's own ``/view`` URL. An
artifact without a preview still has its link. File reads and decoding run off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from ..comfyui.artifacts import Artifact, ArtifactInfo
from ..engine.ids import output_link
from ..engine.jobs import Job, JobState
from ..media.contact_sheet import fit_budget, within_budget
from .host import DeliveryHost
from .previews import PREVIEW_SIDE, prepared
from .result import RESULT_MAX_BYTES, FileLink, JobFailed, JobResult, Presented, Preview, Timings

log = logging.getLogger("comfyui_mcp_bridge")


def output_uri(artifact: Artifact, instance: str) -> str:
    """The MCP resource URI of an artifact in ``instance``'s output folder."""
    return output_link(instance, artifact.relative_path)


def view_path(artifact: Artifact) -> str:
    """ComfyUI's own ``/view`` path (and query) for an artifact."""
    return _view(artifact.filename, artifact.subfolder, artifact.folder_type)


def view_url_of(relative: str) -> str:
    """ComfyUI's ``/view`` path of ``subfolder/filename`` in its output folder."""
    subfolder, _, filename = relative.rpartition("/")
    return _view(filename, subfolder, "output")


def _view(filename: str, subfolder: str, folder_type: str) -> str:
    return "/view?" + urlencode({"filename": filename, "subfolder": subfolder, "type": folder_type})


def _file_entry(
    artifact: Artifact, info: ArtifactInfo | None, saved_path: str | None, instance: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": artifact.filename,
        "subfolder": artifact.subfolder,
        "uri": output_uri(artifact, instance),
        "view_url": view_path(artifact),
        "kind": artifact.kind,
        "mime_type": artifact.mime_type,
        "width": info.width if info else None,
        "height": info.height if info else None,
        "bytes": info.size_bytes if info else None,
        "saved_path": saved_path,
    }
    if artifact.kind != "image":
        entry.update(
            frames=info.frames if info else None,
            fps=info.fps if info else None,
            duration_s=info.duration_s if info else None,
        )
    return entry


def _describe(entry: dict[str, Any]) -> str:
    # One line for the resource link: what the file is and how big.
    what = {"image": "full image", "animation": "animation", "video": "video"}[entry["kind"]]
    if entry["width"] and entry["height"]:
        what += f" {entry['width']}x{entry['height']}"
    if entry.get("frames"):
        what += f", {entry['frames']} frames"
        if entry.get("fps"):
            what += f" at {entry['fps']:g} fps"
        if entry.get("duration_s"):
            what += f" ({entry['duration_s']:g} s)"
    return what


def _counted(files: list[dict[str, Any]]) -> str:
    # "2 image(s)" as before when every file is a still; else per kind, e.g. "1 animation, 1 video".
    kinds = [f["kind"] for f in files]
    if all(kind == "image" for kind in kinds):
        return f"{len(files)} image(s)"
    return ", ".join(
        f"{kinds.count(kind)} {kind if kinds.count(kind) == 1 else kind + 's'}"
        for kind in ("image", "animation", "video")
        if kind in kinds
    )


def failure_message(job: Job) -> str:
    """Why a job did not succeed, in words the caller can act on."""
    err = job.error or {}
    if job.state is JobState.CANCELLED:
        why = f": {err['message']}" if err.get("type") == "removed" else ""
        return f"Job {job.id} was cancelled{why}."
    if job.state is JobState.INTERRUPTED:
        return (
            f"Job {job.id} was interrupted in ComfyUI (someone pressed cancel or called /interrupt). "
            "Run the call again to retry."
        )
    where = ""
    if err.get("node_type"):
        where = f" in node {err.get('node_id')} ({err['node_type']})"
    return f"ComfyUI failed{where}: {err.get('type', 'error')}: {err.get('message', 'unknown error')}"


async def present(services: DeliveryHost, job: Job) -> Presented:
    """Any job as the answer of a tool: still going, or its result (raises :class:`JobFailed`)."""
    if not job.state.finished:
        return pending(job)
    await services.runner.settled(job)
    return await present_job(services, job)


def pending(job: Job) -> Presented:
    """The answer when a job is still going: its id and state, and what to call next."""
    text = (
        f"Job {job.id} is {job.message()} after {job.elapsed():.0f} s. "
        f"Call wait_job with job_id='{job.id}' to wait for the result, or cancel_job to stop it."
    )
    return Presented(text, structured=job.to_dict())


async def present_job(services: DeliveryHost, job: Job, preview_side: int = PREVIEW_SIDE) -> Presented:
    """The result of a finished job (raises :class:`JobFailed` for failed/cancelled jobs), within
    :data:`~.result.RESULT_MAX_BYTES`: over it, the previews become one contact sheet, then files are
    left out of the listing (counted in ``files_omitted``; they stay in ComfyUI's output folder)."""
    if not job.state.finished:
        raise RuntimeError("present_job needs a finished job")
    if job.state is not JobState.SUCCEEDED:
        raise JobFailed(failure_message(job))
    found = [a for a in job.artifacts if a.folder_type == "output"]  # temp previews are not results
    early = services.previews.take(job.id) if services.previews is not None else {}
    ready_files = await prepared(services.comfy, found, preview_side, early)
    delivery = job.delivery
    written: list[str] = list(getattr(delivery, "written", None) or [])
    saved: list[str | None] = [*written, *([None] * (len(found) - len(written)))][: len(found)]

    blocks: list[Any] = []
    files: list[dict[str, Any]] = []
    for artifact, ready, saved_path in zip(found, ready_files, saved, strict=True):
        entry = _file_entry(artifact, ready.info, saved_path, services.runner.instance_id)
        files.append(entry)
        if ready.preview is not None:
            data = base64.b64encode(ready.preview.data).decode()
            blocks.append(Preview("image", data, ready.preview.mime_type))
        link = FileLink(entry["uri"], artifact.filename, artifact.mime_type, _describe(entry), entry["bytes"])
        blocks.append(link)
    result = JobResult(
        job.id,
        list(job.prompt_ids),
        job.state.value,
        files,
        _timings(job),
        arguments=dict(job.meta),
        save_error=getattr(delivery, "error", None),
    )
    blocks, result.contact_sheet = await fit_budget(blocks, services.settings.result_inline_bytes)
    return await _within_message(job, result, blocks)


def _timings(job: Job) -> Timings:
    return Timings(
        queued_s=round((job.started or job.finished or job.created) - job.created, 3),
        run_s=round((job.finished or 0) - (job.started or job.finished or 0), 3),
        total_s=round(job.elapsed(), 3),
    )


async def _within_message(job: Job, result: JobResult, blocks: list[Any]) -> Presented:
    # The whole serialized result (text, links, structured entries, previews) within RESULT_MAX_BYTES.
    answer = _answer(job, result, blocks)
    if answer.size() <= RESULT_MAX_BYTES:
        return answer
    if not result.contact_sheet and any(isinstance(b, Preview) for b in blocks):
        blocks, result.contact_sheet = await asyncio.to_thread(within_budget, blocks, 0)
        answer = _answer(job, result, blocks)
        if answer.size() <= RESULT_MAX_BYTES:
            return answer
    return await asyncio.to_thread(_listing_fewer, job, result, blocks)


def _listing_fewer(job: Job, result: JobResult, blocks: list[Any]) -> Presented:
    """``result`` listing as many of its first files as fit (at least none): each file costs its entry,
    its link and its place in the summary. Blocking (serializing): run off the loop."""
    links = [b for b in blocks if isinstance(b, FileLink)]
    costs = [
        len(json.dumps(entry))
        + len(json.dumps(link.wire()))
        + len(entry.get("saved_path") or entry["uri"])
        + 8
        for entry, link in zip(result.files, links, strict=False)
    ]
    room = RESULT_MAX_BYTES - _answer(job, result, blocks, 0).size()
    listed = 0
    while listed < len(costs) and costs[listed] <= room:
        room -= costs[listed]
        listed += 1
    answer = _answer(job, result, blocks, listed)
    while listed and answer.size() > RESULT_MAX_BYTES:  # the estimate was short: drop a few more
        listed = max(0, listed - max(1, listed // 50))
        answer = _answer(job, result, blocks, listed)
    return answer


def _answer(job: Job, result: JobResult, blocks: list[Any], listed: int | None = None) -> Presented:
    """``result`` as a tool's answer listing its first ``listed`` files (all when None)."""
    text = _summary(job, result, listed)
    if listed is not None:
        dropped = [b for b in blocks if isinstance(b, FileLink)][listed:]
        blocks = [b for b in blocks if not any(b is link for link in dropped)]
        result = replace(result, files=result.files[:listed], files_omitted=len(result.files) - listed)
    return Presented(text, blocks, result.structured(), is_error=bool(result.save_error))


def _summary(job: Job, result: JobResult, listed: int | None) -> str:
    files = result.files
    shown = files[:listed] if listed is not None else files
    more = f" and {len(files) - len(shown)} more (see files_omitted)" if len(shown) < len(files) else ""
    if result.save_error:
        uris = "; ".join(f["uri"] for f in shown)
        text = (
            f"{job.tool} made {_counted(files)} but {result.save_error}. ComfyUI saved them as: {uris}{more}"
        )
    else:
        size = "no image" if not files else "size unknown"
        if files and files[0]["width"]:
            size = f"{files[0]['width']}x{files[0]['height']}"
        text = f"{job.tool}: {_counted(files)}, {size}, in {result.timings.total_s:.1f} s"
        if "seed" in result.arguments:
            text += f", seed {result.arguments['seed']}"
        where = "; ".join(f.get("saved_path") or f["uri"] for f in shown)
        text += f". Files: {where}{more}" if where or more else "."
    if result.contact_sheet:
        text += " (previews over the result budget: one contact sheet, numbered in file order)"
    return text
