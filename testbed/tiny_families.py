"""Tiny random-weight split-file models of a DiT family (SD3/SD3.5) for the test bed.

Five files under ``families/`` of the models folder, in the folders ComfyUI's UNETLoader,
DualCLIPLoader and VAELoader read (only servers started with ``ComfyServer(family_models=True)`` list
them, so the session servers keep their single checkpoint):

- ``diffusion_models/tiny-sd3-mmdit.safetensors``: an MMDiT of depth 2 (hidden size 128, 16 latent
  channels, pooled 2048 and context 4096 inputs as SD3's) — names and shapes from ComfyUI's own
  ``MMDiT`` class built on torch's ``meta`` device, weights random;
- ``text_encoders/tiny-clip-l.safetensors``: the tiny SD1.5 checkpoint's full-size CLIP-L, the same
  weights under a standalone encoder's names (ComfyUI fixes CLIP's size);
- ``text_encoders/tiny-clip-g.safetensors``: a full-size random CLIP-G (32 layers of 1280);
- ``vae/tiny-sd3-vae.safetensors``: a 16-channel KL VAE (ComfyUI's fixed SD layout: ``Encoder`` and
  ``Decoder`` names and shapes from its own classes);
- ``loras/tiny-sd3-lora.safetensors``: a rank-4 LoRA on the MMDiT's attention (kohya names).

Cached by the same stamps as :mod:`testbed.tiny_models`. ``python -m testbed.tiny_families DEST``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from testbed import tiny_models as tm
from testbed.server import LATEST, VENV_PYTHON, comfyui_dir

FOLDER = "families"
MMDIT_NAME = "tiny-sd3-mmdit.safetensors"
CLIP_L_NAME = "tiny-clip-l.safetensors"
CLIP_G_NAME = "tiny-clip-g.safetensors"
VAE_NAME = "tiny-sd3-vae.safetensors"
LORA_NAME = "tiny-sd3-lora.safetensors"
FILES: dict[str, tuple[str, str]] = {
    "sd3_mmdit": (f"{FOLDER}/diffusion_models", MMDIT_NAME),
    "clip_l": (f"{FOLDER}/text_encoders", CLIP_L_NAME),
    "clip_g": (f"{FOLDER}/text_encoders", CLIP_G_NAME),
    "sd3_vae": (f"{FOLDER}/vae", VAE_NAME),
    "sd3_lora": (f"{FOLDER}/loras", LORA_NAME),
}
SEEDS = {"sd3_mmdit": 3001, "clip_g": 3002, "sd3_vae": 3003, "sd3_lora": 3004}
# What ComfyUI's classes are built with (the MMDiT's depth is its hidden size / 64, as detection reads).
MMDIT_CONFIG = {
    "patch_size": 2, "in_channels": 16, "out_channels": 16, "depth": 2, "adm_in_channels": 2048,
    "context_embedder_config": {
        "target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": 128},
    },
    "pos_embed_max_size": 64, "num_patches": 4096,
}  # fmt: skip
VAE_CONFIG = {
    "double_z": True, "z_channels": 16, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
    "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
}  # fmt: skip
_CLIP_G = (32, 1280, 5120)  # layers, width, MLP (ComfyUI's clip_config_bigg.json)
_HEAD_GAIN = 0.5

# Run inside the ComfyUI tree: ComfyUI's own classes on the meta device -> {name: shape}.
_SHAPES_SCRIPT = """
import json, sys, torch
sys.argv = [sys.argv[0], "--cpu"]
import comfy.options
comfy.options.enable_args_parsing()
import comfy.ops
from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT
from comfy.ldm.models.autoencoder import AutoencodingEngine
mmdit, vae = json.loads(sys.stdin.read())
with torch.device("meta"):
    m = MMDiT(input_size=None, operations=comfy.ops.disable_weight_init, **mmdit)
    v = AutoencodingEngine(
        regularizer_config={"target": "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
        encoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Encoder", "params": vae},
        decoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Decoder", "params": vae})
print(json.dumps([{k: list(t.shape) for k, t in x.state_dict().items()} for x in (m, v)]))
"""


@functools.cache
def comfy_shapes() -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """The MMDiT's and the VAE's tensor names and shapes, from ComfyUI's classes (a subprocess)."""
    done = subprocess.run(
        [str(VENV_PYTHON), "-c", _SHAPES_SCRIPT],
        input=json.dumps([MMDIT_CONFIG, VAE_CONFIG]),
        capture_output=True,
        text=True,
        cwd=comfyui_dir(LATEST),
        env={"PYTHONPATH": str(comfyui_dir(LATEST)), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=300,
    )
    mmdit, vae = json.loads(done.stdout.strip().splitlines()[-1])
    return {k: tuple(v) for k, v in mmdit.items()}, {k: tuple(v) for k, v in vae.items()}


def _random(shapes: dict[str, tuple[int, ...]], head: str) -> tm.Spec:
    """Fan-in scaled weights, norm weights 1, biases 0, a damped output head."""
    spec: tm.Spec = {}
    for name, shape in shapes.items():
        if name.endswith(".bias"):
            spec[name] = tm.Param(shape)
        elif len(shape) == 1:
            spec[name] = tm.Param(shape, fill=1.0)
        else:
            spec[name] = tm._weight(shape, _HEAD_GAIN if name.startswith(head) else 1.0)
    return spec


def mmdit_spec() -> tm.Spec:
    return _random(comfy_shapes()[0], "final_layer.linear")


def vae_spec() -> tm.Spec:
    return _random(comfy_shapes()[1], "decoder.conv_out")


def clip_l_spec() -> tm.Spec:
    """The checkpoint's CLIP-L under a standalone encoder's names (``text_model.…``)."""
    prefix = "cond_stage_model.transformer."
    return {k[len(prefix) :]: v for k, v in tm.clip_spec().items()}


def clip_g_spec() -> tm.Spec:
    layers, w, mlp = _CLIP_G
    spec: tm.Spec = {
        "text_model.embeddings.token_embedding.weight": tm.Param((49408, w), std=1.0),
        "text_model.embeddings.position_embedding.weight": tm.Param((77, w), std=1.0),
        "text_projection.weight": tm._weight((w, w)),
    }
    for i in range(layers):
        layer = f"text_model.encoder.layers.{i}"
        tm._norm(spec, f"{layer}.layer_norm1", w)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            tm._linear(spec, f"{layer}.self_attn.{proj}", w, w)
        tm._norm(spec, f"{layer}.layer_norm2", w)
        tm._linear(spec, f"{layer}.mlp.fc1", w, mlp)
        tm._linear(spec, f"{layer}.mlp.fc2", mlp, w)
    tm._norm(spec, "text_model.final_layer_norm", w)
    return spec


def lora_spec() -> tm.Spec:
    """Rank-4 kohya LoRA on every joint block's x-block attention qkv and proj."""
    shapes = comfy_shapes()[0]
    spec: tm.Spec = {}
    for name, shape in shapes.items():
        if not (name.startswith("joint_blocks.") and ".x_block.attn." in name and name.endswith(".weight")):
            continue
        module = "lora_unet_" + name[: -len(".weight")].replace(".", "_")
        spec[f"{module}.lora_down.weight"] = tm._weight((tm.LORA_RANK, shape[1]))
        spec[f"{module}.lora_up.weight"] = tm._weight((shape[0], tm.LORA_RANK), tm._LORA_UP_GAIN)
        spec[f"{module}.alpha"] = tm.Param((), fill=float(tm.LORA_RANK))
    return spec


SPECS: dict[str, Callable[[], tm.Spec]] = {
    "sd3_mmdit": mmdit_spec,
    "clip_l": clip_l_spec,
    "clip_g": clip_g_spec,
    "sd3_vae": vae_spec,
    "sd3_lora": lora_spec,
}


def stamp(role: str) -> str:
    """The content marker: for files shaped by ComfyUI's classes, their config (no subprocess needed)."""
    source: object = (MMDIT_CONFIG, VAE_CONFIG) if role in ("sd3_mmdit", "sd3_vae", "sd3_lora") else None
    if source is None:
        source = sorted((k, p.shape, p.std, p.fill) for k, p in SPECS[role]().items())
    digest = hashlib.sha256(repr(source).encode()).hexdigest()[:16]
    info = {"generator": "comfyui-mcp-bridge testbed.tiny_families", "version": tm.GENERATOR_VERSION}
    info |= {"role": role, "seed": SEEDS.get(role, tm.SEEDS["checkpoint"]), "spec": digest}
    return json.dumps(info, sort_keys=True, separators=(",", ":"))


def generate(role: str, dest: Path, *, force: bool = False) -> tuple[Path, bool]:
    """Make one file of :data:`FILES` under ``dest``; returns its path and whether it was written."""
    folder, name = FILES[role]
    path = Path(dest) / folder / name
    marker = stamp(role)
    if not force and tm.read_stamp(path) == marker:
        return path, False
    seed = SEEDS.get(role, tm.SEEDS["checkpoint"])  # CLIP-L: the checkpoint's seed, so its weights
    tm._write_atomically(path, tm.materialize(SPECS[role](), seed), marker)
    return path, True


def generate_all(dest: Path, *, force: bool = False) -> dict[str, Path]:
    return {role: generate(role, dest, force=force)[0] for role in FILES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m testbed.tiny_families", description="Make the tiny SD3 files."
    )
    parser.add_argument("dest", type=Path, help="a ComfyUI-style models folder")
    parser.add_argument("--force", action="store_true", help="regenerate even if up to date")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    for role in FILES:
        t0 = time.perf_counter()
        path, written = generate(role, args.dest, force=args.force)
        what = "wrote " if written else "cached"
        print(f"{what} {path} ({path.stat().st_size:,} bytes, {time.perf_counter() - t0:.2f} s)")
    print(f"tiny family models ready in {time.perf_counter() - start:.2f} s: {args.dest / FOLDER}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
