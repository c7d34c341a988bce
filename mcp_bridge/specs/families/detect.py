"""What a model file is, from its header alone: a diffusion model's family, a text encoder's kind, a
VAE's latent kind — the markers ComfyUI's own loaders use (``comfy/model_detection.py``
``detect_unet_config``, ``comfy/sd.py`` ``detect_te_model`` and ``VAE``), in their order.

:func:`classify` is pure (a header in, a :class:`Detection` out). :func:`detect_file` reads the header
(blocking: call off the event loop) and caches the answer by path, size and modification time. The
file name is never read here: where a header cannot tell (edit variants, full/dev/fast) the caller
decides, with the name as a tie-breaker.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ...comfyui.headers import HeaderShapes, TensorHeader, read_tensor_header

Role = Literal["checkpoint", "diffusion_model", "controlnet", "text_encoder", "vae", "unknown"]
Shapes = HeaderShapes
CHECKPOINT_PREFIX = "model.diffusion_model."


@dataclass(frozen=True)
class Detection:
    """One model file, classified.

    ``family``: the architecture of a checkpoint or diffusion model (``sd1``, ``sd2``, ``sdxl``,
    ``sd3``, ``flux1_dev``, ``flux1_schnell``, ``chroma``, ``flux2``, ``qwen_image``, ``lumina2``,
    ``z_image``, ``hidream``, or a non-image one such as ``wan``, ``ltxv``, ``svd``); ``encoder``: a
    text encoder's kind (``clip_l``, ``clip_g``, ``clip_h``, ``t5_xxl``, ``t5_xl``, ``t5_base``,
    ``qwen25_7b``, ``qwen25_3b``, ``qwen3_4b``, ``llama31_8b``, ``gemma2_2b``, ``gemma3_4b``,
    ``mistral3_24b``, ``mistral3_24b_flux2``, ``byt5_small``); ``vae``: a VAE's latent kind
    (``sd``: 4 channels, ``flux``: 16, ``flux2``: 32, ``wan21``, ``wan22``); ``bundled``: what an
    all-in-one checkpoint carries besides its model (encoder kinds, ``vae``); ``marker``: the tensor
    (or GGUF architecture) that decided, or why nothing did.
    """

    role: Role
    family: str | None = None
    encoder: str | None = None
    vae: str | None = None
    bundled: tuple[str, ...] = ()
    in_channels: int | None = None  # a UNet's first conv (9: an inpainting model)
    format: str = "safetensors"
    marker: str = ""


UNKNOWN = Detection("unknown", marker="no known marker in the header")
NOT_A_MODEL = Detection("unknown", format="none", marker="not a safetensors or GGUF file")

# Diffusion-model markers, in detect_unet_config's order: (tensor, family). Flux-like and Lumina-like
# models and UNets are told apart further by _flux/_lumina/_unet.
_MODEL_MARKERS: tuple[tuple[str, str], ...] = (
    ("joint_blocks.0.context_block.attn.qkv.weight", "sd3"),
    ("clf.1.weight", "stable_cascade"),
    ("transformer.rotary_pos_emb.inv_freq", "stable_audio"),
    ("double_layers.0.attn.w1q.weight", "aura_flow"),
    ("mlp_t5.0.weight", "hunyuan_dit"),
    ("txt_in.individual_token_refiner.blocks.0.norm1.weight", "hunyuan_video"),
    ("double_blocks.0.img_attn.norm.key_norm.scale", "flux"),
    ("t5_yproj.weight", "mochi"),
    ("adaln_single.emb.timestep_embedder.linear_1.bias", "ltxv"),
    ("t_block.1.weight", "pixart"),
    ("blocks.block0.blocks.0.block.attn.to_q.0.weight", "cosmos"),
    ("cap_embedder.1.weight", "lumina"),
    ("head.modulation", "wan"),
    ("latent_in.weight", "hunyuan3d"),
    ("caption_projection.0.linear.weight", "hidream"),
    ("blocks.0.mlp.layer1.weight", "cosmos_predict2"),
    ("time_caption_embed.timestep_embedder.linear_1.bias", "omnigen2"),
    ("txt_norm.weight", "qwen_image"),
    ("input_blocks.0.0.weight", "unet"),
)

# GGUF general.architecture (the ComfyUI-GGUF pack's names) -> family or encoder kind.
GGUF_FAMILIES = {
    "sd1": "sd1",
    "sdxl": "sdxl",
    "sd3": "sd3",
    "flux": "flux1_dev",
    "chroma": "chroma",
    "flux2": "flux2",
    "qwen_image": "qwen_image",
    "lumina2": "lumina2",
    "hidream": "hidream",
    "wan": "wan",
    "ltxv": "ltxv",
    "hyvid": "hunyuan_video",
    "aura": "aura_flow",
}
GGUF_ENCODERS = {"t5": "t5_xxl", "t5encoder": "t5_xxl", "llama": "llama31_8b", "qwen2vl": "qwen25_7b"}
GGUF_ENCODERS |= {"qwen3": "qwen3_4b", "gemma2": "gemma2_2b", "gemma3": "gemma3_4b"}
# Where encoders sit inside all-in-one checkpoints (SD1/SD2/SDXL/SD3 conventions).
_BUNDLED_ENCODERS = (
    ("cond_stage_model.transformer.", "clip_l"),
    ("conditioner.embedders.0.transformer.", "clip_l"),
    ("text_encoders.clip_l.", "clip_l"),
    ("conditioner.embedders.1.model.", "clip_g"),
    ("text_encoders.clip_g.", "clip_g"),
    ("cond_stage_model.model.", "clip_h"),
    ("text_encoders.t5xxl.", "t5_xxl"),
    ("first_stage_model.", "vae"),
    ("vae.", "vae"),
)


def classify(header: TensorHeader) -> Detection:
    """The role and family/kind of a model file from its header (pure)."""
    if header.format == "gguf":
        return _gguf(header.architecture or "")
    shapes = header.shapes
    prefix = CHECKPOINT_PREFIX if shapes.has_prefix(CHECKPOINT_PREFIX) else ""
    model = _model(shapes, prefix)
    if model is not None:
        if prefix:
            return Detection(
                "checkpoint",
                model.family,
                bundled=_bundled(shapes),
                in_channels=model.in_channels,
                marker=prefix + model.marker,
            )
        return model
    return _encoder(shapes) or _vae(shapes) or UNKNOWN


@functools.lru_cache(maxsize=4096)
def _detect_cached(path: str, size: int, mtime_ns: int) -> Detection:
    # size and mtime_ns only key the cache: a rewritten file is read again.
    header = read_tensor_header(Path(path))
    return NOT_A_MODEL if header is None else classify(header)


def detect_file(path: Path) -> Detection:
    """:func:`classify` of the file at ``path``, cached by path, size and modification time (blocking:
    call off the event loop). A missing or unreadable file is ``unknown``."""
    try:
        info = os.stat(path)
    except OSError:
        return NOT_A_MODEL
    return _detect_cached(str(path), info.st_size, info.st_mtime_ns)


def clear_cache() -> None:
    """Forget every cached detection (benchmarks and tests)."""
    _detect_cached.cache_clear()


# -- diffusion models --


def _model(shapes: Shapes, prefix: str) -> Detection | None:
    for marker, family in _MODEL_MARKERS:
        if prefix + marker not in shapes:
            continue
        if family == "flux":
            found = _flux(shapes, prefix)
            if found is None:
                continue
            family = found
        elif family == "lumina":
            width = shapes[prefix + marker][0]
            family = "z_image" if width == 3840 else "lumina2"
        elif family == "unet":
            return _unet(shapes, prefix)
        return Detection("diffusion_model", family, marker=marker)
    return None


def _flux(shapes: Shapes, prefix: str) -> str | None:
    """Flux.1 (dev when guidance-distilled, else schnell), Flux.2 or Chroma, as detect_unet_config."""
    chroma = any(prefix + f"distilled_guidance_layer.{k}norms.0.scale" in shapes for k in ("", "0."))
    if prefix + "img_in.weight" not in shapes and not chroma:
        return None
    if prefix + "double_stream_modulation_img.lin.weight" in shapes:
        return "flux2"
    if chroma:
        return "chroma_radiance" if prefix + "nerf_blocks.0.norm.scale" in shapes else "chroma"
    return "flux1_dev" if prefix + "guidance_in.in_layer.weight" in shapes else "flux1_schnell"


def _unet(shapes: Shapes, prefix: str) -> Detection:
    first = shapes[prefix + "input_blocks.0.0.weight"]
    channels = first[1] if len(first) == 4 else None
    label = shapes.get(prefix + "label_emb.0.0.weight")
    if shapes.mentions(".time_stack."):
        family, marker = "svd", "input_blocks.*.time_stack"
    elif label is not None:
        family = {2816: "sdxl", 2560: "sdxl_refiner"}.get(label[1] if len(label) > 1 else 0, "sd_unclip")
        marker = "label_emb.0.0.weight"
    else:
        context = shapes.get(prefix + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight")
        width = context[1] if context and len(context) > 1 else None
        family = {768: "sd1", 1024: "sd2"}.get(width or 0, "unet")
        marker = "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    if prefix + "zero_convs.0.0.weight" in shapes:  # an LDM ControlNet: a UNet's input side + zero convs
        return Detection("controlnet", family, in_channels=channels, marker="zero_convs.0.0.weight")
    return Detection("diffusion_model", family, in_channels=channels, marker=marker)


def _bundled(shapes: Shapes) -> tuple[str, ...]:
    found = {kind for prefix, kind in _BUNDLED_ENCODERS if shapes.has_prefix(prefix)}
    return tuple(k for k in ("clip_l", "clip_g", "clip_h", "t5_xxl", "vae") if k in found)


# -- text encoders and VAEs --


def _encoder(shapes: Shapes) -> Detection | None:
    """A text encoder's kind, as comfy.sd.detect_te_model."""
    kind, marker = _te_kind(shapes)
    return Detection("text_encoder", encoder=kind, marker=marker) if kind else None


def _te_kind(shapes: Shapes) -> tuple[str | None, str]:
    for layer, kind in ((30, "clip_g"), (22, "clip_h"), (0, "clip_l")):
        name = f"text_model.encoder.layers.{layer}.mlp.fc1.weight"
        if name in shapes:
            return kind, name
    wi = "encoder.block.23.layer.1.DenseReluDense.wi_1.weight"
    width = shapes.get(wi, (0,))[-1:]
    if width in ((4096,), (2048,)):
        return ("t5_xxl" if width == (4096,) else "t5_xl"), wi
    if "encoder.block.23.layer.1.DenseReluDense.wi.weight" in shapes:
        return "t5_xxl", "encoder.block.23.layer.1.DenseReluDense.wi.weight"
    k = "encoder.block.0.layer.0.SelfAttention.k.weight"
    if k in shapes:
        return ("byt5_small" if shapes[k][:1] == (384,) else "t5_base"), k
    return _llm_kind(shapes)


def _llm_kind(shapes: Shapes) -> tuple[str | None, str]:
    q_norm = "model.layers.0.self_attn.q_norm.weight" in shapes
    if "model.layers.0.post_feedforward_layernorm.weight" in shapes:
        return ("gemma3_4b" if q_norm else "gemma2_2b"), "model.layers.0.post_feedforward_layernorm.weight"
    bias = shapes.get("model.layers.0.self_attn.k_proj.bias")
    if bias:
        kind = {256: "qwen25_3b", 512: "qwen25_7b"}.get(bias[0])
        if kind:
            return kind, "model.layers.0.self_attn.k_proj.bias"
    norm = shapes.get("model.layers.0.post_attention_layernorm.weight")
    if norm is None:
        return None, ""
    marker = "model.layers.0.post_attention_layernorm.weight"
    if q_norm:
        return "qwen3_4b", "model.layers.0.self_attn.q_norm.weight"
    if norm[:1] == (5120,):
        full = "model.layers.39.post_attention_layernorm.weight" in shapes
        return ("mistral3_24b" if full else "mistral3_24b_flux2"), marker
    return "llama31_8b", marker


def _vae(shapes: Shapes) -> Detection | None:
    """A VAE's latent kind, as comfy.sd.VAE tells them apart (the families' VAEs only)."""
    conv = shapes.get("decoder.conv_in.weight")
    if conv is not None and len(conv) >= 2:
        kind = {4: "sd", 16: "flux", 32: "flux2"}.get(conv[1]) if len(conv) == 4 else None
        if kind:
            return Detection("vae", vae=kind, marker="decoder.conv_in.weight")
    if "decoder.middle.0.residual.0.gamma" in shapes:
        wan22 = "decoder.upsamples.0.upsamples.0.residual.2.weight" in shapes
        return Detection("vae", vae="wan22" if wan22 else "wan21", marker="decoder.middle.0.residual.0.gamma")
    return None


def _gguf(architecture: str) -> Detection:
    marker = f"general.architecture={architecture}"
    if architecture in GGUF_FAMILIES:
        return Detection("diffusion_model", GGUF_FAMILIES[architecture], format="gguf", marker=marker)
    if architecture in GGUF_ENCODERS:
        return Detection("text_encoder", encoder=GGUF_ENCODERS[architecture], format="gguf", marker=marker)
    return Detection("unknown", format="gguf", marker=marker)
