"""Turn a finished job into an MCP tool result: a summary, small previews, links, structured data.

Full-size files never travel inline (clients cap messages near 1 MiB): each artifact comes back as a
preview (longest side <= 512 px, WebP: the image itself, or the first frame of an animation or
video) plus a resource link typed with the file's real MIME type (``comfy://output/...``, readable
with ``resources/read`` up to ``max_resource_read_bytes``) and ComfyUI's own ``/view`` URL. An
artifact without a preview still has its link. File reads and decoding run off the event loop.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import urlencode

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent

from ..comfyui.artifacts import Artifact, ArtifactInfo
from ..engine.ids import output_link
from ..engine.jobs import Job, JobState
from ..media.contact_sheet import fit_budget
from .host import DeliveryHost
from .previews import PREVIEW_SIDE, prepared

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


async def present_job(services: DeliveryHost, job: Job, preview_side: int = PREVIEW_SIDE) -> CallToolResult:
    """The tool result of a finished job (raises ``ToolError`` for failed/cancelled jobs)."""
    if not job.state.finished:
        raise RuntimeError("present_job needs a finished job")
    if job.state is not JobState.SUCCEEDED:
        raise ToolError(failure_message(job))
    found = [a for a in job.artifacts if a.folder_type == "output"]  # temp previews are not results
    early = services.previews.take(job.id) if services.previews is not None else {}
    ready_files = await prepared(services.comfy, found, preview_side, early)
    delivery = job.delivery
    written: list[str] = list(getattr(delivery, "written", None) or [])
    saved: list[str | None] = [*written, *([None] * (len(found) - len(written)))][: len(found)]
    save_error: str | None = getattr(delivery, "error", None)

    content: list[Any] = []
    files: list[dict[str, Any]] = []
    for artifact, ready, saved_path in zip(found, ready_files, saved, strict=True):
        entry = _file_entry(artifact, ready.info, saved_path, services.runner.instance_id)
        files.append(entry)
        if ready.preview is not None:
            data = base64.b64encode(ready.preview.data).decode()
            content.append(ImageContent(type="image", data=data, mime_type=ready.preview.mime_type))
        content.append(
            ResourceLink(
                type="resource_link",
                uri=entry["uri"],
                name=artifact.filename,
                mime_type=artifact.mime_type,
                description=_describe(entry),
                size=entry["bytes"],
            )
        )
    timings = {
        "queued_s": round((job.started or job.finished or job.created) - job.created, 3),
        "run_s": round((job.finished or 0) - (job.started or job.finished or 0), 3),
        "total_s": round(job.elapsed(), 3),
    }
    public_meta = dict(job.meta)
    structured = {
        "job_id": job.id,
        "prompt_ids": list(job.prompt_ids),  # ComfyUI's ids of the job's prompts (its queue and history)
        "state": job.state.value,
        "images": files,
        "timings": timings,
        **public_meta,
    }
    size = "no image" if not files else "size unknown"
    if files and files[0]["width"]:
        size = f"{files[0]['width']}x{files[0]['height']}"
    where = "; ".join(f.get("saved_path") or f["uri"] for f in files)
    summary = f"{job.tool}: {_counted(files)}, {size}, in {timings['total_s']:.1f} s"
    if "seed" in public_meta:
        summary += f", seed {public_meta['seed']}"
    summary += f". Files: {where}" if where else "."
    if save_error:
        structured["save_error"] = save_error
        summary = f"{job.tool} made {_counted(files)} but {save_error}. ComfyUI saved them as: " + "; ".join(
            f["uri"] for f in files
        )
    content, sheet = await fit_budget(content, services.settings.result_inline_bytes)
    if sheet:
        structured["contact_sheet"] = True
        summary += " (previews over the result budget: one contact sheet, numbered in file order)"
    return CallToolResult(
        content=[TextContent(type="text", text=summary), *content],
        structured_content=structured,
        is_error=bool(save_error),
    )
