"""Header-only model files for detection tests: the real tensor names and shapes of each family's
published files (the tensors ComfyUI's detection reads and their neighbours), written as safetensors
headers whose data section is a sparse hole — only header-reading code may open them.

Shapes are those of the released weights (Flux.1 dev: hidden 3072, 19 double and 38 single blocks;
SD3.5 Large: 38 joint blocks of 2432; Qwen-Image: 60 blocks of 3072; Z-Image: width 3840; …).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path

Shapes = dict[str, list[int]]


def _blocks(prefix: str, count: int, tail: Iterable[tuple[str, list[int]]]) -> Shapes:
    return {f"{prefix}{i}.{name}": shape for i in range(count) for name, shape in tail}


def sd15_unet(prefix: str = "model.diffusion_model.", channels: int = 4) -> Shapes:
    return {
        f"{prefix}input_blocks.0.0.weight": [320, channels, 3, 3],
        f"{prefix}input_blocks.1.0.in_layers.0.weight": [320],
        f"{prefix}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, 768],
        f"{prefix}middle_block.1.proj_in.weight": [1280, 1280, 1, 1],
        f"{prefix}out.2.weight": [4, 320, 3, 3],
    }


def sd15_checkpoint(channels: int = 4) -> Shapes:
    return {
        **sd15_unet(channels=channels),
        "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight": [3072, 768],
        "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3],
    }


def sd2_checkpoint() -> Shapes:
    p = "model.diffusion_model."
    return {
        **sd15_unet(),
        f"{p}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, 1024],
        "cond_stage_model.model.transformer.resblocks.0.mlp.c_fc.weight": [4096, 1024],
        "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3],
    }


def sdxl_checkpoint() -> Shapes:
    p = "model.diffusion_model."
    return {
        f"{p}input_blocks.0.0.weight": [320, 4, 3, 3],
        f"{p}label_emb.0.0.weight": [1280, 2816],
        f"{p}input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": [640, 2048],
        "conditioner.embedders.0.transformer.text_model.encoder.layers.0.mlp.fc1.weight": [3072, 768],
        "conditioner.embedders.1.model.transformer.resblocks.0.mlp.c_fc.weight": [5120, 1280],
        "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3],
    }


def mmdit(prefix: str = "", depth: int = 38, hidden: int = 2432) -> Shapes:
    """SD3.5 Large (depth 38, 2432 wide); SD3 Medium is 24 / 1536."""
    return {
        f"{prefix}x_embedder.proj.weight": [hidden, 16, 2, 2],
        f"{prefix}context_embedder.weight": [hidden, 4096],
        f"{prefix}y_embedder.mlp.0.weight": [hidden, 2048],
        f"{prefix}pos_embed": [1, 36864, hidden],
        f"{prefix}final_layer.linear.weight": [64, hidden],
        **_blocks(
            f"{prefix}joint_blocks.",
            depth,
            [
                ("context_block.attn.qkv.weight", [3 * hidden, hidden]),
                ("x_block.attn.qkv.weight", [3 * hidden, hidden]),
            ],
        ),
    }


def sd35_checkpoint() -> Shapes:
    return {
        **mmdit("model.diffusion_model."),
        "text_encoders.clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight": [3072, 768],
        "text_encoders.clip_g.transformer.text_model.encoder.layers.31.mlp.fc1.weight": [5120, 1280],
        "first_stage_model.decoder.conv_in.weight": [512, 16, 3, 3],
    }


def flux1(guidance: bool = True, double: int = 19, single: int = 38) -> Shapes:
    shapes: Shapes = {
        "img_in.weight": [3072, 64],
        "txt_in.weight": [3072, 4096],
        "time_in.in_layer.weight": [3072, 256],
        "vector_in.in_layer.weight": [3072, 768],
        "final_layer.linear.weight": [64, 3072],
        **_blocks(
            "double_blocks.",
            double,
            [("img_attn.norm.key_norm.scale", [128]), ("img_attn.qkv.weight", [9216, 3072])],
        ),
        **_blocks("single_blocks.", single, [("linear1.weight", [21504, 3072])]),
    }
    if guidance:
        shapes["guidance_in.in_layer.weight"] = [3072, 256]
    return shapes


def chroma() -> Shapes:
    shapes = flux1(guidance=False)
    for name in ("time_in.in_layer.weight", "vector_in.in_layer.weight"):
        del shapes[name]
    shapes["distilled_guidance_layer.in_proj.weight"] = [5120, 64]
    shapes["distilled_guidance_layer.norms.0.scale"] = [5120]
    return shapes


def flux2() -> Shapes:
    return {
        "img_in.weight": [6144, 128],
        "txt_in.weight": [6144, 15360],
        "double_stream_modulation_img.lin.weight": [36864, 6144],
        "single_stream_modulation.lin.weight": [18432, 6144],
        **_blocks("double_blocks.", 8, [("img_attn.norm.key_norm.scale", [128])]),
        **_blocks("single_blocks.", 48, [("linear1.weight", [55296, 6144])]),
    }


def qwen_image() -> Shapes:
    return {
        "img_in.weight": [3072, 64],
        "txt_in.weight": [3072, 3584],
        "txt_norm.weight": [3584],
        **_blocks("transformer_blocks.", 60, [("attn.to_q.weight", [3072, 3072])]),
        "proj_out.weight": [64, 3072],
    }


def lumina(width: int = 2304, caption: int = 2304, layers: int = 26) -> Shapes:
    """Lumina Image 2.0 (2304 wide, Gemma-2 2B captions); Z-Image is 3840 wide, Qwen3-4B captions."""
    return {
        "x_embedder.weight": [width, 64],
        "cap_embedder.0.weight": [caption],
        "cap_embedder.1.weight": [width, caption],
        **_blocks("layers.", layers, [("attention.qkv.weight", [3 * width, width])]),
    }


def z_image() -> Shapes:
    return {**lumina(3840, 2560, 30), "cap_pad_token": [1, 3840]}


def hidream() -> Shapes:
    return {
        "x_embedder.proj.weight": [2560, 64],
        "caption_projection.0.linear.weight": [2560, 4096],
        "t_embedder.timestep_embedder.linear_1.weight": [2560, 256],
        **_blocks("double_stream_blocks.", 16, [("block.attn1.to_q.weight", [2560, 2560])]),
    }


def wan21() -> Shapes:
    return {
        "patch_embedding.weight": [1536, 16, 1, 2, 2],
        "head.modulation": [1, 2, 1536],
        "head.head.weight": [64, 1536],
    }


def clip(layers: int, width: int) -> Shapes:
    return {
        "text_model.embeddings.token_embedding.weight": [49408, width],
        **_blocks("text_model.encoder.layers.", layers, [("mlp.fc1.weight", [4 * width, width])]),
        "text_model.final_layer_norm.weight": [width],
    }


def t5(blocks: int = 24, ff: int = 10240, width: int = 4096) -> Shapes:
    return {
        "shared.weight": [32128, width],
        **_blocks(
            "encoder.block.",
            blocks,
            [
                ("layer.0.SelfAttention.k.weight", [width, width]),
                ("layer.1.DenseReluDense.wi_1.weight", [ff, width]),
            ],
        ),
    }


def llm(
    layers: int, width: int, *, k_bias: int | None = None, q_norm: bool = False, ff: int = 11008
) -> Shapes:
    names: list[tuple[str, list[int]]] = [
        ("post_attention_layernorm.weight", [width]),
        ("mlp.up_proj.weight", [ff, width]),
    ]
    if k_bias:
        names.append(("self_attn.k_proj.bias", [k_bias]))
    if q_norm:
        names.append(("self_attn.q_norm.weight", [128]))
    return {"model.embed_tokens.weight": [151936, width], **_blocks("model.layers.", layers, names)}


def vae(channels: int) -> Shapes:
    return {
        "encoder.conv_in.weight": [128, 3, 3, 3],
        "decoder.conv_in.weight": [512, channels, 3, 3],
        "decoder.conv_out.weight": [3, 128, 3, 3],
    }


def wan_vae() -> Shapes:
    return {"decoder.middle.0.residual.0.gamma": [384, 1, 1, 1], "decoder.conv1.weight": [384, 16, 3, 3, 3]}


ENCODERS: dict[str, Shapes] = {
    "clip_l": clip(12, 768),
    "clip_g": clip(32, 1280),
    "t5_xxl": t5(),
    "qwen25_7b": llm(28, 3584, k_bias=512, ff=18944),
    "qwen3_4b": llm(36, 2560, q_norm=True, ff=9728),
    "llama31_8b": llm(32, 4096, ff=14336),
    "gemma2_2b": {**llm(26, 2304, ff=9216), "model.layers.0.post_feedforward_layernorm.weight": [2304]},
    "mistral3_24b_flux2": llm(30, 5120, ff=32768),
}


def write_header_only(
    path: Path,
    shapes: Shapes,
    dtype: str = "BF16",
    metadata: dict[str, str] | None = None,
    *,
    data: bool = True,
) -> Path:
    """A safetensors file with this header and a sparse data section of the right length (``data``
    False: no data section at all — a loader fails at once, header readers still read it)."""
    header: dict[str, object] = {}
    offset = 0
    size = 2 if dtype in ("BF16", "F16") else 4
    for name, shape in shapes.items():
        count = 1
        for n in shape:
            count *= n
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + count * size]}
        offset += count * size
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        if data:
            fh.truncate(8 + len(raw) + offset)
    return path


def write_gguf(path: Path, architecture: str) -> Path:
    """A GGUF v3 header with a few metadata entries, ``general.architecture`` not first."""

    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    entries = [
        string("general.quantization_version") + struct.pack("<II", 4, 2),
        string("general.tags") + struct.pack("<IIQ", 9, 8, 2) + string("a") + string("bc"),
        string("general.architecture") + struct.pack("<I", 8) + string(architecture),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(entries)) + b"".join(entries))
    return path
