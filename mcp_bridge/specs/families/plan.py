"""Which files a call of a family runs with: its model, text encoders and VAE (pure: the files and
their detections come in, a :class:`Plan` or a :class:`FamilyRefused` naming what to install goes out).

Encoders and VAE: the caller's (``text_encoders``, ``vae``), else those an all-in-one checkpoint carries,
else for each need the installed file the family's templates name, else the only one of its kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .catalog import EncoderNeed, Family
from .detect import Detection

ENCODER_NAMES = {
    "clip_l": "CLIP-L",
    "clip_g": "CLIP-G",
    "clip_h": "CLIP-H",
    "t5_xxl": "T5-XXL",
    "t5_xl": "T5-XL",
    "qwen25_7b": "Qwen2.5-VL-7B",
    "qwen25_3b": "Qwen2.5-VL-3B",
    "qwen3_4b": "Qwen3-4B",
    "llama31_8b": "Llama-3.1-8B",
    "gemma2_2b": "Gemma-2-2B",
    "gemma3_4b": "Gemma-3-4B",
    "mistral3_24b": "Mistral-3-24B",
    "mistral3_24b_flux2": "Mistral-3-24B (Flux.2)",
}
VAE_NAMES = {"sd": "4-channel (SD)", "flux": "16-channel (SD3/Flux.1)", "flux2": "32-channel (Flux.2)"}
VAE_NAMES |= {"wan21": "Wan 2.1 / Qwen-Image", "wan22": "Wan 2.2"}


class FamilyRefused(ValueError):
    """A family cannot run with what is installed (or what the caller named); the message says what
    would fit and what to install where."""


@dataclass(frozen=True)
class Plan:
    """The files one call runs with. ``encoders`` empty: the checkpoint's own text encoders;
    ``vae`` None: the checkpoint's own VAE. ``notes``: how each was chosen (reported)."""

    family: Family
    model: str
    model_folder: str
    encoders: tuple[str, ...] = ()
    vae: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def encoder_label(kind: str) -> str:
    return ENCODER_NAMES.get(kind, kind)


def make_plan(
    family: Family,
    model: str,
    model_folder: str,
    detection: Detection,
    encoders: Mapping[str, Detection],
    vaes: Mapping[str, Detection],
    wanted_encoders: Sequence[str] | None = None,
    wanted_vae: str | None = None,
) -> Plan:
    """Choose the text encoders and VAE of ``family`` for ``model``; raise :class:`FamilyRefused`.

    ``encoders``/``vaes``: the installed files of ``text_encoders``/``vae`` with their detections."""
    notes: list[str] = []
    bundled = set(detection.bundled) if detection.role == "checkpoint" else set()
    if wanted_encoders:
        chosen = _named_encoders(family, wanted_encoders, encoders)
    elif bundled and all(e.kind in bundled for e in family.required_encoders()):
        chosen = ()
        notes.append("text encoders: the checkpoint's own")
    else:
        chosen = _auto_encoders(family, encoders, notes)
    if wanted_vae:
        vae: str | None = _named_vae(family, wanted_vae, vaes)
    elif "vae" in bundled:
        vae = None
    else:
        vae = _auto_vae(family, vaes)
    return Plan(family, model, model_folder, chosen, vae, tuple(notes))


def _auto_encoders(family: Family, files: Mapping[str, Detection], notes: list[str]) -> tuple[str, ...]:
    chosen: list[str] = []
    missing: list[str] = []
    for need in family.encoders:
        fitting = sorted(name for name, found in files.items() if need.fits(found.encoder))
        pick = _prefer(need.install, fitting)
        if pick is None and len(fitting) > 1:
            raise FamilyRefused(
                f"several {encoder_label(need.kind)} text encoders fit {family.title} "
                f"({', '.join(fitting[:6])}): name them with text_encoders"
            )
        if pick is not None:
            chosen.append(pick)
        elif need.optional:
            notes.append(
                f"{encoder_label(need.kind)} not installed: runs without it ({need.install} would add it)"
            )
        else:
            missing.append(_install(need))
    if missing:
        raise FamilyRefused(f"{family.title} needs " + "; ".join(missing))
    return tuple(chosen)


def _named_encoders(family: Family, names: Sequence[str], files: Mapping[str, Detection]) -> tuple[str, ...]:
    needs = list(family.encoders)
    for name in names:
        found = files.get(name)
        if found is None:
            raise FamilyRefused(f"text encoder {name[:120]!r} is not installed in models/text_encoders")
        need = next((n for n in needs if n.fits(found.encoder)), None)
        if need is None:
            kind = encoder_label(found.encoder) if found.encoder else "not a text encoder ComfyUI knows"
            wants = ", ".join(encoder_label(n.kind) for n in family.encoders)
            raise FamilyRefused(f"{name[:120]} is {kind}; {family.title} takes {wants}")
        needs.remove(need)
    missing = [_install(n) for n in needs if not n.optional]
    if missing:
        raise FamilyRefused(f"{family.title} also needs " + "; ".join(missing))
    order = {n.kind: i for i, n in enumerate(family.encoders)}
    return tuple(sorted(names, key=lambda n: order.get(files[n].encoder or "", len(order))))


def _auto_vae(family: Family, files: Mapping[str, Detection]) -> str:
    fitting = sorted(name for name, found in files.items() if found.vae == family.vae_kind)
    pick = _prefer(family.vae_install, fitting)
    if pick is not None:
        return pick
    if len(fitting) > 1:
        raise FamilyRefused(
            f"several {VAE_NAMES.get(family.vae_kind or '', family.vae_kind)} VAEs fit {family.title} "
            f"({', '.join(fitting[:6])}): name one with vae"
        )
    raise FamilyRefused(f"{family.title} needs a VAE: install {family.vae_install} in models/vae")


def _named_vae(family: Family, name: str, files: Mapping[str, Detection]) -> str:
    found = files.get(name)
    if found is None:
        raise FamilyRefused(f"VAE {name[:120]!r} is not installed in models/vae")
    if found.vae != family.vae_kind:
        kind = VAE_NAMES.get(found.vae or "", "not a VAE ComfyUI knows")
        raise FamilyRefused(
            f"{name[:120]} is a {kind} VAE; {family.title} takes a "
            f"{VAE_NAMES.get(family.vae_kind or '')} one (e.g. {family.vae_install})"
        )
    return name


def _prefer(install: str, fitting: list[str]) -> str | None:
    """The file the templates name (any subfolder), else the only one that fits."""
    named = [f for f in fitting if f.rsplit("/", 1)[-1] == install]
    if named:
        return named[0]
    return fitting[0] if len(fitting) == 1 else None


def _install(need: EncoderNeed) -> str:
    return f"a {encoder_label(need.kind)} text encoder: install {need.install} in models/text_encoders"
