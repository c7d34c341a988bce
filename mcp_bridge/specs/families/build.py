"""A family's graph, made from the all-in-one graph the tools build (pure: a prompt in, a prompt out).

The tools' graphs (txt2img, img2img, inpaint, outpaint) load a checkpoint with CheckpointLoaderSimple
and use its three outputs (MODEL 0, CLIP 1, VAE 2). For a family :func:`apply_family` swaps the
sources and pieces, keeping every other node and link:

- MODEL: the checkpoint, or ``UNETLoader`` for a diffusion model, then the family's model-sampling
  patch (``ModelSamplingSD3``/``ModelSamplingAuraFlow`` shift); CLIP: the checkpoint's, or the
  family's CLIP loader (``CLIPLoader``/``DualCLIPLoader``/``TripleCLIPLoader``/``QuadrupleCLIPLoader``
  with its ``type``); VAE: the checkpoint's or ``VAELoader``;
- LoRAs: ``LoraLoader`` nodes become the family's ``LoraLoaderModelOnly`` (the model only);
- ``EmptyLatentImage`` becomes the family's latent node (``EmptySD3LatentImage``, ...);
- conditioning: ``FluxGuidance`` after the positive prompt (cfg ``guidance``: the sampler's cfg is 1),
  the negative prompt replaced by ``ConditioningZeroOut`` of the positive (negative ``zero``);
- sampling: ``KSampler`` as is, or, for families with a scheduler node (Flux.2), ``SamplerCustomAdvanced``
  with ``RandomNoise``, ``CFGGuider``, ``KSamplerSelect`` and the scheduler (``SplitSigmasDenoise``
  when denoise < 1), under the KSampler's node id so every link to it holds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .catalog import Family
from .plan import Plan

Prompt = dict[str, dict[str, Any]]
CHECKPOINT_LOADER = "CheckpointLoaderSimple"
TEXT_ENCODERS = ("CLIPTextEncode",)
CONTROL_APPLY = ("ControlNetApplyAdvanced", "ControlNetApplySD3")


class FamilyGraphError(ValueError):
    """The tool's graph has no place for the family's pieces (no checkpoint loader, no sampler)."""


@dataclass(frozen=True)
class Sampling:
    """The values the family's pieces need: the guidance (cfg ``guidance``), the image size (for a
    resolution-aware scheduler when the graph has no empty latent)."""

    guidance: float | None = None
    width: int = 1024
    height: int = 1024


def apply_family(prompt: Prompt, plan: Plan, sampling: Sampling | None = None) -> Prompt:
    """``prompt`` (an all-in-one graph, LoRAs chained) rebuilt for ``plan``'s family and files."""
    family, out = plan.family, copy.deepcopy(prompt)
    if family.checkpoint_graph:
        return out
    sampling = sampling or Sampling()
    loader = _only(out, CHECKPOINT_LOADER)
    ids = _ids(out)
    model_ref, clip_ref, vae_ref = [loader, 0], [loader, 1], [loader, 2]
    if plan.model_folder != "checkpoints":
        model_ref = [_add(out, ids, "UNETLoader", unet_name=plan.model, weight_dtype="default"), 0]
    if plan.encoders:
        cls, clip_inputs = _clip_loader(family, plan.encoders)
        clip_ref = [_add(out, ids, cls, **clip_inputs), 0]
    if plan.vae is not None:
        vae_ref = [_add(out, ids, "VAELoader", vae_name=plan.vae), 0]
    if family.model_sampling:
        cls, shift = family.model_sampling
        model_ref = [_add(out, ids, cls, model=model_ref, shift=shift), 0]
    _model_only_loras(out, family.lora)
    _relink(out, {(loader, 0): model_ref, (loader, 1): clip_ref, (loader, 2): vae_ref}, skip=set())
    if all(ref[0] != loader for ref in (model_ref, clip_ref, vae_ref)):
        del out[loader]
    for node in out.values():
        if node["class_type"] == "EmptyLatentImage":
            node["class_type"] = family.latent
    for sampler in [i for i, n in out.items() if n["class_type"] == "KSampler"]:
        _conditioning(out, ids, family, sampler, sampling)
        if family.scheduler_node:
            _custom_sampling(out, ids, family, sampler, sampling)
    return out


def _clip_loader(family: Family, files: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    declared = family.clip_loader(len(files))
    if declared is None:
        raise FamilyGraphError(f"{family.title} has no CLIP loader for {len(files)} text encoders")
    cls, clip_type = declared
    names = (
        {"clip_name": files[0]} if len(files) == 1 else {f"clip_name{i}": f for i, f in enumerate(files, 1)}
    )
    return cls, {**names, **({"type": clip_type} if clip_type else {})}


def _model_only_loras(prompt: Prompt, lora_class: str) -> None:
    """LoraLoader (model and CLIP) -> ``lora_class`` on the model only; its CLIP output is its input's."""
    if lora_class == "LoraLoader":
        return
    for lora_id, node in list(prompt.items()):
        if node["class_type"] != "LoraLoader":
            continue
        inputs = node["inputs"]
        _relink(prompt, {(lora_id, 1): inputs["clip"]}, skip=set())
        node["class_type"] = lora_class
        node["inputs"] = {k: inputs[k] for k in ("model", "lora_name", "strength_model")}


def _conditioning(prompt: Prompt, ids: list[int], family: Family, sampler: str, sampling: Sampling) -> None:
    inputs = prompt[sampler]["inputs"]
    positive = _source_encoder(prompt, inputs["positive"], "positive")
    negative = _source_encoder(prompt, inputs["negative"], "negative")
    if family.cfg in ("guidance", "fixed"):
        inputs["cfg"] = 1.0
    if family.negative == "zero" and negative is not None and positive is not None and negative != positive:
        prompt[negative] = {
            "class_type": "ConditioningZeroOut",
            "inputs": {"conditioning": [positive, 0]},
            "_meta": {"title": "Negative (zeroed)"},
        }
    if family.guidance and positive is not None:
        value = sampling.guidance if sampling.guidance is not None else family.defaults.get("cfg_scale", 3.5)
        guided = _add(prompt, ids, family.guidance, conditioning=[positive, 0], guidance=float(value))
        keep = {guided} | ({negative} if family.negative == "zero" and negative else set())
        _relink(prompt, {(positive, 0): [guided, 0]}, skip=keep)


def _source_encoder(prompt: Prompt, link: Any, side: str) -> str | None:
    """The text-encode node a sampler's positive/negative comes from, through any ControlNet applies."""
    for _ in range(64):
        if not (isinstance(link, list) and len(link) == 2 and str(link[0]) in prompt):
            return None
        node = prompt[str(link[0])]
        if node["class_type"] in TEXT_ENCODERS:
            return str(link[0])
        if node["class_type"] in CONTROL_APPLY:
            link = node["inputs"].get(side)
            continue
        return None
    return None


def _custom_sampling(
    prompt: Prompt, ids: list[int], family: Family, sampler: str, sampling: Sampling
) -> None:
    """Replace KSampler ``sampler`` by SamplerCustomAdvanced with the family's scheduler node."""
    k = prompt[sampler]["inputs"]
    width, height = _latent_size(prompt, k["latent_image"], sampling)
    noise = _add(prompt, ids, "RandomNoise", noise_seed=k["seed"])
    guider = _add(
        prompt,
        ids,
        "CFGGuider",
        model=k["model"],
        positive=k["positive"],
        negative=k["negative"],
        cfg=k["cfg"],
    )
    select = _add(prompt, ids, "KSamplerSelect", sampler_name=k["sampler_name"])
    sigmas: list[Any] = [
        _add(prompt, ids, str(family.scheduler_node), steps=k["steps"], width=width, height=height),
        0,
    ]
    if float(k.get("denoise", 1.0)) < 1.0:
        sigmas = [_add(prompt, ids, "SplitSigmasDenoise", sigmas=sigmas, denoise=k["denoise"]), 1]
    prompt[sampler] = {
        "class_type": "SamplerCustomAdvanced",
        "inputs": {
            "noise": [noise, 0],
            "guider": [guider, 0],
            "sampler": [select, 0],
            "sigmas": sigmas,
            "latent_image": k["latent_image"],
        },
        "_meta": {"title": "Sampler"},
    }


def _latent_size(prompt: Prompt, link: Any, sampling: Sampling) -> tuple[int, int]:
    node = prompt.get(str(link[0])) if isinstance(link, list) else None
    if node is not None and isinstance(node["inputs"].get("width"), int):
        return node["inputs"]["width"], node["inputs"]["height"]
    return sampling.width, sampling.height


def _only(prompt: Prompt, class_type: str) -> str:
    found = [i for i, n in prompt.items() if n["class_type"] == class_type]
    if len(found) != 1:
        raise FamilyGraphError(
            f"the tool's graph has {len(found)} {class_type} nodes; families need exactly one"
        )
    return found[0]


def _ids(prompt: Prompt) -> list[int]:
    return [max((int(i) for i in prompt if i.isdigit()), default=0)]


def _add(prompt: Prompt, ids: list[int], class_type: str, **inputs: Any) -> str:
    ids[0] += 1
    while str(ids[0]) in prompt:
        ids[0] += 1
    node_id = str(ids[0])
    prompt[node_id] = {"class_type": class_type, "inputs": inputs}
    return node_id


def _relink(prompt: Prompt, moves: dict[tuple[str, int], list[Any]], skip: set[str]) -> None:
    """Point every link to a key of ``moves`` at its value (nodes in ``skip`` keep theirs)."""
    for node_id, node in prompt.items():
        if node_id in skip:
            continue
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and (str(value[0]), value[1]) in moves:
                target = moves[(str(value[0]), value[1])]
                if str(target[0]) != node_id:
                    node["inputs"][name] = list(target)
