"""Tool specs: a workflow, the arguments a caller gives it, and what it produces — as data.

A spec is an API-format workflow file whose ``"_bridge"`` entry also declares the tool::

    "_bridge": {
      "tool": "generate_image", "title": "...", "description": "...",
      "inputs": {
        "<argument>": {"kind": "text|int|float|bool|seed|model|choice|sampler|scheduler|image|mask|loras|
                                 controlnets",
                       "node": "<id>", "input": "<name>",    # where the value goes (or "slot": "<slot>")
                       "required": false, "nullable": false, "default": ..., "default_from": "<field>",
                       "min": ..., "max": ..., "step": ..., "limit": "side|steps|batch|prompt",
                       "folder": "checkpoints", "description": "...",
                       "conditioning": "<id>",   # controlnets: the node whose positive/negative they steer
                       "source": "<argument>"}},  # mask: the image it masks (resized to it; its alpha
                                                  # when the mask is omitted)
      "checks": [{"pixels": ["width", "height", "batch_size"], "source": "input_image"},
                 {"together": ["width", "height"], "message": "..."},
                 {"any": ["left", "right"], "message": "..."},    # at least one given and not 0
                 {"canvas": ["left", "right", "top", "bottom"], "source": "input_image"}],  # padded size
      "outputs": ["9"], "slots": {...}, "bypass": {...},
      "inpaint_model": {"model": "<model input>", "sampler": "<id>", "vae": ["<id>", 2],
                        "pixels": ["<id>", 0], "mask": ["<id>", 0]},  # when that checkpoint is an
                                                                      # inpainting model
      "families": "<model input>",  # any image model family runs: the all-in-one graph is rebuilt for
                                    # the model's family (specs/families)
      "family_files": true          # also the text_encoders and vae arguments (else picked for the family)
    }

The workflow side (slots, bypasses, LoRA chaining, output prefixes) is :mod:`.workflows`; this module
adds what the caller sees. Bounds a spec leaves out come from ComfyUI's node definitions when the
arguments model is compiled (:mod:`.arguments`). Pure Python: no ComfyUI import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from .graph import (
    InpaintModel,
    Template,
    TemplateError,
    conditioning_target,
    parse_inpaint_model,
    parse_template_data,
)

Kind = Literal[
    "text",
    "int",
    "float",
    "bool",
    "seed",
    "model",
    "choice",
    "sampler",
    "scheduler",
    "image",
    "images",
    "mask",
    "loras",
    "controlnets",
]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
LimitName = Literal["side", "steps", "batch", "prompt"]
LIMITS: tuple[str, ...] = LimitName.__args__  # type: ignore[attr-defined]

# The workflow slot type each kind fills (loras and controlnets fill no slot: they are chained into the
# graph).
SLOT_TYPES: dict[str, str] = {
    "text": "string",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "seed": "int",
    "model": "string",
    "choice": "string",
    "sampler": "string",
    "scheduler": "string",
    "image": "string",
    "images": "string",
    "mask": "string",
}
TOOL_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
ARGUMENT_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# What the known saving nodes write (custom nodes may write anything: then every suffix is allowed).
OUTPUT_KINDS: dict[str, str] = {
    "SaveImage": "image",
    "PreviewImage": "image",
    "SaveAnimatedWEBP": "animation",
    "SaveAnimatedPNG": "animation",
    "SaveWEBM": "video",
    "SaveVideo": "video",
}
CHAINED_KINDS = frozenset({"loras", "controlnets"})  # no slot: added to the graph by link
RESERVED_ARGUMENTS = frozenset({"output_path", "overwrite"})  # every tool with outputs has them
# The names a job's result uses for itself (delivery.result.JobResult): no published argument takes one.
RESULT_FIELDS = frozenset(
    {"job_id", "prompt_ids", "state", "images", "timings", "arguments", "save_error", "contact_sheet"}
    | {"files_omitted"}
)


class SpecError(ValueError):
    """A tool spec is broken; the message says where and what."""


@dataclass(frozen=True)
class InputSpec:
    """One argument of a tool."""

    name: str
    kind: str
    slot: str | None  # the workflow slot it fills (None for loras)
    required: bool = False
    nullable: bool = False  # may be omitted/None: the workflow's bypasses or the pipeline decide then
    default: Any = None
    has_default: bool = False
    default_from: str | None = None  # a field of params.Defaults that overrides ``default``
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    limit: str | None = None
    folder: str | None = None  # model folder of a "model" input
    description: str = ""
    conditioning: str | None = None  # controlnets: the node whose positive/negative links they steer
    source: str | None = None  # mask: the image input it masks


@dataclass(frozen=True)
class Check:
    """A rule over several arguments: ``pixels`` (width x height x batch within the side and pixel
    caps, with the size of ``source``'s image when width/height are omitted), ``together`` (all or none
    given), ``any`` (at least one given and not zero/empty), ``canvas`` (``source``'s image grown by the
    first two inputs in width and the last two in height stays within the side and pixel caps),
    ``output`` (the result is ``source``'s image, times the scale of the upscale model input ``scale``:
    within the side and pixel caps) or ``video`` (frames x width x height within the video budget: the
    inputs [width, height, frames], or the frames of the ``images`` input ``source``, sized as the first).
    Every one is checked before anything is queued; those over an image as it is read, before staging."""

    rule: str
    inputs: tuple[str, ...]
    source: str | None = None
    message: str = ""
    scale: str | None = None


@dataclass(frozen=True)
class InpaintSwitch:
    """When the checkpoint of input ``model`` is an inpainting model, build with ``graph``."""

    model: str
    graph: InpaintModel


@dataclass(frozen=True)
class ToolSpec:
    """A tool: its name and words, its arguments, and the workflow that does the work."""

    name: str
    title: str
    description: str
    template: Template
    inputs: tuple[InputSpec, ...]
    checks: tuple[Check, ...] = ()
    inpaint_model: InpaintSwitch | None = None
    families: str | None = None  # the model input whose file's family decides the graph
    family_files: bool = False  # takes text_encoders and vae

    @property
    def output_kinds(self) -> frozenset[str] | None:
        """What the output nodes make ("image", "animation", "video"); None when one is not known."""
        kinds = [OUTPUT_KINDS.get(self.template.prompt[n]["class_type"]) for n in self.template.save_nodes]
        return None if None in kinds else frozenset(k for k in kinds if k)

    def input(self, name: str) -> InputSpec | None:
        return next((i for i in self.inputs if i.name == name), None)

    def of_kind(self, *kinds: str) -> list[InputSpec]:
        return [i for i in self.inputs if i.kind in kinds]


def parse_spec(name: str, data: Mapping[str, Any]) -> ToolSpec:
    """Validate a spec (a workflow dict with a ``_bridge`` entry); raise :class:`SpecError`."""
    meta = data.get("_bridge")
    if not isinstance(meta, dict):
        raise SpecError("missing the '_bridge' object that declares the tool")
    raw_inputs = meta.get("inputs")
    if not isinstance(raw_inputs, dict) or not raw_inputs:
        raise SpecError("'inputs' must be a non-empty object of {argument: {kind, ...}}")
    slots = dict(meta.get("slots") or {})
    if not isinstance(meta.get("slots", {}), dict):
        raise SpecError("'slots' must be an object")
    for arg, raw in raw_inputs.items():
        chained = isinstance(raw, dict) and raw.get("kind") in CHAINED_KINDS
        if isinstance(raw, dict) and "node" in raw and not chained:  # naming its node declares its slot
            kind = raw.get("kind")
            if arg in slots:
                raise SpecError(f"input {arg!r}: names a node and is also a slot")
            slots[arg] = {
                "node": raw.get("node"),
                "input": raw.get("input"),
                "type": SLOT_TYPES.get(kind if isinstance(kind, str) else "", "string"),
                "required": bool(raw.get("required", False)),
            }
    workflow = {**data, "_bridge": {**meta, "slots": slots}}
    try:
        template = parse_template_data(name, workflow)
    except TemplateError as exc:
        raise SpecError(str(exc)) from None

    tool = meta.get("tool", name)
    if not isinstance(tool, str) or not TOOL_NAME_RE.fullmatch(tool):
        raise SpecError(
            "'tool' must be a name of letters, digits, '_' and '-' (at most 64), starting with a letter"
        )
    description = meta.get("description", "")
    title = meta.get("title", tool)
    if not isinstance(description, str) or not description.strip():
        raise SpecError("'description' must say what the tool does")
    if not isinstance(title, str):
        raise SpecError("'title' must be a string")
    inputs = tuple(_parse_input(arg, raw, template) for arg, raw in raw_inputs.items())
    used = [i.slot for i in inputs if i.slot]
    if len(used) != len(set(used)):
        raise SpecError("two inputs fill the same slot")
    if any(i.kind == "loras" for i in inputs) and not template.supports_loras:
        raise SpecError("a 'loras' input needs exactly one CheckpointLoaderSimple in the workflow")
    graph_kinds = [i.kind for i in inputs if i.kind in CHAINED_KINDS]
    if len(graph_kinds) > len(set(graph_kinds)):
        raise SpecError("a spec takes at most one 'loras' and one 'controlnets' input")
    names = {i.name for i in inputs}
    for item in inputs:
        if item.kind == "mask" and item.source is not None and item.source not in names:
            raise SpecError(f"input {item.name!r}: 'source' names no input {item.source!r}")
    checks = tuple(_parse_check(raw, names) for raw in meta.get("checks", []))
    for check in checks:
        if check.scale and not any(i.name == check.scale and i.kind == "model" for i in inputs):
            raise SpecError(f"check {check.rule!r}: 'scale' must name a model input (the upscale model)")
    inpaint = _parse_inpaint(meta["inpaint_model"], inputs, template) if "inpaint_model" in meta else None
    families = meta.get("families")
    if families is not None:
        if not any(i.name == families and i.kind == "model" and i.folder == "checkpoints" for i in inputs):
            raise SpecError("'families' must name the spec's checkpoints model input")
        if not template.supports_loras:  # exactly one CheckpointLoaderSimple: the graph families rebuild
            raise SpecError("'families' needs exactly one CheckpointLoaderSimple in the workflow")
    family_files = meta.get("family_files", False)
    if family_files is not False and (family_files is not True or families is None):
        raise SpecError("'family_files' is true or false, with 'families'")
    if family_files and {"text_encoders", "vae"} & {i.name for i in inputs}:
        raise SpecError("'family_files' adds the text_encoders and vae arguments itself")
    return ToolSpec(tool, title, description, template, inputs, checks, inpaint, families, family_files)


def _parse_inpaint(raw: object, inputs: tuple[InputSpec, ...], template: Template) -> InpaintSwitch:
    raw = raw if isinstance(raw, dict) else {}
    model = raw.get("model")
    if not any(i.name == model and i.kind == "model" and i.folder == "checkpoints" for i in inputs):
        raise SpecError("'inpaint_model': 'model' must name the spec's checkpoints model input")
    try:
        graph = parse_inpaint_model(template, {k: v for k, v in raw.items() if k != "model"})
    except TemplateError as exc:
        raise SpecError(f"'inpaint_model': {exc}") from None
    return InpaintSwitch(str(model), graph)


def _parse_input(arg: str, raw: object, template: Template) -> InputSpec:
    where = f"input {arg!r}"
    if not ARGUMENT_RE.fullmatch(arg) or arg in RESERVED_ARGUMENTS:
        raise SpecError(
            f"{where}: argument names are lower-case identifiers other than output_path/overwrite"
        )
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be an object")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise SpecError(f"{where}: 'kind' must be one of {', '.join(KINDS)}")
    slot: str | None = None
    if kind not in CHAINED_KINDS:
        slot = raw.get("slot", arg)
        if slot not in template.slots:
            raise SpecError(f"{where}: no slot {slot!r} in the workflow (give node and input)")
    limit = raw.get("limit")
    if limit is not None and limit not in LIMITS:
        raise SpecError(f"{where}: 'limit' must be one of {', '.join(LIMITS)}")
    folder = raw.get("folder")
    if kind == "model" and not (isinstance(folder, str) and folder):
        raise SpecError(f"{where}: a model input names its model 'folder' (checkpoints, loras, ...)")
    numbers = {}
    for key in ("min", "max", "step"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SpecError(f"{where}: {key!r} must be a number")
        numbers[key] = cast("float | None", value)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"{where}: 'description' must be a string")
    default_from = raw.get("default_from")
    if default_from is not None and not isinstance(default_from, str):
        raise SpecError(f"{where}: 'default_from' must name a generation default")
    conditioning = None
    if kind == "controlnets":
        try:
            conditioning = conditioning_target(template, raw.get("conditioning"))
        except TemplateError as exc:
            raise SpecError(f"{where}: 'conditioning' must name the node they steer: {exc}") from None
    source = raw.get("source")
    if source is not None and (kind != "mask" or not isinstance(source, str)):
        raise SpecError(f"{where}: only a mask input has a 'source' (the name of the image input it masks)")
    return InputSpec(
        name=arg,
        kind=kind,
        slot=slot,
        required=bool(raw.get("required", False)),
        nullable=bool(raw.get("nullable", False)),
        default=raw.get("default"),
        has_default="default" in raw,
        default_from=default_from,
        minimum=numbers["min"],
        maximum=numbers["max"],
        step=numbers["step"],
        limit=limit,
        folder=folder if kind == "model" else None,
        description=description,
        conditioning=conditioning,
        source=source,
    )


def _parse_check(raw: object, names: set[str]) -> Check:
    if isinstance(raw, dict) and isinstance(raw.get("pixels"), list):
        inputs, rule = tuple(raw["pixels"]), "pixels"
        if len(inputs) not in (2, 3):
            raise SpecError("check 'pixels' takes [width, height] or [width, height, batch]")
    elif isinstance(raw, dict) and isinstance(raw.get("together"), list):
        inputs, rule = tuple(raw["together"]), "together"
    elif isinstance(raw, dict) and isinstance(raw.get("any"), list) and raw["any"]:
        inputs, rule = tuple(raw["any"]), "any"
    elif isinstance(raw, dict) and isinstance(raw.get("canvas"), list):
        inputs, rule = tuple(raw["canvas"]), "canvas"
        if len(inputs) != 4 or not raw.get("source"):
            raise SpecError("check 'canvas' takes [left, right, top, bottom] and a 'source' image input")
    elif isinstance(raw, dict) and isinstance(raw.get("output"), str):
        inputs, rule = (), "output"
        raw = {**raw, "source": raw["output"]}
    elif isinstance(raw, dict) and isinstance(raw.get("video"), list):
        inputs, rule = tuple(raw["video"]), "video"
        if not (len(inputs) == 3 or (not inputs and raw.get("source"))):
            raise SpecError("check 'video' takes [width, height, frames], or [] and a 'source' images input")
    else:
        raise SpecError(
            "a check is {'pixels': [...]}, {'together': [...]}, {'any': [...]}, {'canvas': [...]}, "
            "{'output': '<image input>'} or {'video': [...]}"
        )
    source, scale = raw.get("source"), raw.get("scale")
    named = (*inputs, *([source] if source else []), *([scale] if scale else []))
    unknown = [n for n in named if n not in names]
    if unknown:
        raise SpecError(f"check {rule!r} names unknown inputs {', '.join(map(str, unknown))}")
    message = raw.get("message", "")
    return Check(rule, tuple(str(n) for n in inputs), source, str(message), str(scale) if scale else None)
