"""Discovery tools (models, LoRAs, ControlNets, samplers, schedulers, upscale models) and the output
resources.

All read ComfyUI in-process: no HTTP, no WebSocket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from ..comfyui.artifacts import MIME_BY_EXTENSION, OCTET_STREAM, mime_for
from ..delivery.paths import PathPolicy, PathRejected, read_no_follow
from ..delivery.present import view_url_of
from ..engine.ids import output_link
from ..engine.peers import PeerError
from ..mcp.toolset import Toolset
from ..specs.graph import available_preprocessors
from .families import describe
from .services import Services
from .video import VideoCatalog, VideoFamilyInfo

Reader = Callable[..., Awaitable[bytes]]
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


class NameList(BaseModel):
    """Names exactly as the generation tools accept them."""

    names: list[str] = Field(description="Sorted names; subfolders are part of the name (a/b.safetensors)")
    count: int


class ControlNetList(NameList):
    """ControlNet model names, and the preprocessors ComfyUI has nodes for."""

    preprocessors: list[str] = Field(
        description="none (the image already is a control map), canny (built in), and those of "
        "installed node packs (depth, openpose, lineart with comfyui_controlnet_aux)"
    )


class ModelList(NameList):
    """Checkpoint names, every image model with its family, and the video families."""

    model_config = ConfigDict(extra="allow")  # image_models: every image model with its family (issue
    # 21), outside the advertised schema: {name, folder, family, runnable, text_encoders, vae, missing}

    video_families: list[VideoFamilyInfo] = Field(
        default_factory=list,
        description="each family generate_video supports on this ComfyUI: per mode (t2v, i2v) whether it "
        "can run, the files it would use, or what to install",
    )


MAX_READS = 4  # resources/read files held in memory at once
_READS = asyncio.Semaphore(MAX_READS)


def _names(values: list[str]) -> NameList:
    return NameList(names=values, count=len(values))


def read_output(relative: str, out: str, max_bytes: int, uri: str = "") -> tuple[bytes, str]:
    """Bytes and MIME type of a file in ComfyUI's output folder (containment checked, size capped)."""
    try:
        path = PathPolicy([out], suffixes=MIME_BY_EXTENSION).resolve_input(relative, out)
    except PathRejected as exc:
        raise ResourceError(f"no such output file: {exc.reason}") from None
    try:
        data, size = read_no_follow(path, max_bytes)
    except PathRejected as exc:
        raise ResourceError(f"no such output file: {exc.reason}") from None
    if len(data) > max_bytes:
        raise ResourceError(
            f"{uri or relative} is {size} bytes, more than resources/read sends "
            f"(max_resource_read_bytes = {max_bytes}); fetch it from ComfyUI's own "
            f"{view_url_of(relative)} instead"
        )
    return data, mime_for(path.name)


def register(tools: Toolset, services: Services, videos: VideoCatalog | None = None) -> None:
    """Add the list tools (``list_models`` also reports the video families of ``videos``)."""
    comfy = services.comfy

    @tools.tool(annotations=READ_ONLY)
    async def list_models() -> ModelList:
        """Image models for `model` (image_models: family, files or what is missing); generate_video's
        families and what each needs."""

        def read() -> ModelList:
            names = comfy.model_files("checkpoints")
            families = videos.report(comfy.model_files) if videos is not None else []
            images = [m.model_dump() for m in describe(services)]
            extra = {"image_models": images}  # outside the advertised schema (tools/list budget)
            return ModelList(names=names, count=len(names), video_families=families, **extra)

        return await asyncio.to_thread(read)

    @tools.tool(annotations=READ_ONLY)
    async def list_loras() -> NameList:
        """LoRAs, for `loras`."""
        return _names(await asyncio.to_thread(comfy.model_files, "loras"))

    @tools.tool(annotations=READ_ONLY)
    async def list_controlnets() -> ControlNetList:
        """ControlNet models and the preprocessors ComfyUI can run, for `controlnets`."""
        names = await asyncio.to_thread(comfy.model_files, "controlnet")
        return ControlNetList(
            names=names, count=len(names), preprocessors=available_preprocessors(comfy.node_class_names())
        )

    @tools.tool(annotations=READ_ONLY)
    async def list_samplers() -> NameList:
        """Samplers, for `sampler`."""
        return _names(comfy.samplers())

    @tools.tool(annotations=READ_ONLY)
    async def list_schedulers() -> NameList:
        """Schedulers, for `scheduler`."""
        return _names(comfy.schedulers())

    @tools.tool(annotations=READ_ONLY)
    async def list_upscale_models() -> NameList:
        """Upscale models, for upscale_image's `upscale_model`."""
        return _names(await asyncio.to_thread(comfy.model_files, "upscale_models"))


def register_resources(mcp: MCPServer, services: Services) -> None:
    """Add the ``comfy://`` output resource templates to ``mcp``: the links results carry,
    ``comfy://<instance>/output/...`` (another instance's are read from it), and the older
    ``comfy://output/...`` (this instance's)."""

    def template(uri: str, name: str, description: str) -> Callable[[Reader], Reader]:
        # Each read carries the file's own MIME type (mcp_server.BridgeMCPServer).
        return mcp.resource(uri, name=name, mime_type=OCTET_STREAM, description=description)

    @template(
        "comfy://output/{filename}", "output-image", "A full-size output file (image, animation, video)"
    )
    async def output_image(filename: str) -> bytes:
        return await _read(services, filename)

    @template("comfy://output/{subfolder}/{filename}", "output-image-in-subfolder", "One in a subfolder")
    async def output_image_in_subfolder(subfolder: str, filename: str) -> bytes:
        return await _read(services, f"{subfolder}/{filename}")

    @template("comfy://{instance}/output/{filename}", "instance-output", "An output file of one instance")
    async def instance_output(instance: str, filename: str) -> bytes:
        return await _read(services, filename, instance)

    @template(
        "comfy://{instance}/output/{subfolder}/{filename}", "instance-output-in-subfolder", "In a subfolder"
    )
    async def instance_output_in_subfolder(instance: str, subfolder: str, filename: str) -> bytes:
        return await _read(services, f"{subfolder}/{filename}", instance)


async def _read(services: Services, relative: str, instance: str | None = None) -> bytes:
    own = services.runner.instance_id
    uri = output_link(instance, relative) if instance is not None else f"comfy://output/{relative}"
    if instance is not None and instance != own:
        try:
            return await services.peers.read_resource(services.peers.get(instance, uri), uri)
        except PeerError as exc:
            raise ResourceError(str(exc)) from None
    out, cap = services.comfy.output_directory(), services.settings.max_resource_read_bytes
    async with _READS:  # each read holds up to cap bytes (and their base64) until it is sent
        data, _mime = await asyncio.to_thread(read_output, relative, out, cap, uri)
    return data
