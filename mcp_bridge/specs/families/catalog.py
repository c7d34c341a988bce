"""The image model families, declared as data in ``workflows/families/*.json`` (one file per family).

A declaration (see README, "Model families")::

    {"family": "flux1_dev", "title": "...", "detect": ["flux1_dev"],       # detect.Detection.family values
     "model": {"folders": ["diffusion_models", "checkpoints"], "install": "flux1-dev.safetensors"},
     "encoders": [{"kind": "clip_l", "install": "clip_l.safetensors", "optional": false, "also": []}],
     "clip_loaders": {"2": {"class": "DualCLIPLoader", "type": "flux"}},  # by number of encoders used
     "vae": {"kind": "flux", "install": "ae.safetensors"},
     "latent": "EmptySD3LatentImage",
     "model_sampling": {"class": "ModelSamplingAuraFlow", "shift": 3.1},    # optional
     "guidance": {"class": "FluxGuidance"},                                 # optional
     "scheduler_node": "Flux2Scheduler",                                    # optional: custom sampling
     "negative": "prompt" | "zero",        # zero: ConditioningZeroOut, the negative prompt is not used
     "cfg": "sampler" | "guidance" | "fixed",  # guidance: cfg_scale sets the guidance, the sampler's cfg is 1
     "lora": "LoraLoaderModelOnly",
     "defaults": {"steps": 20, "cfg_scale": 3.5, "sampler": "euler", "scheduler": "simple",
                  "width": 1024, "height": 1024},
     "requires": {"comfyui": "0.3.75"},    # optional: what node definitions cannot show
     "graph": "checkpoint"}                # only for the all-in-one SD family: the tools' own graph

A family is offered when this ComfyUI has every node its graph uses and its CLIP loaders take its
``type`` (read from the node definitions), and its version is at least ``requires.comfyui``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...comfyui.backend import NodeInput

log = logging.getLogger("comfyui_mcp_bridge")

NodeInputs = Callable[[str], Mapping[str, NodeInput] | None]
NEGATIVES = ("prompt", "zero")
CFG_MODES = ("sampler", "guidance", "fixed")
DEFAULT_KEYS = ("steps", "cfg_scale", "sampler", "scheduler", "width", "height")


class FamilyError(ValueError):
    """A family declaration is broken."""


@dataclass(frozen=True)
class EncoderNeed:
    """One text encoder a family needs: its kind (``detect`` names), other kinds that also fit, the file
    ComfyUI's templates name, and whether the family runs without it."""

    kind: str
    install: str
    optional: bool = False
    also: tuple[str, ...] = ()

    def fits(self, kind: str | None) -> bool:
        return kind is not None and (kind == self.kind or kind in self.also)


@dataclass(frozen=True)
class Family:
    """One image model family: how its files are recognised, what it needs, how its graph is built."""

    id: str
    title: str
    detect: tuple[str, ...]
    folders: tuple[str, ...]
    install: str
    encoders: tuple[EncoderNeed, ...] = ()
    clip_loaders: Mapping[int, tuple[str, str | None]] = field(default_factory=dict)  # count -> (class, type)
    vae_kind: str | None = None
    vae_install: str = ""
    latent: str = "EmptyLatentImage"
    model_sampling: tuple[str, float] | None = None
    guidance: str | None = None
    scheduler_node: str | None = None
    negative: str = "prompt"
    cfg: str = "sampler"
    lora: str = "LoraLoader"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    min_comfyui: str | None = None
    checkpoint_graph: bool = False  # the tools' own all-in-one graph, unchanged
    notes: str = ""

    def nodes(self) -> set[str]:
        """Every node class this family's graph uses."""
        if self.checkpoint_graph:
            return set()
        found = {"UNETLoader", "VAELoader", self.latent, self.lora}
        found |= {cls for cls, _ in self.clip_loaders.values()}
        for extra in (self.guidance, self.scheduler_node, self.model_sampling and self.model_sampling[0]):
            if extra:
                found.add(extra)
        if self.negative == "zero":
            found.add("ConditioningZeroOut")
        if self.scheduler_node:
            found |= {
                "SamplerCustomAdvanced",
                "RandomNoise",
                "CFGGuider",
                "KSamplerSelect",
                "SplitSigmasDenoise",
            }
        return found

    def clip_loader(self, count: int) -> tuple[str, str | None] | None:
        """The loader class and ``type`` for ``count`` encoders, or None when none is declared."""
        return self.clip_loaders.get(count)

    def required_encoders(self) -> list[EncoderNeed]:
        return [e for e in self.encoders if not e.optional]


@dataclass(frozen=True)
class FamilyCatalog:
    """The families this ComfyUI can run, by id, and why the others are not offered."""

    families: Mapping[str, Family]
    unoffered: Mapping[str, tuple[Family, str]] = field(default_factory=dict)  # id -> (family, why)
    problems: Mapping[str, str] = field(default_factory=dict)  # broken declarations, by file stem

    def for_detected(self, detected: str | None) -> Family | None:
        """The offered family a detected architecture belongs to."""
        return next((f for f in self.families.values() if detected in f.detect), None)

    def unoffered_for(self, detected: str | None) -> tuple[Family, str] | None:
        """The family declared for ``detected`` that this ComfyUI cannot run, with the reason."""
        return next((v for v in self.unoffered.values() if detected in v[0].detect), None)


def default_folder() -> Path:
    """``workflows/families`` shipped with the extension."""
    return Path(__file__).resolve().parents[3] / "workflows" / "families"


def load_families(
    node_classes: Collection[str],
    node_inputs: NodeInputs,
    comfyui_version: str | None,
    folder: Path | None = None,
) -> FamilyCatalog:
    """Every declaration of ``folder``: those this ComfyUI can run, the others with the reason (never
    raises for a broken declaration)."""
    offered: dict[str, Family] = {}
    unoffered: dict[str, tuple[Family, str]] = {}
    problems: dict[str, str] = {}
    for path in sorted((folder or default_folder()).glob("*.json")):
        try:
            family = parse_family(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            problems[path.stem] = f"broken declaration: {exc}"
            log.warning("model family %s not offered: %s", path.stem, exc)
            continue
        why = unavailable(family, node_classes, node_inputs, comfyui_version)
        if why:
            unoffered[family.id] = (family, why)
            log.info("model family %s not offered: %s", family.id, why)
        else:
            offered[family.id] = family
    return FamilyCatalog(offered, unoffered, problems)


def unavailable(
    family: Family, node_classes: Collection[str], node_inputs: NodeInputs, comfyui_version: str | None
) -> str | None:
    """Why this ComfyUI cannot run ``family`` (None: it can)."""
    missing = sorted(family.nodes() - set(node_classes))
    if missing:
        return f"ComfyUI has no {', '.join(missing)} node"
    for cls, clip_type in family.clip_loaders.values():
        options = (node_inputs(cls) or {}).get("type")
        if clip_type and (options is None or clip_type not in options.options):
            return f"{cls} takes no type {clip_type!r} here"
    if family.min_comfyui and not _at_least(comfyui_version, family.min_comfyui):
        return f"needs ComfyUI {family.min_comfyui} or later (this is {comfyui_version or 'unknown'})"
    return None


def _at_least(version: str | None, floor: str) -> bool:
    def parts(text: str) -> tuple[int, ...]:
        return tuple(int(p) if p.isdigit() else 0 for p in text.split(".")[:3])

    return version is not None and parts(version) >= parts(floor)


def parse_family(raw: Any) -> Family:
    """A :class:`Family` from its JSON declaration; raise :class:`FamilyError`."""
    if not isinstance(raw, dict):
        raise FamilyError("a family declaration is a JSON object")
    family, title = raw.get("family"), raw.get("title")
    detect, model = raw.get("detect"), raw.get("model") or {}
    if not (
        isinstance(family, str) and isinstance(title, str) and isinstance(detect, list) and _strings(detect)
    ):
        raise FamilyError("needs 'family', 'title' and 'detect' (a list of detected architectures)")
    if not (
        isinstance(model, dict) and _strings(model.get("folders")) and isinstance(model.get("install"), str)
    ):
        raise FamilyError("'model' is {folders: [...], install: file name}")
    if raw.get("graph") == "checkpoint":
        notes = str(raw.get("notes", ""))
        folders, install = tuple(model["folders"]), model["install"]
        lora = str(raw.get("lora"))
        return Family(
            family, title, tuple(detect), folders, install, lora=lora, checkpoint_graph=True, notes=notes
        )
    negative, cfg = raw.get("negative", "prompt"), raw.get("cfg", "sampler")
    if negative not in NEGATIVES or cfg not in CFG_MODES:
        raise FamilyError(f"'negative' is one of {NEGATIVES}, 'cfg' one of {CFG_MODES}")
    encoders = tuple(_encoder(e) for e in raw.get("encoders") or ())
    loaders = {int(n): (str(v["class"]), v.get("type")) for n, v in (raw.get("clip_loaders") or {}).items()}
    required = len([e for e in encoders if not e.optional])
    for count in range(required, len(encoders) + 1):
        if count not in loaders:
            raise FamilyError(f"no CLIP loader declared for {count} encoder(s)")
    vae = raw.get("vae") or {}
    defaults = raw.get("defaults") or {}
    if set(defaults) - set(DEFAULT_KEYS):
        raise FamilyError(f"'defaults' takes {', '.join(DEFAULT_KEYS)}")
    if cfg == "guidance" and not raw.get("guidance"):
        raise FamilyError("cfg 'guidance' needs a 'guidance' node")
    sampling = raw.get("model_sampling")
    return Family(
        id=family,
        title=title,
        detect=tuple(detect),
        folders=tuple(model["folders"]),
        install=model["install"],
        encoders=encoders,
        clip_loaders=loaders,
        vae_kind=vae.get("kind"),
        vae_install=str(vae.get("install", "")),
        latent=str(raw.get("latent", "EmptySD3LatentImage")),
        model_sampling=(str(sampling["class"]), float(sampling["shift"])) if sampling else None,
        guidance=(raw.get("guidance") or {}).get("class"),
        scheduler_node=raw.get("scheduler_node"),
        negative=negative,
        cfg=cfg,
        lora=str(raw.get("lora", "LoraLoaderModelOnly")),
        defaults=dict(defaults),
        min_comfyui=(raw.get("requires") or {}).get("comfyui"),
        notes=str(raw.get("notes", "")),
    )


def _encoder(raw: Any) -> EncoderNeed:
    if not (
        isinstance(raw, dict) and isinstance(raw.get("kind"), str) and isinstance(raw.get("install"), str)
    ):
        raise FamilyError("each encoder is {kind, install, optional?, also?}")
    return EncoderNeed(
        raw["kind"], raw["install"], bool(raw.get("optional", False)), tuple(raw.get("also") or ())
    )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
