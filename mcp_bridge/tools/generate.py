"""The generation tools: generate_image, img2img, upscale_image.

Each call: validate everything (parameters, names, paths, input image) → build the prompt from a
template → queue it as a job → wait with progress up to the configured bound → present the result.
Nothing is queued or written when validation fails.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, ValidationError

from ..comfyui import adapter
from ..comfyui.adapter import PromptRejected
from ..engine.jobs import summarize
from ..media.inputs import InputRejected, StagedImage, stage_input_image
from ..media.outputs import plan_outputs, saver
from ..media.paths import PathRejected
from ..services import Services
from . import params
from .jobs import follow_job
from .workflows import SlotValueRejected, TemplateUnavailable

log = logging.getLogger("comfyui_mcp_bridge")

P = TypeVar("P", bound=BaseModel)
Handler = Callable[[P, Context], Awaitable[CallToolResult]]

GENERATES = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)


class _RawArguments(ArgModelBase):
    """Hands the raw arguments to the tool, which validates them with its own model (better errors)."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.__pydantic_extra__ or {})}


def add_model_tool(
    mcp: MCPServer,
    name: str,
    model: type[P],
    handler: Handler[P],
    *,
    description: str,
    annotations: ToolAnnotations,
) -> None:
    """Register a tool whose arguments are exactly ``model`` (flat, its JSON Schema advertised)."""

    async def call(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        try:
            parsed = model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(f"invalid arguments: {params.explain(exc)}") from None
        return await handler(parsed, ctx)

    mcp.add_tool(call, name=name, description=description, annotations=annotations)
    tool = mcp._tool_manager.get_tool(name)  # noqa: SLF001 - the SDK has no public way to set a schema
    assert tool is not None
    tool.fn_metadata.arg_model = _RawArguments
    tool.parameters = model.model_json_schema()


# -- shared steps --------------------------------------------------------------------------------


def check_names(services: Services, p: Any, *, sampling: bool = True) -> tuple[str, list[Any]]:
    """Exact installed names for model, sampler, scheduler, LoRAs; returns (model, loras)."""
    try:
        model = pick_model(services, p.model)
        if sampling:
            p.sampler = params.check_name("sampler", p.sampler, adapter.samplers())
            p.scheduler = params.check_name("scheduler", p.scheduler, adapter.schedulers())
        installed = adapter.model_files("loras")
        for lora in p.loras:
            lora.name = params.check_name("lora", lora.name, installed)
    except params.ParamRejected as exc:
        raise ToolError(str(exc)) from None
    return model, list(p.loras)


def pick_model(services: Services, wanted: str | None) -> str:
    """The checkpoint to use: the caller's, else the configured default, else the only one installed."""
    installed = adapter.model_files("checkpoints")
    if wanted:
        return params.check_name("model", wanted, installed)
    default = services.settings.default_model
    if default:
        return params.check_name("model", default, installed)
    if len(installed) == 1:
        return installed[0]
    if not installed:
        raise params.ParamRejected("no checkpoint is installed in ComfyUI's models/checkpoints folder")
    shown = ", ".join(installed[:10])
    raise params.ParamRejected(f"several checkpoints are installed; name one with model ({shown})")


async def stage(services: Services, value: str, limits: params.Limits) -> StagedImage:
    """Copy the caller's input image into ComfyUI's input folder (off the loop)."""
    read_roots = [Path(adapter.input_directory()), Path(adapter.output_directory())]
    read_roots += [Path(r) for r in services.settings.output_roots]
    try:
        return await asyncio.to_thread(
            stage_input_image,
            value,
            input_dir=Path(adapter.input_directory()),
            output_dir=Path(adapter.output_directory()),
            read_roots=read_roots,
            max_bytes=limits.max_input_image_bytes,
            max_pixels=limits.max_side * limits.max_side * 4,
        )
    except (InputRejected, PathRejected) as exc:
        raise ToolError(str(exc)) from None


async def run_template(
    services: Services,
    ctx: Context,
    *,
    tool: str,
    template: str,
    values: dict[str, Any],
    loras: list[Any],
    summary: str,
    meta: dict[str, Any],
) -> CallToolResult:
    """Build the prompt, queue it as a job and follow it (the common tail of every generation tool)."""
    job_id = str(uuid.uuid4())
    try:
        prompt = services.templates.build(template, values, loras, filename_prefix=f"mcp/{job_id}")
    except (TemplateUnavailable, SlotValueRejected) as exc:
        raise ToolError(str(exc)) from None
    try:
        job = await services.runner.submit(tool, prompt, summary, meta, job_id=job_id)
    except PromptRejected as exc:
        raise ToolError(f"ComfyUI refused the workflow: {exc}") from None
    return await follow_job(services, job, ctx, services.settings.call_wait_s, cancel_on_abort=True)


def sampling_meta(p: Any, seed: int, model: str, loras: list[Any]) -> dict[str, Any]:
    """What a sampling call reports about itself (structured content)."""
    return {
        "seed": seed,
        "model": model,
        "loras": _lora_meta(loras),
        "steps": p.steps,
        "cfg_scale": p.cfg_scale,
        "sampler": p.sampler,
        "scheduler": p.scheduler,
    }


def input_meta(staged: StagedImage) -> dict[str, Any]:
    """How the caller's input image was taken in."""
    return {"staged_as": staged.name, "source": staged.source, "width": staged.width, "height": staged.height}


def _lora_meta(loras: list[Any]) -> list[dict[str, Any]]:
    return [
        {"name": x.name, "strength_model": x.strength_model, "strength_clip": x.strength_clip} for x in loras
    ]


# -- the tools -----------------------------------------------------------------------------------


def register(mcp: MCPServer, services: Services) -> None:
    """Add generate_image, img2img and upscale_image to ``mcp``."""
    models = services.param_models

    async def generate_image(p: params.GenerateImageParams, ctx: Context) -> CallToolResult:
        model, loras = await asyncio.to_thread(check_names, services, p)  # folder listings
        plan = await plan_outputs(services, ctx, p.output_path, p.batch_size, p.overwrite)
        seed = params.resolve_seed(p.seed)
        values = {**p.slot_values(), "model": model, "seed": seed}
        meta = {
            **sampling_meta(p, seed, model, loras),
            "width": p.width,
            "height": p.height,
            "finalize": saver(services, plan),
        }
        summary = summarize([("prompt", p.prompt[:60]), ("size", f"{p.width}x{p.height}"), ("seed", seed)])
        return await run_template(
            services,
            ctx,
            tool="generate_image",
            template="txt2img",
            values=values,
            loras=loras,
            summary=summary,
            meta=meta,
        )

    async def img2img(p: params.Img2ImgParams, ctx: Context) -> CallToolResult:
        model, loras = await asyncio.to_thread(check_names, services, p)  # folder listings
        plan = await plan_outputs(services, ctx, p.output_path, p.batch_size, p.overwrite)
        staged = await stage(services, p.input_image, models.limits)
        width, height = p.width or staged.width, p.height or staged.height
        try:
            models.limits.check_pixels(width, height, p.batch_size)
        except params.ParamRejected as exc:
            staged.path.unlink(missing_ok=True)  # refused: leave nothing behind
            raise ToolError(str(exc)) from None
        seed = params.resolve_seed(p.seed)
        values = {**p.slot_values(), "model": model, "seed": seed, "image": staged.name}
        meta = {
            **sampling_meta(p, seed, model, loras),
            "denoise": p.denoise,
            "input": input_meta(staged),
            "finalize": saver(services, plan),
        }
        summary = summarize([("prompt", p.prompt[:60]), ("denoise", p.denoise), ("seed", seed)])
        return await run_template(
            services,
            ctx,
            tool="img2img",
            template="img2img",
            values=values,
            loras=loras,
            summary=summary,
            meta=meta,
        )

    async def upscale_image(p: params.UpscaleImageParams, ctx: Context) -> CallToolResult:
        installed = await asyncio.to_thread(adapter.model_files, "upscale_models")  # folder listing
        try:
            if p.upscale_model:
                upscaler = params.check_name("upscale_model", p.upscale_model, installed)
            elif len(installed) == 1:
                upscaler = installed[0]
            elif not installed:
                raise params.ParamRejected("no upscale model is installed in ComfyUI's models/upscale_models")
            else:
                raise params.ParamRejected(
                    "several upscale models are installed; name one with upscale_model "
                    f"({', '.join(installed[:10])})"
                )
        except params.ParamRejected as exc:
            raise ToolError(str(exc)) from None
        plan = await plan_outputs(services, ctx, p.output_path, 1, p.overwrite)
        staged = await stage(services, p.input_image, models.limits)
        meta = {
            "upscale_model": upscaler,
            "input": input_meta(staged),
            "finalize": saver(services, plan),
        }
        summary = summarize([("image", staged.source), ("model", upscaler)])
        values = {"image": staged.name, "upscale_model": upscaler}
        return await run_template(
            services,
            ctx,
            tool="upscale_image",
            template="upscale",
            values=values,
            loras=[],
            summary=summary,
            meta=meta,
        )

    add_model_tool(
        mcp,
        "generate_image",
        models.generate_image,
        generate_image,
        annotations=GENERATES,
        description=(
            "Generate images from a text prompt with ComfyUI (txt2img), optionally with stacked LoRAs. "
            "Returns a small preview of each image, a comfy://output/... link to the full file, and the seed "
            "used (reuse it to reproduce). Sizes in pixels (multiples of 8). Call list_models, list_loras, "
            "list_samplers and list_schedulers for valid names. Long renders return a job_id: then call "
            "wait_job. output_path (optional) also saves the image there (.png/.jpg/.webp)."
        ),
    )
    add_model_tool(
        mcp,
        "img2img",
        models.img2img,
        img2img,
        annotations=GENERATES,
        description=(
            "Transform an existing image guided by a prompt. input_image: a file name in ComfyUI's input "
            "or output folder, a comfy://output/... URI from an earlier result, a full path inside the "
            "allowed folders, or base64/data URI. denoise 0..1: how much to change (0.3 subtle, 0.8 strong). "
            "Omit width/height to keep the source size. Same result format as generate_image."
        ),
    )
    add_model_tool(
        mcp,
        "upscale_image",
        models.upscale_image,
        upscale_image,
        annotations=GENERATES,
        description=(
            "Upscale an image with an upscale model (e.g. ESRGAN x4; the factor is the model's). "
            "input_image as for img2img; call list_upscale_models for names. Returns a preview and a link "
            "to the full-size file; output_path (optional) also saves it there."
        ),
    )
