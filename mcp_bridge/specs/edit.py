"""Edit by instruction: the edit modes of the image model families, declared as data, and their graphs.

One JSON file per edit mode in ``workflows/edit/`` (see README, "Editing images")::

    {"edit": "flux1_kontext", "title": "FLUX.1 Kontext [dev]",
     "base": "flux1_dev",                # the model family (workflows/families) whose loaders it uses
     "names": "kontext",                 # regex on the lower-cased file name that tells it from its base
     "install": "flux1-dev-kontext_fp8_scaled.safetensors",
     "references": 3,                    # reference images besides the input (0: none)
     "scale": "FluxKontextImageScale",   # or "ImageScaleToTotalPixels" (1 megapixel): each image first
     "conditioning": "reference_latents",  # or "qwen_edit" / "qwen_edit_plus" (the text encoder takes
                                           # the images)
     "guidance": 2.5,                    # FluxGuidance on the positive (the caller's "guidance")
     "cfg": 1.0,                         # the sampler's cfg; "cfg_scale" of the caller when "cfg_knob"
     "cfg_knob": false,
     "shift": 3.0,                       # ModelSamplingAuraFlow (the caller's "shift")
     "cfg_norm": 1.0,                    # CFGNorm strength
     "sampler": "ksampler",              # or "custom" (RandomNoise, BasicGuider, Flux2Scheduler, ...)
     "latent": "EmptySD3LatentImage",    # or "EmptyFlux2LatentImage"
     "pixels": 1048576, "multiple": 16,  # the output: the input's aspect at this budget, this step
     "defaults": {"steps": 20, "sampler": "euler", "scheduler": "simple"},
     "requires": ["TextEncodeQwenImageEditPlus"]}   # optional: more nodes it needs

The header cannot tell an edit model from its base (Kontext is a Flux.1 dev inside, Qwen-Image-Edit a
Qwen-Image): ``names`` or the caller's ``family`` decide. Pure Python: no ComfyUI import.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("comfyui_mcp_bridge")

Prompt = dict[str, dict[str, Any]]
SCALES = ("FluxKontextImageScale", "ImageScaleToTotalPixels")
CONDITIONINGS = ("reference_latents", "qwen_edit", "qwen_edit_plus")
SAMPLERS = ("ksampler", "custom")
LATENTS = ("EmptySD3LatentImage", "EmptyFlux2LatentImage")
QWEN_NODES = {"qwen_edit": "TextEncodeQwenImageEdit", "qwen_edit_plus": "TextEncodeQwenImageEditPlus"}
CUSTOM_NODES = ("RandomNoise", "KSamplerSelect", "Flux2Scheduler", "BasicGuider", "SamplerCustomAdvanced")


class EditError(ValueError):
    """An edit declaration is broken."""


@dataclass(frozen=True)
class EditMode:
    """One family's edit mode: how its model files are told apart, what it takes, how its graph goes."""

    id: str
    title: str
    base: str
    names: re.Pattern[str]
    install: str
    references: int
    scale: str
    conditioning: str
    sampler: str
    latent: str
    pixels: int
    multiple: int
    guidance: float | None = None
    cfg: float = 1.0
    cfg_knob: bool = False
    shift: float | None = None
    cfg_norm: float | None = None
    steps: int = 20
    sampler_name: str = "euler"
    scheduler: str = "simple"
    requires: tuple[str, ...] = ()

    def nodes(self) -> set[str]:
        """Every node class the edit graph uses (the loaders come from the base family)."""
        found = {"LoadImage", self.scale, self.latent, "VAEDecode", "SaveImage", *self.requires}
        if self.conditioning == "reference_latents":
            found |= {"CLIPTextEncode", "ReferenceLatent", "VAEEncode"}
            if self.sampler == "ksampler":
                found.add("ConditioningZeroOut")
        else:
            found.add(QWEN_NODES[self.conditioning])
        if self.guidance is not None:
            found.add("FluxGuidance")
        if self.shift is not None:
            found.add("ModelSamplingAuraFlow")
        if self.cfg_norm is not None:
            found.add("CFGNorm")
        found |= {"KSampler"} if self.sampler == "ksampler" else set(CUSTOM_NODES)
        return found

    def knobs(self) -> list[str]:
        """The family's own arguments besides the common ones."""
        return [
            name
            for name, present in (
                ("guidance", self.guidance is not None),
                ("cfg_scale", self.cfg_knob),
                ("shift", self.shift is not None),
            )
            if present
        ]

    def fits_name(self, file_name: str) -> bool:
        return self.names.search(file_name.rsplit("/", 1)[-1].lower()) is not None


@dataclass(frozen=True)
class Loaders:
    """The files one edit runs with: the diffusion model, the text encoders and their loader, the VAE."""

    model: str
    clip_class: str  # CLIPLoader or DualCLIPLoader (from the base family)
    clip_type: str | None
    encoders: tuple[str, ...]
    vae: str


@dataclass(frozen=True)
class EditValues:
    """One call's values: staged image names (ComfyUI's input folder), the instruction, the knobs."""

    image: str
    references: tuple[str, ...]
    instruction: str
    seed: int
    steps: int
    width: int
    height: int
    filename_prefix: str
    guidance: float | None = None
    cfg_scale: float | None = None
    shift: float | None = None


@dataclass
class _Graph:
    prompt: Prompt = field(default_factory=dict)

    def add(self, class_type: str, **inputs: Any) -> list[Any]:
        """Add a node; return the link to its output 0."""
        node_id = str(len(self.prompt) + 1)
        self.prompt[node_id] = {"class_type": class_type, "inputs": inputs}
        return [node_id, 0]


def build_edit_prompt(mode: EditMode, loaders: Loaders, values: EditValues) -> Prompt:
    """The API prompt of one edit (pure). Raises :class:`ValueError` for more references than the mode
    takes (callers check first, with a friendlier message)."""
    if len(values.references) > mode.references:
        raise ValueError(f"{mode.title} takes at most {mode.references} reference images")
    g = _Graph()
    model = g.add("UNETLoader", unet_name=loaders.model, weight_dtype="default")
    clip = _clip(g, loaders)
    vae = g.add("VAELoader", vae_name=loaders.vae)
    if mode.shift is not None:
        shift = values.shift if values.shift is not None else mode.shift
        model = g.add("ModelSamplingAuraFlow", model=model, shift=shift)
    if mode.cfg_norm is not None:
        model = g.add("CFGNorm", model=model, strength=mode.cfg_norm)
    images = [_scaled(g, mode, name) for name in (values.image, *values.references)]
    positive, negative = _conditioning(g, mode, clip, vae, images, values)
    size = {"width": values.width, "height": values.height, "batch_size": 1}
    latent = g.add(mode.latent, **size)
    if mode.sampler == "ksampler":
        cfg = values.cfg_scale if mode.cfg_knob and values.cfg_scale is not None else mode.cfg
        samples = g.add(
            "KSampler", model=model, seed=values.seed, steps=values.steps, cfg=cfg,
            sampler_name=mode.sampler_name, scheduler=mode.scheduler, positive=positive, negative=negative,
            latent_image=latent, denoise=1.0,
        )  # fmt: skip
    else:
        samples = g.add(
            "SamplerCustomAdvanced",
            noise=g.add("RandomNoise", noise_seed=values.seed),
            guider=g.add("BasicGuider", model=model, conditioning=positive),
            sampler=g.add("KSamplerSelect", sampler_name=mode.sampler_name),
            sigmas=g.add("Flux2Scheduler", steps=values.steps, width=values.width, height=values.height),
            latent_image=latent,
        )
    decoded = g.add("VAEDecode", samples=samples, vae=vae)
    g.add("SaveImage", images=decoded, filename_prefix=values.filename_prefix)
    return g.prompt


def _clip(g: _Graph, loaders: Loaders) -> list[Any]:
    names = {"clip_name": loaders.encoders[0]} if len(loaders.encoders) == 1 else {
        f"clip_name{n}": name for n, name in enumerate(loaders.encoders, 1)
    }  # fmt: skip
    typed = {"type": loaders.clip_type} if loaders.clip_type else {}
    return g.add(loaders.clip_class, **names, **typed)


def _scaled(g: _Graph, mode: EditMode, name: str) -> list[Any]:
    image = g.add("LoadImage", image=name)
    if mode.scale == "FluxKontextImageScale":
        return g.add("FluxKontextImageScale", image=image)
    return g.add("ImageScaleToTotalPixels", image=image, upscale_method="lanczos", megapixels=1.0)


def _conditioning(
    g: _Graph, mode: EditMode, clip: list[Any], vae: list[Any], images: list[list[Any]], values: EditValues
) -> tuple[list[Any], list[Any] | None]:
    """The positive (and, for a KSampler, negative) conditioning with the images as references."""
    guidance = values.guidance if values.guidance is not None else mode.guidance
    if mode.conditioning == "reference_latents":
        text = g.add("CLIPTextEncode", clip=clip, text=values.instruction)
        positive = text
        for image in images:
            positive = g.add(
                "ReferenceLatent", conditioning=positive, latent=g.add("VAEEncode", pixels=image, vae=vae)
            )
        if guidance is not None:
            positive = g.add("FluxGuidance", conditioning=positive, guidance=guidance)
        negative = g.add("ConditioningZeroOut", conditioning=text) if mode.sampler == "ksampler" else None
        return positive, negative
    node = QWEN_NODES[mode.conditioning]
    if mode.conditioning == "qwen_edit":
        slots = {"image": images[0]}
    else:
        slots = {f"image{n}": image for n, image in enumerate(images, 1)}
    positive = g.add(node, clip=clip, prompt=values.instruction, vae=vae, **slots)
    negative = g.add(node, clip=clip, prompt="", vae=vae, **slots)
    return positive, negative


def output_size(width: int, height: int, pixels: int, multiple: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled to about ``pixels``, both sides a multiple of ``multiple``."""
    scale = math.sqrt(pixels / (width * height))
    return (
        max(multiple, round(width * scale / multiple) * multiple),
        max(multiple, round(height * scale / multiple) * multiple),
    )


# -- declarations --


def default_folder() -> Path:
    """``workflows/edit`` shipped with the extension."""
    return Path(__file__).resolve().parents[2] / "workflows" / "edit"


def load_edit_modes(
    node_classes: Collection[str], folder: Path | None = None
) -> tuple[list[EditMode], dict[str, str]]:
    """The edit modes whose nodes this ComfyUI has, in file order, and why the others are not offered
    (by id; broken declarations by file stem). The base family's own needs are checked by the caller."""
    offered: list[EditMode] = []
    left_out: dict[str, str] = {}
    for path in sorted((folder or default_folder()).glob("*.json")):
        try:
            mode = parse_edit_mode(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            left_out[path.stem] = f"broken declaration: {exc}"
            log.warning("edit mode %s not offered: %s", path.stem, exc)
            continue
        missing = sorted(mode.nodes() - set(node_classes))
        if missing:
            left_out[mode.id] = f"this ComfyUI has no {', '.join(missing)} node"
            log.info("edit mode %s not offered: %s", mode.id, left_out[mode.id])
        else:
            offered.append(mode)
    return offered, left_out


def parse_edit_mode(raw: Any) -> EditMode:
    """An :class:`EditMode` from its JSON declaration; raise :class:`EditError`."""
    if not isinstance(raw, dict):
        raise EditError("an edit declaration is a JSON object")
    texts = {k: raw.get(k) for k in ("edit", "title", "base", "names", "install")}
    if not all(isinstance(v, str) and v for v in texts.values()):
        raise EditError("needs 'edit', 'title', 'base', 'names' and 'install' (strings)")
    choices = {"scale": SCALES, "conditioning": CONDITIONINGS, "sampler": SAMPLERS, "latent": LATENTS}
    for key, allowed in choices.items():
        if raw.get(key) not in allowed:
            raise EditError(f"'{key}' is one of {', '.join(allowed)}")
    references, pixels, multiple = raw.get("references"), raw.get("pixels"), raw.get("multiple")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (references, pixels, multiple)):
        raise EditError("'references', 'pixels' and 'multiple' are integers")
    assert isinstance(references, int) and isinstance(pixels, int) and isinstance(multiple, int)
    if raw["conditioning"] == "qwen_edit" and references:
        raise EditError("the qwen_edit conditioning takes no reference images")
    if raw["conditioning"] == "qwen_edit_plus" and references > 2:
        raise EditError("the qwen_edit_plus conditioning takes at most 2 reference images (3 images)")
    try:
        names = re.compile(str(texts["names"]))
    except re.error as exc:
        raise EditError(f"'names' is not a regular expression: {exc}") from None
    defaults = raw.get("defaults") or {}
    requires = raw.get("requires") or []
    if not isinstance(defaults, dict) or not _strings(requires):
        raise EditError("'defaults' is an object, 'requires' a list of node class names")
    return EditMode(
        str(texts["edit"]),
        str(texts["title"]),
        str(texts["base"]),
        names,
        str(texts["install"]),
        references,
        raw["scale"],
        raw["conditioning"],
        raw["sampler"],
        raw["latent"],
        pixels,
        multiple,
        guidance=_number(raw, "guidance"),
        cfg=_number(raw, "cfg") or 1.0,
        cfg_knob=raw.get("cfg_knob") is True,
        shift=_number(raw, "shift"),
        cfg_norm=_number(raw, "cfg_norm"),
        steps=int(defaults.get("steps", 20)),
        sampler_name=str(defaults.get("sampler", "euler")),
        scheduler=str(defaults.get("scheduler", "simple")),
        requires=tuple(requires),
    )


def _number(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise EditError(f"'{key}' is a number")
    return float(value)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def pick_modes(modes: Sequence[EditMode], base: str | None, file_name: str) -> list[EditMode]:
    """The edit modes a model file of detected family ``base`` is, by its name."""
    return [m for m in modes if m.base == base and m.fits_name(file_name)]
