"""Turn a finished job into an MCP tool result: a summary, small previews, links, structured data.

Full-size images never travel inline (clients cap messages near 1 MiB): each image comes back as a
preview (longest side <= 512 px, WebP) plus a resource link (``comfy://output/...``, readable with
``resources/read``) and ComfyUI's own ``/view`` URL. File reads and encoding run off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent

from ..engine.jobs import Job, JobState
from ..services import Services
from . import images
from .inputs import RESOURCE_PREFIX


def output_uri(record: dict[str, str]) -> str:
    """The MCP resource URI of one output image record."""
    sub = record.get("subfolder", "").strip("/")
    return RESOURCE_PREFIX + (f"{sub}/" if sub else "") + record["filename"]


def view_path(record: dict[str, str]) -> str:
    """ComfyUI's own ``/view`` path for an output image record."""
    query = {"filename": record["filename"], "subfolder": record.get("subfolder", ""), "type": "output"}
    return "/view?" + urlencode(query)


def _prepare(path: Path, preview_side: int) -> dict[str, Any]:
    # Runs in a worker thread: read the file, measure it, make the preview.
    data = path.read_bytes()
    width, height, fmt = images.image_info(io.BytesIO(data))  # measured from the bytes already read
    preview, mime = images.make_preview(data, max_side=preview_side)
    return {
        "width": width,
        "height": height,
        "format": fmt,
        "bytes": len(data),
        "preview": preview,
        "mime": mime,
    }


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


async def present_job(services: Services, job: Job, preview_side: int = 512) -> CallToolResult:
    """The tool result of a finished job (raises ``ToolError`` for failed/cancelled jobs)."""
    if not job.state.finished:
        raise RuntimeError("present_job needs a finished job")
    if job.state is not JobState.SUCCEEDED:
        raise ToolError(failure_message(job))
    saved_files = [a for a in job.artifacts if a.folder_type == "output"]
    records = [a.record() for a in saved_files]
    prepared = await asyncio.gather(
        *(asyncio.to_thread(_prepare, services.comfy.file_path(a), preview_side) for a in saved_files)
    )
    delivery = job.delivery
    written: list[str] = list(getattr(delivery, "written", None) or [])
    saved: list[str | None] = [*written, *([None] * (len(records) - len(written)))][: len(records)]
    save_error: str | None = getattr(delivery, "error", None)

    content: list[Any] = []
    files: list[dict[str, Any]] = []
    for record, info, saved_path in zip(records, prepared, saved, strict=True):
        uri = output_uri(record)
        files.append(
            {
                "filename": record["filename"],
                "subfolder": record.get("subfolder", ""),
                "uri": uri,
                "view_url": view_path(record),
                "width": info["width"],
                "height": info["height"],
                "bytes": info["bytes"],
                "saved_path": saved_path,
            }
        )
        content.append(
            ImageContent(
                type="image", data=base64.b64encode(info["preview"]).decode(), mime_type=info["mime"]
            )
        )
        content.append(
            ResourceLink(
                type="resource_link",
                uri=uri,
                name=record["filename"],
                mime_type="image/png",
                description=f"full image {info['width']}x{info['height']}",
                size=info["bytes"],
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
        "state": job.state.value,
        "images": files,
        "timings": timings,
        **public_meta,
    }
    size = f"{files[0]['width']}x{files[0]['height']}" if files else "no image"
    where = "; ".join(f.get("saved_path") or f["uri"] for f in files)
    summary = f"{job.tool}: {len(files)} image(s), {size}, in {timings['total_s']:.1f} s"
    if "seed" in public_meta:
        summary += f", seed {public_meta['seed']}"
    summary += f". Files: {where}" if where else "."
    if save_error:
        structured["save_error"] = save_error
        summary = (
            f"{job.tool} made {len(files)} image(s) but {save_error}. ComfyUI saved them as: "
            + "; ".join(f["uri"] for f in files)
        )
    return CallToolResult(
        content=[TextContent(type="text", text=summary), *content],
        structured_content=structured,
        is_error=bool(save_error),
    )
