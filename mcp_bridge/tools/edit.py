"""``edit_image``: change an image by an instruction with an edit model, optionally with reference images.

The edit modes are declared in ``workflows/edit/`` (:mod:`..specs.edit`), each on a model family of
``workflows/families`` (its loaders, encoders and VAE: :mod:`..specs.families`). A mode is offered when
this ComfyUI has its nodes and its base family's. Which mode a model file is: its header gives the base
family, its name (or the caller's ``family``) the edit mode. Everything is checked before anything is
staged or queued; the result is presented as every generation's (preview, link, seed, parameters,
progress, job handle).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field, ValidationError, model_validator

from ..delivery.inputs import StagedImage, remove_staged
from ..delivery.outputs import delivery, output_suffixes, plan_outputs
from ..engine.ids import new_job_id
from ..engine.jobs import Job, summarize
from ..mcp.toolset import Toolset
from ..specs import params
from ..specs.arguments import STRICT, budget
from ..specs.edit import (
    EditMode,
    EditValues,
    Loaders,
    build_edit_prompt,
    load_edit_modes,
    output_size,
    pick_modes,
)
from ..specs.families.catalog import Family, FamilyCatalog
from ..specs.families.detect import Detection
from ..specs.families.plan import FamilyRefused, Plan, make_plan
from .context import roots_of
from .errors import Refused, as_tool_error
from .families import catalog as families_of
from .families import detect
from .jobs import follow_job
from .pipeline import GENERATES, stage_image
from .services import Services

TOOL = "edit_image"
KINDS = frozenset({"image"})
MODEL_FOLDER = "diffusion_models"
SD_FAMILIES = frozenset({"sd1", "sd2", "sdxl", "sdxl_refiner", "sd_unclip"})
_MODEL = "An installed edit model (models/diffusion_models); omitted: the only one."
_MULTIPLE = 16


@dataclass(frozen=True)
class EditCatalog:
    """The edit modes this ComfyUI can run (with their base family) and why others are not offered."""

    modes: Sequence[tuple[EditMode, Family]]
    left_out: dict[str, str]

    @property
    def ids(self) -> list[str]:
        return [mode.id for mode, _ in self.modes]

    def installs(self) -> str:
        """What to install for each mode, one line each."""
        lines = []
        for mode, family in self.modes:
            encoders = ", ".join(e.install for e in family.required_encoders())
            lines.append(
                f"- {mode.id} ({mode.title}): models/{MODEL_FOLDER}/{mode.install}, "
                f"models/text_encoders/{encoders}, models/vae/{family.vae_install}"
            )
        return "\n".join(lines)


def load_edit_catalog(
    modes: Sequence[EditMode], left_out: dict[str, str], families: FamilyCatalog
) -> EditCatalog:
    """The modes whose base family this ComfyUI runs (the others join ``left_out`` with the reason)."""
    offered: list[tuple[EditMode, Family]] = []
    why = dict(left_out)
    for mode in modes:
        family = families.families.get(mode.base)
        if family is None:
            unoffered = families.unoffered.get(mode.base)
            why[mode.id] = (
                f"its family {mode.base} is not offered: {unoffered[1] if unoffered else 'undeclared'}"
            )
        else:
            offered.append((mode, family))
    return EditCatalog(offered, why)


def edit_catalog(services: Services) -> EditCatalog:
    """The edit modes of ``workflows/edit`` this ComfyUI can run (node classes, its families)."""
    modes, left_out = load_edit_modes(services.comfy.node_class_names())
    return load_edit_catalog(modes, left_out, families_of(services))


@dataclass(frozen=True)
class Choice:
    """What one call runs: the mode, its family's files (plan), the model's detection."""

    mode: EditMode
    plan: Plan

    def loaders(self) -> Loaders:
        family, plan = self.plan.family, self.plan
        declared = family.clip_loader(len(plan.encoders))
        if declared is None or plan.vae is None:  # make_plan picks both for split files
            raise Refused(f"{family.title}: no CLIP loader for {len(plan.encoders)} encoders here")
        return Loaders(plan.model, declared[0], declared[1], plan.encoders, plan.vae)


def _detect(services: Services, folder: str, names: Sequence[str]) -> dict[str, Detection]:
    return {name: detect(services, folder, name) for name in names}


def choose(catalog: EditCatalog, services: Services, arguments: dict[str, Any]) -> Choice:
    """The mode and files of one call (worker thread: lists folders, reads headers). Raises Refused
    for an unknown, uninstalled or non-edit model, a family that does not fit, too many references."""
    model, wanted = arguments.get("model"), arguments.get("family")
    if wanted is not None and wanted not in catalog.ids:
        raise Refused(
            f"unknown family {str(wanted)[:40]!r}; this ComfyUI edits with {', '.join(catalog.ids)}"
        )
    modes = [m for m, _ in catalog.modes if wanted in (None, m.id)]
    comfy = services.comfy
    installed = comfy.model_files(MODEL_FOLDER)
    if model is not None and model not in installed:
        _not_a_diffusion_model(services, str(model), installed)
    detected = _detect(services, MODEL_FOLDER, [model] if model is not None else installed)
    fitting = [
        (name, mode)
        for name, found in detected.items()
        for mode in (modes if wanted else pick_modes(modes, _family_id(catalog, found), name))
        if _family_id(catalog, found) == mode.base
    ]
    if not fitting:
        raise Refused(_no_edit_model(catalog, model, detected, wanted))
    if len({name for name, _ in fitting}) > 1:
        shown = ", ".join(sorted({name for name, _ in fitting})[:8])
        raise Refused(f"several edit models are installed ({shown}); name one with model")
    name, mode = fitting[0]
    _check_references(mode, arguments.get("reference_images"))
    family = next(f for m, f in catalog.modes if m is mode)
    encoders = _detect(services, "text_encoders", comfy.model_files("text_encoders"))
    vaes = _detect(services, "vae", comfy.model_files("vae"))
    wanted_encoders, wanted_vae = arguments.get("text_encoders"), arguments.get("vae")
    try:
        plan = make_plan(
            family, name, MODEL_FOLDER, detected[name], encoders, vaes, wanted_encoders, wanted_vae
        )
    except FamilyRefused as exc:
        raise Refused(f"{mode.title}: {exc}") from None
    return Choice(mode, plan)


def _family_id(catalog: EditCatalog, found: Detection) -> str | None:
    return next((f.id for _, f in catalog.modes if found.family in f.detect), None)


def _check_references(mode: EditMode, references: object) -> None:
    count = len(references) if isinstance(references, list) else 0
    if count > mode.references:
        takes = f"at most {mode.references} reference images" if mode.references else "no reference images"
        raise Refused(f"{mode.title} takes {takes} besides input_image; {count} were given")


def _check_reference_count(catalog: EditCatalog, references: object) -> None:
    """More references than any family takes: refused naming each family's limit."""
    most = max(m.references for m, _ in catalog.modes)
    if isinstance(references, list) and len(references) > most:
        limits = ", ".join(f"{m.id} {m.references}" for m, _ in catalog.modes)
        raise Refused(
            f"{len(references)} reference images were given; the edit families here take at most: {limits}"
        )


def _not_a_diffusion_model(services: Services, model: str, installed: Sequence[str]) -> None:
    if model in services.comfy.model_files("checkpoints"):
        found = detect(services, "checkpoints", model)
        if found.family in SD_FAMILIES or found.family is None:
            raise Refused(
                f"{model[:120]} is a Stable Diffusion checkpoint, which cannot edit by instruction: use "
                "img2img (a prompt and denoise) or inpaint (a mask of what to repaint) with it"
            )
        raise Refused(f"{model[:120]} is an all-in-one checkpoint; edit_image runs split diffusion models")
    params.check_name("model", model, installed)  # raises with the closest names
    raise Refused(f"no edit model named {model[:120]!r}")  # pragma: no cover - check_name raised


def _no_edit_model(
    catalog: EditCatalog, model: object, detected: dict[str, Detection], wanted: object
) -> str:
    if model is not None:
        found = detected[str(model)]
        what = found.family or "not a model ComfyUI detects"
        bases = sorted({m.base for m, _ in catalog.modes if wanted in (None, m.id)})
        if found.family in SD_FAMILIES:
            return f"{model} is a Stable Diffusion model: use img2img or inpaint with it"
        if _family_id(catalog, found) in bases:
            names = ", ".join(m.id for m, _ in catalog.modes if m.base == _family_id(catalog, found))
            return (
                f"{model} is a {found.family} model by its header, and its name does not say which edit "
                f"model it is: if it is one, say family ({names})"
            )
        return f"{model} is {what}; edit_image takes the edit models of: {', '.join(bases)}"
    return "no edit model is installed. This ComfyUI can edit with (install one):\n" + catalog.installs()


# -- the tool --


def edit_arguments(catalog: EditCatalog, limits: params.Limits) -> type[BaseModel]:
    """The arguments model (its JSON schema is the advertised one; each family's knobs: see the
    description)."""
    image = Annotated[str, Field(min_length=1, max_length=limits.max_input_image_chars)]
    side = Annotated[int | None, Field(ge=64, le=limits.max_side, multiple_of=_MULTIPLE)]
    number = Annotated[float | None, Field(ge=0, le=100)]
    name = Field(min_length=1, max_length=params.NAME_MAX_CHARS)
    families: Any = Literal.__getitem__(tuple(catalog.ids))

    class EditArguments(BaseModel):
        model_config = STRICT
        input_image: Annotated[image, Field(description="The image to edit (img2img's input_image forms).")]
        instruction: Annotated[
            str, Field(min_length=1, max_length=limits.max_prompt_bytes, description="What to change.")
        ]
        reference_images: Annotated[
            list[image],
            Field(
                max_length=max(m.references for m, _ in catalog.modes),
                description="More images the instruction may refer to (image 2, 3, ...).",
            ),
        ] = []
        model: Annotated[
            str | None, Field(min_length=1, max_length=params.NAME_MAX_CHARS, description=_MODEL)
        ] = None
        family: Annotated[families | None, Field(description="When the file name does not tell it.")] = None
        seed: Annotated[int | None, Field(ge=0, le=params.MAX_SEED)] = None
        steps: Annotated[int | None, Field(ge=1, le=limits.max_steps)] = None
        guidance: Annotated[number, Field(description="Flux families.")] = None
        cfg_scale: Annotated[number, Field(le=30, description="Qwen families.")] = None
        shift: Annotated[number, Field(description="Qwen families.")] = None
        text_encoders: Annotated[list[Annotated[str, name]] | None, Field(max_length=4)] = None
        vae: Annotated[str | None, name] = None
        width: Annotated[side, Field(description="Omitted: the input's aspect at about 1 megapixel.")] = None
        height: side = None
        output_path: Annotated[str | None, Field(min_length=1, max_length=4096)] = None
        overwrite: bool = False

        @model_validator(mode="after")
        def _size(self) -> EditArguments:
            if (self.width is None) != (self.height is None):
                raise ValueError("give width and height together, or neither")
            if self.width is not None and self.height is not None:
                budget(limits, self.width, self.height)
            return self

    return EditArguments


def edit_description(catalog: EditCatalog) -> str:
    """What the tool does, per family its limit and knobs."""
    lines = ["Edit an image by an instruction with an edit model, keeping the rest of it. Families:"]
    for mode, _ in catalog.modes:
        knobs = ", ".join(mode.knobs()) or "none"
        lines.append(f"- {mode.id}: {mode.references} reference images; knobs: {knobs}")
    return "\n".join(lines)


def add_edit_tool(toolset: Toolset, services: Services, catalog: EditCatalog) -> None:
    """Serve ``edit_image`` when this ComfyUI can run at least one edit mode."""
    if not catalog.modes:
        return
    limits = services.param_models.limits
    model = edit_arguments(catalog, limits)

    async def call(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        _check_reference_count(catalog, arguments.get("reference_images"))
        try:
            parsed = model.model_validate(arguments)
        except ValidationError as exc:
            raise Refused(f"invalid arguments: {params.explain(exc)}") from None
        values = parsed.model_dump()
        chosen = await asyncio.to_thread(choose, catalog, services, values)
        job = await _submit(services, chosen, values, ctx, limits)
        return await follow_job(services, job, ctx, services.settings.call_wait_s, cancel_on_abort=True)

    toolset.add_spec_tool(
        TOOL,
        call,
        schema=model.model_json_schema(),
        description=edit_description(catalog),
        title="Edit an image",
        annotations=GENERATES,
    )


async def _submit(
    services: Services, chosen: Choice, values: dict[str, Any], ctx: Context, limits: params.Limits
) -> Job:
    """Stage the images, build the graph, queue it; a refusal leaves nothing staged or queued."""
    mode, loaders = chosen.mode, chosen.loaders()
    output = await plan_outputs(
        services, roots_of(ctx), values["output_path"], 1, values["overwrite"], output_suffixes(KINDS)
    )
    staged: list[StagedImage] = []
    try:
        for n, value in enumerate([values["input_image"], *values["reference_images"]]):
            try:
                staged.append(await stage_image(services, value, limits))
            except Exception as exc:
                said = as_tool_error(exc)
                if not n or said is None:
                    raise
                raise Refused(f"reference_images[{n - 1}]: {said}") from None
        source = staged[0]
        width, height = values["width"], values["height"]
        if width is None or height is None:
            width, height = fit(source.width, source.height, mode, limits)
        seed = params.resolve_seed(values["seed"])
        job_id = new_job_id(services.runner.instance_id)
        edit = EditValues(
            image=source.name,
            references=tuple(s.name for s in staged[1:]),
            instruction=values["instruction"],
            seed=seed,
            steps=values["steps"] or mode.steps,
            width=width,
            height=height,
            filename_prefix="mcp/" + job_id.replace(".", "_"),
            guidance=values["guidance"],
            cfg_scale=values["cfg_scale"],
            shift=values["shift"],
        )
        _refuse_other_knobs(mode, values)
        meta = _report(chosen, edit, staged, values)
        summary = summarize([("instruction", edit.instruction[:60]), ("family", mode.id), ("seed", seed)])
        return await services.runner.submit(
            TOOL,
            build_edit_prompt(mode, loaders, edit),
            summary,
            meta,
            job_id=job_id,
            deliver=delivery(services, output, [s.path for s in staged]),
        )
    except BaseException:
        await asyncio.to_thread(remove_staged, [s.path for s in staged])
        raise


def fit(width: int, height: int, mode: EditMode, limits: params.Limits) -> tuple[int, int]:
    """The input's aspect at the mode's pixel budget, within the configured side and pixel caps."""
    pixels = min(mode.pixels, limits.max_pixels)
    out_w, out_h = output_size(width, height, pixels, mode.multiple)
    while max(out_w, out_h) > limits.max_side or out_w * out_h > limits.max_pixels:
        pixels = int(pixels * 0.9)
        out_w, out_h = output_size(width, height, pixels, mode.multiple)
    return out_w, out_h


def _refuse_other_knobs(mode: EditMode, values: dict[str, Any]) -> None:
    given = [k for k in ("guidance", "cfg_scale", "shift") if values.get(k) is not None]
    other = [k for k in given if k not in mode.knobs()]
    if other:
        takes = ", ".join(mode.knobs()) or "none of guidance, cfg_scale, shift"
        raise Refused(f"{mode.title} does not take {', '.join(other)}; it takes {takes}")


def _report(
    chosen: Choice, edit: EditValues, staged: list[StagedImage], values: dict[str, Any]
) -> dict[str, Any]:
    """What the call reports about itself: the values it ran with (the caller's are kept apart)."""
    mode, plan = chosen.mode, chosen.plan
    meta: dict[str, Any] = {
        "family": mode.id,
        "model": plan.model,
        "text_encoders": list(plan.encoders),
        "vae": plan.vae,
        "seed": edit.seed,
        "steps": edit.steps,
        "width": edit.width,
        "height": edit.height,
    }
    for knob in mode.knobs():
        meta[knob] = {
            "guidance": edit.guidance if edit.guidance is not None else mode.guidance,
            "cfg_scale": edit.cfg_scale if edit.cfg_scale is not None else mode.cfg,
            "shift": edit.shift if edit.shift is not None else mode.shift,
        }[knob]
    meta["input"] = _staged(staged[0])
    if staged[1:]:
        meta["references"] = [_staged(s) for s in staged[1:]]
    if plan.notes:
        meta["notes"] = list(plan.notes)
    return meta


def _staged(image: StagedImage) -> dict[str, Any]:
    return {"staged_as": image.name, "source": image.source, "width": image.width, "height": image.height}
