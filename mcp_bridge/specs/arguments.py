"""Compile a tool spec into the strict pydantic model of its arguments.

One definition per tool: the advertised JSON Schema, the validation and the error messages all come
from the spec (:mod:`.specs`), the configured :class:`~.params.Limits` and :class:`~.params.Defaults`,
and — for bounds and choices the spec leaves out — ComfyUI's own node definitions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    model_validator,
)

from ..comfyui.backend import NodeInput
from .params import (
    MAX_CONTROLNETS,
    MAX_SEED,
    NAME_MAX_CHARS,
    PATH_MAX_CHARS,
    ControlNetParam,
    Defaults,
    Limits,
    LoraParam,
    ParamRejected,
    check_text,
    unique_loras,
)
from .spec import InputSpec, ToolSpec
from .wording import shared

NodeInputs = Callable[[str], "Mapping[str, NodeInput] | None"]
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

_OUTPUT_PATH = Field(
    min_length=1,
    max_length=PATH_MAX_CHARS,
    description="Also write the file here (.png, .jpg, .jpeg, .webp), inside an allowed folder; relative "
    "to the client's first root. Several images add _1, _2, ...",
)
_OVERWRITE = Field(description="Replace an existing output_path.")
_NAME = Field(min_length=1, max_length=128)
_TEXT_ENCODERS = Field(max_length=4)
# Plain schemas for tools/list (file names, at most 4; validated by the field): lean drops the null.
_FILES = WithJsonSchema({"anyOf": [{"type": "array"}, {"type": "null"}]})
_FILE = WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "null"}]})
# Kinds whose slot value the pipeline works out (a default model, a random seed, a staged file).
RESOLVED_KINDS = frozenset({"model", "seed", "image", "images", "mask"})


class ToolArguments(BaseModel):
    """Base of every compiled arguments model; ``spec`` and ``limits`` are what it was built from."""

    model_config = STRICT
    spec: ClassVar[ToolSpec]
    limits: ClassVar[Limits]

    @property
    def destination(self) -> tuple[str | None, bool]:
        """``output_path`` and ``overwrite`` (every compiled model has both, after the spec's inputs)."""
        return getattr(self, "output_path", None), bool(getattr(self, "overwrite", False))

    def slot_values(self) -> dict[str, Any]:
        """The caller's values keyed by workflow slot, for the inputs the pipeline passes through."""
        return {
            i.slot: getattr(self, i.name)
            for i in type(self).spec.inputs
            if i.slot is not None and i.kind not in RESOLVED_KINDS
        }

    @model_validator(mode="after")
    def _checks(self) -> ToolArguments:
        for check in type(self).spec.checks:
            values = [getattr(self, name) for name in check.inputs]
            if check.rule == "together" and len({v is None for v in values}) > 1:
                raise ValueError(check.message or f"give {', '.join(check.inputs)} together, or none of them")
            if check.rule == "any" and not any(values):
                raise ValueError(check.message or f"give at least one of {', '.join(check.inputs)}")
            if check.rule == "pixels" and all(v is not None for v in values):
                budget(type(self).limits, *values)
            if check.rule == "video" and values and all(v is not None for v in values):
                try:
                    type(self).limits.check_video(*values)
                except ParamRejected as exc:
                    raise ValueError(str(exc)) from None
        return self


def _control_images(value: list[ControlNetParam], cap: int) -> list[ControlNetParam]:
    for position, item in enumerate(value, 1):
        if len(item.image) > cap:
            raise ValueError(f"controlnets[{position}].image is longer than {cap} characters")
    return value


def budget(limits: Limits, width: int, height: int, batch: int = 1) -> None:
    """The pixel budget as a validation error (inside a model) — see :meth:`Limits.check_pixels`."""
    try:
        limits.check_pixels(width, height, batch)
    except ParamRejected as exc:
        raise ValueError(str(exc)) from None


def compile_arguments(
    spec: ToolSpec,
    limits: Limits,
    defaults: Defaults,
    node_inputs: NodeInputs | None = None,
) -> type[ToolArguments]:
    """The arguments model of ``spec`` (raises ValueError when a default is outside its own bounds)."""
    fields: dict[str, Any] = {}
    for item in spec.inputs:
        node = _node_input(spec, item, node_inputs)
        fields[item.name] = _field(spec, item, node, limits, defaults)
    if spec.family_files:
        fields["text_encoders"] = (
            Annotated[list[Annotated[str, _NAME]] | None, _TEXT_ENCODERS, _FILES],
            None,
        )
        fields["vae"] = (Annotated[str | None, _NAME, _FILE], None)
    fields["output_path"] = (Annotated[str | None, _OUTPUT_PATH], None)
    fields["overwrite"] = (Annotated[bool, _OVERWRITE], False)
    name = "".join(part.capitalize() for part in spec.name.replace("-", "_").split("_")) + "Arguments"
    model = create_model(name, __base__=ToolArguments, __doc__=f"Arguments of {spec.name}.", **fields)
    model.spec = spec
    model.limits = limits
    return model


def _node_input(spec: ToolSpec, item: InputSpec, node_inputs: NodeInputs | None) -> NodeInput | None:
    if node_inputs is None or item.slot is None:
        return None
    slot = spec.template.slots[item.slot]
    declared = node_inputs(spec.template.prompt[slot.node]["class_type"])
    return (declared or {}).get(slot.input)


def _field(
    spec: ToolSpec, item: InputSpec, node: NodeInput | None, limits: Limits, defaults: Defaults
) -> tuple[Any, Any]:
    words = _describe(item.description or shared(item.name, item.kind, item.folder), limits)
    kind = item.kind
    if kind == "loras":
        field = Field(max_length=limits.max_loras, description=words)
        return Annotated[list[LoraParam], field, AfterValidator(unique_loras)], []
    if kind == "controlnets":
        field = Field(max_length=MAX_CONTROLNETS, description=words)
        cap = limits.max_input_image_chars
        check = AfterValidator(lambda v, cap=cap: _control_images(v, cap))
        return Annotated[list[ControlNetParam], field, check], []
    if kind == "seed":
        return Annotated[int | None, Field(ge=0, le=MAX_SEED, description=words)], None
    if kind in ("image", "mask"):
        field = Field(min_length=1, max_length=limits.max_input_image_chars, description=words)
        return _typed(str, [field], item, _NONE)
    if kind == "images":
        image = Annotated[str, Field(min_length=1, max_length=limits.max_input_image_chars)]
        field = Field(min_length=1, max_length=limits.max_frames, description=words)
        return _typed(list[image], [field], item, _NONE)
    if kind == "model":
        field = Field(min_length=1, max_length=NAME_MAX_CHARS, description=words)
        return _typed(str, [field], item, _NONE)
    default = _default(item, spec, defaults)
    if kind == "text":
        cap = limits.max_prompt_bytes
        field = Field(min_length=1 if item.required else 0, max_length=cap, description=words)
        return _typed(str, [field, AfterValidator(lambda v, cap=cap: check_text(v, cap))], item, default)
    if kind in ("sampler", "scheduler"):
        return _typed(str, [Field(min_length=1, max_length=128, description=words)], item, default)
    if kind == "choice":
        options = node.options if node else ()
        base: Any = Literal.__getitem__(options) if options else str
        return _typed(base, [Field(description=words)], item, default)
    if kind == "bool":
        return _typed(bool, [Field(description=words)], item, default)
    low, high, step = _bounds(item, node, limits)
    if kind == "int":
        multiple = int(step) if step and step > 1 and float(step).is_integer() else None
        field = Field(ge=_int(low), le=_int(high), multiple_of=multiple, description=words)
        return _typed(int, [field], item, default)
    return _typed(float, [Field(ge=low, le=high, description=words)], item, default)


def _typed(base: Any, metadata: list[Any], item: InputSpec, default: Any) -> tuple[Any, Any]:
    """The annotation and default of one field: required, nullable (None when omitted) or defaulted."""
    if item.required:
        return Annotated.__class_getitem__((base, *metadata)), ...  # type: ignore[attr-defined]
    if item.nullable or default is _NONE:
        return Annotated.__class_getitem__((base | None, *metadata)), None  # type: ignore[attr-defined]
    return Annotated.__class_getitem__((base, *metadata)), default  # type: ignore[attr-defined]


_NONE = object()  # no default anywhere: the argument may be omitted (None)


def _default(item: InputSpec, spec: ToolSpec, defaults: Defaults) -> Any:
    # The configured default, else the spec's, else the workflow's own value in the slot.
    if item.required or item.nullable:
        return _NONE
    if item.default_from is not None:
        if not hasattr(defaults, item.default_from):
            raise ValueError(f"{spec.name}.{item.name}: there is no generation default {item.default_from!r}")
        return getattr(defaults, item.default_from)
    if item.has_default:
        return item.default
    if item.slot is None:
        return _NONE
    slot = spec.template.slots[item.slot]
    return spec.template.prompt[slot.node]["inputs"][slot.input]


def _bounds(item: InputSpec, node: NodeInput | None, limits: Limits) -> tuple[Any, Any, Any]:
    # The spec's bounds, narrowed by the configured limit and by what the node itself accepts.
    cap = {"side": limits.max_side, "steps": limits.max_steps, "batch": limits.max_batch}.get(
        item.limit or ""
    )
    low = item.minimum
    high = item.maximum if item.maximum is not None else cap
    if cap is not None and high is not None:
        high = min(high, cap)
    if node is not None:
        if node.minimum is not None:
            low = node.minimum if low is None else max(low, node.minimum)
        if node.maximum is not None:
            high = node.maximum if high is None else min(high, node.maximum)
    step = item.step if item.step is not None else (node.step if node else None)
    return low, high, step


def _int(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    return int(value)


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _describe(text: str, limits: Limits) -> str:
    """A spec's description with the configured limits filled in (``{max_side}`` and the like)."""
    values = _Blank(
        max_side=str(limits.max_side),
        max_pixels=str(limits.max_pixels),
        max_steps=str(limits.max_steps),
        max_batch=str(limits.max_batch),
        max_loras=str(limits.max_loras),
        max_controlnets=str(MAX_CONTROLNETS),
        max_frames=str(limits.max_frames),
        max_prompt_bytes=str(limits.max_prompt_bytes),
        max_input_image_mib=str(limits.max_input_image_bytes // (1024 * 1024)),
    )
    try:
        return text.format_map(values)
    except (ValueError, IndexError):  # braces that are not placeholders: keep the text as written
        return text
