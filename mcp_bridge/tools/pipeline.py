"""One pipeline for every tool spec: validate → resolve → stage → build → submit → follow → present.

Everything the caller sent is checked before anything is queued or written; a refusal leaves nothing
behind (staged input copies included). Files for ``output_path`` are written by the job's delivery
when the job ends (:mod:`..media.outputs`), whether or not anyone is still waiting.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import ValidationError

from ..delivery.fetch import FetchRefused, FetchRules, is_url, stage_url
from ..delivery.inputs import InputRejected, StagedImage, protected_folders, remove_staged, stage_input_image
from ..delivery.masks import make_mask
from ..delivery.outputs import delivery, output_suffixes, plan_outputs
from ..delivery.paths import PathRejected
from ..engine.ids import new_job_id
from ..engine.jobs import Job, summarize
from ..mcp.toolset import Toolset
from ..specs import params
from ..specs.arguments import ToolArguments
from ..specs.graph import (
    INPAINT_CONDITIONING,
    ControlStep,
    InpaintModel,
    available_preprocessors,
    build_prompt,
)
from ..specs.sizes import SizeCheck, source_checks
from ..specs.spec import InputSpec, ToolSpec
from . import families
from .context import roots_of
from .errors import Refused
from .jobs import follow_job
from .services import Services

GENERATES = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)

# What the caller is told about a model folder: singular, plural, and the name kind of params.check_name.
FOLDERS: dict[str, tuple[str, str, params.NameKind]] = {
    "checkpoints": ("checkpoint", "checkpoints", "model"),
    "loras": ("LoRA", "LoRAs", "lora"),
    "upscale_models": ("upscale model", "upscale models", "upscale_model"),
    "controlnet": ("ControlNet model", "ControlNet models", "controlnet"),
}


def add_spec_tool(toolset: Toolset, services: Services, spec: ToolSpec, model: type[ToolArguments]) -> None:
    """Serve ``spec`` as a tool whose arguments are ``model`` (its advertised schema included)."""

    async def call(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        try:
            parsed = model.model_validate(arguments)
        except ValidationError as exc:
            raise Refused(f"invalid arguments: {params.explain(exc)}") from None
        return await run_spec(services, spec, parsed, ctx)

    schema, description = families.advertise(services, spec, model.model_json_schema())
    toolset.add_spec_tool(
        spec.name,
        call,
        schema=schema,
        description=description,
        title=spec.title,
        annotations=GENERATES,
    )


async def run_spec(services: Services, spec: ToolSpec, p: ToolArguments, ctx: Context) -> CallToolResult:
    """Run one validated call of ``spec``: the common path of every generation tool."""
    job = await submit_spec(services, spec, p, ctx)
    return await follow_job(services, job, ctx, services.settings.call_wait_s, cancel_on_abort=True)


async def submit_spec(services: Services, spec: ToolSpec, p: ToolArguments, ctx: Context) -> Job:
    """Check, stage, build and queue one validated call of ``spec``; a refusal (a layer's exception,
    :mod:`.errors`) leaves nothing queued or written."""
    limits = type(p).limits
    family = await asyncio.to_thread(families.prepare, services, spec, p) if spec.families else None
    if family is not None:  # the model's family: its files, defaults, and graph (issue 21)
        p = family.arguments
    picked = {spec.families: family.model} if spec.families and family else {}
    chosen, loras, controls = await asyncio.to_thread(_resolve_names, services, spec, p, picked)
    inpaint, noise_mask_input = (None, False)
    if family is None or family.plan is None:
        inpaint, noise_mask_input = await _inpaint_plan(services, spec, chosen)
    arguments = {i.name: getattr(p, i.name) for i in spec.inputs}
    sizes = source_checks(spec, arguments, limits, await _scales(services, spec, chosen))
    output_path, overwrite = p.destination
    suffixes = output_suffixes(spec.output_kinds)
    plan = await plan_outputs(services, roots_of(ctx), output_path, _batch(spec, p), overwrite, suffixes)
    staged: dict[str, StagedImage] = {}
    control_images: list[StagedImage] = []  # staged ControlNet images, in stack order
    frames: dict[str, list[StagedImage]] = {}  # the images of "images" inputs, in order
    try:
        for item in spec.of_kind("image", "mask"):
            value = getattr(p, item.name)
            if value is not None:
                staged[item.name] = await _stage(services, value, limits, sizes.get(item.name))
        for item in spec.of_kind("mask"):
            if item.source is not None and item.source in staged:
                staged[item.name] = await _mask(services, item, staged[item.source], staged.get(item.name))
        steps: list[ControlStep] = []
        for control in controls:
            control_images.append(await _stage(services, control.image, limits))
            steps.append(dataclasses.replace(control, image=control_images[-1].name))
        for item in spec.of_kind("images"):
            for n, value in enumerate(getattr(p, item.name) or (), 1):
                check = sizes.get(item.name) if n == 1 else None  # the first frame sets the size
                try:
                    frames.setdefault(item.name, []).append(await _stage(services, value, limits, check))
                except (InputRejected, PathRejected, FetchRefused, params.ParamRejected) as exc:
                    raise Refused(f"{item.name}, frame {n}: {exc}") from None
        seeds = {i.name: params.resolve_seed(getattr(p, i.name)) for i in spec.of_kind("seed")}
        values: dict[str, Any] = {**p.slot_values()}
        for item in spec.inputs:
            if item.slot is None:
                continue
            if item.name in chosen:
                values[item.slot] = chosen[item.name]
            elif item.name in seeds:
                values[item.slot] = seeds[item.name]
            elif item.name in staged:
                values[item.slot] = staged[item.name].name
            elif item.name in frames:
                values[item.slot] = frames[item.name][0].name
        more = {
            i.slot: [f.name for f in frames[i.name][1:]] for i in spec.inputs if i.slot and i.name in frames
        }
        job_id = new_job_id(services.runner.instance_id)
        prompt = build_prompt(
            spec.template,
            values,
            loras,
            filename_prefix="mcp/" + job_id.replace(".", "_"),  # names allow no dots
            controls=steps,
            more_images=more,
            control_target=next((i.conditioning for i in spec.of_kind("controlnets")), None),
            inpaint_model=inpaint,
            noise_mask_input=noise_mask_input,
        )
        if family is not None:
            prompt = family.build(prompt)
        meta = {**_report(spec, p, chosen, seeds, loras, staged, steps), **_frames_report(frames)}
        meta |= family.report if family is not None else {}
        if spec.inpaint_model is not None:
            meta["inpaint_conditioning"] = "model" if inpaint else "noise_mask"
        copies = [s.path for s in (*staged.values(), *control_images, *_all(frames))]
        deliver = delivery(services, plan, copies)
        job = await services.runner.submit(
            spec.name,
            prompt,
            _summary(spec, p, seeds, staged, meta.get("inpaint_conditioning")),
            meta,
            job_id=job_id,
            deliver=deliver,
        )
    except BaseException:
        copies = [s.path for s in (*staged.values(), *control_images, *_all(frames))]
        await asyncio.to_thread(remove_staged, copies)  # refused: leave nothing behind
        raise
    return job


def _resolve_names(
    services: Services, spec: ToolSpec, p: ToolArguments, picked: dict[str, str] | None = None
) -> tuple[dict[str, str], list[params.LoraParam], list[ControlStep]]:
    # Worker thread: every name the caller gave must be installed; omitted models get the default pick
    # (``picked``: models already chosen, by input name).
    comfy = services.comfy
    chosen: dict[str, str] = dict(picked or {})
    for item in spec.inputs:
        value = getattr(p, item.name)
        if item.kind == "model" and item.name not in chosen:
            chosen[item.name] = _pick_model(services, item, value)
        elif item.kind == "sampler":
            chosen[item.name] = params.check_name("sampler", value, comfy.samplers())
        elif item.kind == "scheduler":
            chosen[item.name] = params.check_name("scheduler", value, comfy.schedulers())
    loras: list[params.LoraParam] = []
    for item in spec.of_kind("loras"):
        installed = comfy.model_files("loras")
        for lora in getattr(p, item.name):
            lora.name = params.check_name("lora", lora.name, installed)
            loras.append(lora)
    controls = [_control(services, c) for i in spec.of_kind("controlnets") for c in getattr(p, i.name)]
    return chosen, loras, controls


async def _inpaint_plan(
    services: Services, spec: ToolSpec, chosen: dict[str, str]
) -> tuple[InpaintModel | None, bool]:
    """The spec's inpainting-model graph when its chosen checkpoint is one (and ComfyUI has the node),
    and whether that node takes ``noise_mask``; reads the checkpoint's header off the loop."""
    switch, comfy = spec.inpaint_model, services.comfy
    if switch is None or INPAINT_CONDITIONING not in comfy.node_class_names():
        return None, False
    if not await asyncio.to_thread(comfy.is_inpainting_checkpoint, chosen[switch.model]):
        return None, False
    return switch.graph, "noise_mask" in (comfy.node_inputs(INPAINT_CONDITIONING) or {})


def _control(services: Services, control: params.ControlNetParam) -> ControlStep:
    """One ControlNet with its model and preprocessor checked (its image is staged later, by value)."""
    comfy = services.comfy
    model = params.check_name("controlnet", control.model, comfy.model_files("controlnet"))
    known = available_preprocessors(comfy.node_class_names())
    preprocessor = params.check_name("preprocessor", control.preprocessor, known)
    return ControlStep(
        model=model,
        image=control.image,
        strength=control.strength,
        start_percent=control.start_percent,
        end_percent=control.end_percent,
        preprocessor=None if preprocessor == "none" else preprocessor,
    )


def _pick_model(services: Services, item: InputSpec, wanted: str | None) -> str:
    """The caller's model, else the configured default (checkpoints), else the only one installed."""
    folder = item.folder or ""
    one, many, kind = FOLDERS.get(folder, (f"{folder} file", f"{folder} files", "model"))
    installed = services.comfy.model_files(folder)
    wanted = wanted or (item.default if item.has_default else None)  # a published workflow's own pick
    if wanted:
        return params.check_name(kind, wanted, installed)
    default = services.settings.default_model if folder == "checkpoints" else ""
    if default:
        return params.check_name(kind, default, installed)
    if len(installed) == 1:
        return installed[0]
    if not installed:
        raise params.ParamRejected(f"no {one} is installed in ComfyUI's models/{folder} folder")
    shown = ", ".join(installed[:10])
    raise params.ParamRejected(f"several {many} are installed; name one with {item.name} ({shown})")


async def _scales(services: Services, spec: ToolSpec, chosen: dict[str, str]) -> dict[str, int]:
    """The scale of each upscale model a check multiplies by (the port loads the model, off the loop)."""
    scales: dict[str, int] = {}
    for check in spec.checks:
        if check.scale is None or check.scale in scales:
            continue
        name = chosen[check.scale]
        scale = await asyncio.to_thread(services.comfy.upscale_scale, name)
        if scale is None:
            raise Refused(f"the upscale model {name!r} cannot be loaded by ComfyUI (see its log)")
        scales[check.scale] = scale
    return scales


async def _stage(
    services: Services, value: str, limits: params.Limits, check: SizeCheck | None = None
) -> StagedImage:
    """Copy the caller's input image into ComfyUI's input folder (off the loop); ``check`` refuses it
    by its size before anything is written."""
    comfy = services.comfy
    input_dir, output_dir = Path(comfy.input_directory()), Path(comfy.output_directory())
    read_roots = [input_dir, output_dir, *(Path(r) for r in services.settings.output_roots)]
    max_pixels = limits.max_side * limits.max_side * 4
    if is_url(value):
        settings = services.settings
        rules = FetchRules.of(
            settings.fetch_url_hosts, limits.max_input_image_bytes, settings.fetch_timeout_s
        )
        return await stage_url(value, rules, input_dir=input_dir, max_pixels=max_pixels, check=check)
    return await asyncio.to_thread(
        stage_input_image,
        value,
        input_dir=input_dir,
        output_dir=output_dir,
        read_roots=read_roots,
        protected=protected_folders(comfy),
        max_bytes=limits.max_input_image_bytes,
        max_pixels=max_pixels,
        check=check,
    )


async def _mask(
    services: Services, item: InputSpec, image: StagedImage, given: StagedImage | None
) -> StagedImage:
    """The repaint mask of ``image`` made from the staged ``given`` (removed then) or its alpha."""
    try:
        return await asyncio.to_thread(
            make_mask, image, given, Path(services.comfy.input_directory()), item.name
        )
    finally:
        if given is not None:
            await asyncio.to_thread(remove_staged, [given.path])


def _batch(spec: ToolSpec, p: ToolArguments) -> int:
    """How many images one call makes (for numbering output_path files)."""
    counts = [getattr(p, i.name) for i in spec.inputs if i.limit == "batch"]
    return int(counts[0] or 1) if counts else 1


def _report(
    spec: ToolSpec,
    p: ToolArguments,
    chosen: dict[str, str],
    seeds: dict[str, int],
    loras: list[params.LoraParam],
    staged: dict[str, StagedImage],
    controls: list[ControlStep],
) -> dict[str, Any]:
    """What a call reports about itself in its structured content: the values it ran with."""
    meta: dict[str, Any] = {}
    for item in spec.inputs:
        value = getattr(p, item.name)
        if item.kind in ("text", "image", "images", "mask"):
            continue
        if item.kind == "loras":
            meta[item.name] = [
                {"name": x.name, "strength_model": x.strength_model, "strength_clip": x.strength_clip}
                for x in loras
            ]
        elif item.kind == "controlnets":
            meta[item.name] = [
                {**dataclasses.asdict(step), "preprocessor": step.preprocessor or "none"} for step in controls
            ]
        elif item.name in chosen or item.name in seeds:
            meta[item.name] = chosen.get(item.name, seeds.get(item.name))
        elif value is not None:
            meta[item.name] = value
    for name, image in staged.items():
        key = "input" if len(staged) == 1 else name
        meta[key] = {
            "staged_as": image.name,
            "source": image.source,
            "width": image.width,
            "height": image.height,
        }
    return meta


def _all(frames: dict[str, list[StagedImage]]) -> list[StagedImage]:
    return [f for staged in frames.values() for f in staged]


def _frames_report(frames: dict[str, list[StagedImage]]) -> dict[str, Any]:
    """Per ``images`` input: how many frames, their size (the first's) and which were resized to it."""
    meta: dict[str, Any] = {}
    for name, staged in frames.items():
        first = staged[0]
        resized = [n for n, f in enumerate(staged) if (f.width, f.height) != (first.width, first.height)]
        key = "input_frames" if len(frames) == 1 else f"{name}_frames"
        meta[key] = {"frames": len(staged), "width": first.width, "height": first.height}
        if resized:
            meta[key]["resized"] = resized
            meta[key]["note"] = (
                f"frames {', '.join(map(str, resized))} differ in size and were resized to the first "
                f"frame's {first.width}x{first.height}"
            )
    return meta


def _summary(
    spec: ToolSpec,
    p: ToolArguments,
    seeds: dict[str, int],
    staged: dict[str, StagedImage],
    conditioning: str | None = None,
) -> str:
    """One line for the panel: the first text, the size, the seed, the source image, the inpainting
    conditioning."""
    parts: list[tuple[str, Any]] = []
    texts = spec.of_kind("text")
    if texts:
        parts.append((texts[0].name, str(getattr(p, texts[0].name))[:60]))
    parts.append(("inpaint_conditioning", conditioning))
    width, height = getattr(p, "width", None), getattr(p, "height", None)
    if isinstance(width, int) and isinstance(height, int):
        parts.append(("size", f"{width}x{height}"))
    parts += [(name, seed) for name, seed in seeds.items()]
    parts += [("image", image.source) for image in staged.values()]
    return summarize(parts)


async def stage_image(services: Services, value: str, limits: params.Limits) -> StagedImage:
    """Stage one input image as every spec tool does (for tools that build their own graph)."""
    return await _stage(services, value, limits)
