"""Limits, defaults and shared checks of the generation tools' arguments.

Pure Python (pydantic v2, no ComfyUI import): the limits and defaults that tool specs are compiled
with (:mod:`.arguments` builds each tool's strict model), and the checks they share — text, LoRA
lists, installed names, seeds — with compact error messages.

Text limits are in bytes of UTF-8 (what memory, logs and the tokenizer pay for), so a prompt of
16384 ASCII characters fits, one of 16384 emoji does not; the schema's ``maxLength`` states the same
number as an upper bound in characters.
"""

from __future__ import annotations

import difflib
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_SEED = 2**64 - 1
RANDOM_SEED_BOUND = 2**53  # random seeds stay exact in JavaScript clients
NAME_MAX_CHARS = 512
MAX_CONTROLNETS = 4  # ControlNets per call (each loads a model and stages a control image)
PATH_MAX_CHARS = 1024

NameKind = Literal["model", "lora", "sampler", "scheduler", "upscale_model", "controlnet", "preprocessor"]
_KIND_LABELS: dict[str, tuple[str, str, str]] = {  # singular, plural, list tool
    "model": ("model", "models", "list_models"),
    "lora": ("LoRA", "LoRAs", "list_loras"),
    "sampler": ("sampler", "samplers", "list_samplers"),
    "scheduler": ("scheduler", "schedulers", "list_schedulers"),
    "upscale_model": ("upscale model", "upscale models", "list_upscale_models"),
    "controlnet": ("ControlNet model", "ControlNet models", "list_controlnets"),
    "preprocessor": ("ControlNet preprocessor", "ControlNet preprocessors", "list_controlnets"),
}


class ParamRejected(ValueError):
    """A parameter is valid in form but not usable; the message tells the caller what to do."""


class UnknownName(ParamRejected):
    """A model, LoRA, sampler, scheduler or upscale model name that is not installed."""

    def __init__(self, kind: str, name: str, closest: list[str], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.closest = closest


@dataclass(frozen=True)
class Limits:
    """Caps on generation parameters (far below ComfyUI's own); wire these to settings."""

    max_side: int = 2048  # width and height, pixels
    max_pixels: int = 2048 * 2048  # width x height x batch_size
    max_steps: int = 150
    max_batch: int = 8
    max_loras: int = 8
    max_prompt_bytes: int = 16 * 1024  # UTF-8 bytes, for prompt and negative_prompt each
    max_input_image_bytes: int = 8 * 1024 * 1024  # decoded size of an inline (base64) image
    max_frames: int = 64  # images of one ``images`` input (frames of a video)
    max_video_pixels: int = 2**27  # frames x width x height of one video

    def __post_init__(self) -> None:
        if not 64 <= self.max_side <= 16384 or self.max_side % 8:
            raise ValueError("max_side must be a multiple of 8 in 64..16384")
        if self.max_pixels < 64 * 64:
            raise ValueError("max_pixels must be at least 64*64")
        if self.max_video_pixels < 64 * 64:
            raise ValueError("max_video_pixels must be at least 64*64")
        for name in ("max_steps", "max_batch", "max_prompt_bytes", "max_input_image_bytes", "max_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.max_loras < 0:
            raise ValueError("max_loras must not be negative")

    @property
    def max_input_image_chars(self) -> int:
        """Longest ``input_image`` string: base64 of the byte cap plus line breaks and a data-URI head."""
        b64 = 4 * math.ceil(self.max_input_image_bytes / 3)
        return b64 + b64 // 38 + 256

    def check_pixels(self, width: int, height: int, batch_size: int = 1) -> None:
        """Raise :class:`ParamRejected` when ``width*height*batch_size`` is over the pixel budget."""
        if width * height * batch_size > self.max_pixels:
            raise ParamRejected(
                f"{width}x{height} x {batch_size} image(s) is {width * height * batch_size} pixels, over "
                f"the budget of {self.max_pixels} (for example {_square(self.max_pixels)}); use a smaller "
                "size or batch_size"
            )

    def check_size(self, width: int, height: int, batch_size: int = 1, *, what: str = "the result") -> None:
        """Raise :class:`ParamRejected` when ``what`` (``width`` x ``height``, ``batch_size`` times) is
        over the largest side or the pixel budget; the message has the numbers."""
        if max(width, height) > self.max_side:
            raise ParamRejected(
                f"{what} would be {width}x{height}, over the largest side of {self.max_side} pixels "
                "(max_side); use a smaller image or size"
            )
        self.check_pixels(width, height, batch_size)

    def check_video(self, width: int, height: int, frames: int, *, what: str = "the video") -> None:
        """Raise :class:`ParamRejected` when a video of ``frames`` frames of ``width`` x ``height`` is
        over the largest side or the video budget (frames x width x height)."""
        if max(width, height) > self.max_side:
            raise ParamRejected(
                f"{what} would have frames of {width}x{height}, over the largest side of {self.max_side} "
                "pixels (max_side); use smaller frames"
            )
        total = width * height * frames
        if total > self.max_video_pixels:
            raise ParamRejected(
                f"{what} would be {frames} frames of {width}x{height} = {total} pixels, over the video "
                f"budget of {self.max_video_pixels} (max_video_pixels, e.g. "
                f"{self.max_video_pixels // (width * height)} frames at this size); use fewer frames or a "
                "smaller size"
            )


def _square(pixels: int) -> str:
    side = int(math.isqrt(pixels)) // 8 * 8
    return f"{side}x{side}"


@dataclass(frozen=True)
class Defaults:
    """Defaults advertised in the schemas (the seed tutorial's)."""

    width: int = 512
    height: int = 768
    steps: int = 28
    cfg_scale: float = 7.0
    sampler: str = "euler_ancestral"
    scheduler: str = "normal"
    batch_size: int = 1
    denoise: float = 0.75


DEFAULT_LIMITS = Limits()
DEFAULTS = Defaults()

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class LoraParam(BaseModel):
    """One LoRA to apply (what the fields mean is said once, on the ``loras`` argument: issue 25)."""

    model_config = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX_CHARS)]
    strength_model: Annotated[float, Field(ge=-4.0, le=4.0)] = 1.0
    strength_clip: Annotated[float, Field(ge=-4.0, le=4.0)] = 1.0


class ControlNetParam(BaseModel):
    """One ControlNet of a stack: a control image, the model, how strongly and when it steers."""

    model_config = _STRICT

    image: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1, max_length=NAME_MAX_CHARS)]
    strength: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0
    start_percent: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    end_percent: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    preprocessor: Annotated[str, Field(min_length=1, max_length=64)] = "none"

    @model_validator(mode="after")
    def _window(self) -> ControlNetParam:
        if self.start_percent > self.end_percent:
            raise ValueError("start_percent must not be after end_percent")
        return self


def unique_loras(value: list[LoraParam]) -> list[LoraParam]:
    """Refuse a LoRA list naming one file twice."""
    names = [lora.name for lora in value]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"each LoRA may be listed once; repeated: {', '.join(twice)}")
    return value


def check_defaults(limits: Limits, defaults: Defaults) -> None:
    problems = []
    for name in ("width", "height"):
        value = getattr(defaults, name)
        if not 64 <= value <= limits.max_side or value % 8:
            problems.append(f"default {name} {value} is not a multiple of 8 in 64..{limits.max_side}")
    if not 1 <= defaults.steps <= limits.max_steps:
        problems.append(f"default steps {defaults.steps} is not in 1..{limits.max_steps}")
    if not 1 <= defaults.batch_size <= limits.max_batch:
        problems.append(f"default batch_size {defaults.batch_size} is not in 1..{limits.max_batch}")
    if defaults.width * defaults.height * defaults.batch_size > limits.max_pixels:
        problems.append("the default size is over the pixel budget")
    if not 0 <= defaults.cfg_scale <= 30:
        problems.append("default cfg_scale is not in 0..30")
    if not 0 <= defaults.denoise <= 1:
        problems.append("default denoise is not in 0..1")
    if problems:
        raise ValueError("; ".join(problems))


def check_text(value: str, max_bytes: int) -> str:
    """Refuse text over ``max_bytes`` of UTF-8, unpaired surrogates and control characters.

    Tabs and line breaks are fine; NUL, escape sequences and other C0/C1 controls are not.
    """
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("text contains an unpaired surrogate (invalid Unicode)") from None
    if size > max_bytes:
        raise ValueError(f"text is {size} bytes of UTF-8; at most {max_bytes} are allowed")
    for char in value:
        code = ord(char)
        if (code < 0x20 and char not in "\t\n\r") or 0x7F <= code <= 0x9F:
            raise ValueError(f"text contains control character U+{code:04X}; remove it")
    return value


def random_seed() -> int:
    """A fresh random seed below 2**53, so clients written in JavaScript report it exactly."""
    return secrets.randbelow(RANDOM_SEED_BOUND)


def resolve_seed(seed: int | None) -> int:
    """The caller's seed, or a random one when it gave none."""
    return random_seed() if seed is None else seed


def closest_names(name: str, valid: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` entries of ``valid`` most like ``name`` (case, folders and extensions ignored)."""
    wanted = _stem(name[:256])
    if not wanted:
        return []
    scored = []
    for candidate in valid:
        stem = _stem(candidate)
        score = difflib.SequenceMatcher(None, wanted, stem).ratio()
        if wanted in stem or stem in wanted:
            score = max(score, 0.75)
        if score >= 0.5:
            scored.append((-score, candidate))
    scored.sort()
    return [candidate for _, candidate in scored[:n]]


def _stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    head, dot, ext = base.rpartition(".")
    return head if dot and head and len(ext) <= 12 else base


def check_name(kind: NameKind, name: str, valid: Sequence[str]) -> str:
    """Return the entry of ``valid`` equal to ``name``, else raise :class:`UnknownName` with suggestions.

    The returned string is the list's own object (never the caller's text).
    """
    for entry in valid:
        if entry == name:
            return entry
    one, many, tool = _KIND_LABELS[kind]
    shown = _show(name)
    if not valid:
        raise UnknownName(kind, name, [], f"unknown {one} {shown}: no {many} are installed")
    closest = closest_names(name, valid)
    if closest:
        hint = "closest: " + ", ".join(closest)
    else:
        hint = "no installed name is similar"
    raise UnknownName(kind, name, closest, f"unknown {one} {shown}; {hint}; call {tool} to see all")


def _show(text: str, limit: int = 80) -> str:
    """Caller text for a message: quoted, escaped, cut to ``limit`` characters."""
    cut = text[:limit]
    shown = repr(cut)
    return shown[:-1] + "...'" if len(text) > limit else shown


def explain(error: ValidationError) -> str:
    """One compact, actionable line per problem in ``error`` (no long echoes of the input)."""
    lines = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        if item["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown field")
            continue
        if item["type"] == "missing":
            lines.append(f"{where}: required")
            continue
        message = str(item["msg"]).removeprefix("Value error, ")
        value = item.get("input")
        if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 40):
            message += f" (got {value!r})"
        elif value is not None and not isinstance(value, str | dict):
            message += f" (got {type(value).__name__})"
        lines.append(f"{where}: {message}")
    return "; ".join(lines)
