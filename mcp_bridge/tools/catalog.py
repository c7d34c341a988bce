"""Discovery tools (models, LoRAs, samplers, schedulers, upscale models) and the output resources.

All read ComfyUI in-process: no HTTP, no WebSocket.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from ..media.paths import PathPolicy, PathRejected
from ..services import Services
from .toolset import Toolset

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
MAX_RESOURCE_BYTES = 64 * 1024 * 1024


class NameList(BaseModel):
    """Names exactly as the generation tools accept them."""

    names: list[str] = Field(description="Sorted names; subfolders are part of the name (a/b.safetensors)")
    count: int


def _names(values: list[str]) -> NameList:
    return NameList(names=values, count=len(values))


def read_output(relative: str, out: str) -> tuple[bytes, str]:
    """Bytes and MIME type of an image in ComfyUI's output folder (containment checked)."""
    try:
        path = PathPolicy([out]).resolve_input(relative, out)
    except PathRejected as exc:
        raise ResourceError(f"no such output image: {exc.reason}") from None
    if path.stat().st_size > MAX_RESOURCE_BYTES:
        raise ResourceError("the image is too large to send; open its /view URL instead")
    return path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def register(tools: Toolset, services: Services) -> None:
    """Add the list tools."""
    comfy = services.comfy

    @tools.tool(annotations=READ_ONLY)
    async def list_models() -> NameList:
        """Checkpoints installed in ComfyUI, for the `model` argument of generate_image and img2img."""
        return _names(await asyncio.to_thread(comfy.model_files, "checkpoints"))

    @tools.tool(annotations=READ_ONLY)
    async def list_loras() -> NameList:
        """LoRAs installed in ComfyUI, for the `loras` argument ({name, strength_model, strength_clip})."""
        return _names(await asyncio.to_thread(comfy.model_files, "loras"))

    @tools.tool(annotations=READ_ONLY)
    async def list_samplers() -> NameList:
        """Sampler names for the `sampler` argument (e.g. euler, euler_ancestral, dpmpp_2m)."""
        return _names(comfy.samplers())

    @tools.tool(annotations=READ_ONLY)
    async def list_schedulers() -> NameList:
        """Scheduler names for the `scheduler` argument (e.g. normal, karras)."""
        return _names(comfy.schedulers())

    @tools.tool(annotations=READ_ONLY)
    async def list_upscale_models() -> NameList:
        """Upscale models installed in ComfyUI, for the `upscale_model` argument of upscale_image."""
        return _names(await asyncio.to_thread(comfy.model_files, "upscale_models"))


def register_resources(mcp: MCPServer, services: Services) -> None:
    """Add the ``comfy://output/...`` resource templates to ``mcp``."""

    @mcp.resource(
        "comfy://output/{filename}",
        name="output-image",
        description="A full-size image from ComfyUI's output folder",
    )
    async def output_image(filename: str) -> bytes:
        data, _mime = await asyncio.to_thread(read_output, filename, services.comfy.output_directory())
        return data

    @mcp.resource(
        "comfy://output/{subfolder}/{filename}",
        name="output-image-in-subfolder",
        description="A full-size image from a subfolder of ComfyUI's output folder (the bridge uses mcp/)",
    )
    async def output_image_in_subfolder(subfolder: str, filename: str) -> bytes:
        data, _mime = await asyncio.to_thread(
            read_output, str(Path(subfolder) / filename), services.comfy.output_directory()
        )
        return data
