"""The test bed itself: a real ComfyUI loads the extension and runs the tiny models.

These workflows go through ComfyUI's own ``/prompt`` route: they prove the test bed, not the bridge.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from PIL import Image

from testbed import comfy_api
from testbed.server import EXTENSION_DIR_NAME, ComfyServer
from testbed.tiny_models import CHECKPOINT_NAME, LORA_A_NAME, LORA_B_NAME, UPSCALER_NAME


def txt2img(seed: int, size: int = 64, loras: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    model: list[Any] = ["ckpt", 0]
    clip: list[Any] = ["ckpt", 1]
    prompt: dict[str, Any] = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT_NAME}},
    }
    for i, (name, strength) in enumerate(loras or []):
        prompt[f"lora{i}"] = {
            "class_type": "LoraLoader",
            "inputs": {
                "model": model,
                "clip": clip,
                "lora_name": name,
                "strength_model": strength,
                "strength_clip": strength,
            },
        }
        model, clip = [f"lora{i}", 0], [f"lora{i}", 1]
    prompt.update(
        {
            "pos": {"class_type": "CLIPTextEncode", "inputs": {"clip": clip, "text": "a red fox"}},
            "neg": {"class_type": "CLIPTextEncode", "inputs": {"clip": clip, "text": "blurry"}},
            "latent": {
                "class_type": "EmptyLatentImage",
                "inputs": {"width": size, "height": size, "batch_size": 1},
            },
            "sample": {
                "class_type": "KSampler",
                "inputs": {
                    "model": model,
                    "positive": ["pos", 0],
                    "negative": ["neg", 0],
                    "latent_image": ["latent", 0],
                    "seed": seed,
                    "steps": 2,
                    "cfg": 7.0,
                    "sampler_name": "euler",
                    "scheduler": "normal",
                    "denoise": 1.0,
                },
            },
            "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["sample", 0], "vae": ["ckpt", 2]}},
            "save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": "tb"}},
        }
    )
    return prompt


def run(server: ComfyServer, prompt: dict[str, Any]) -> list[Path]:
    entry = comfy_api.wait(server.url, comfy_api.submit(server.url, prompt))
    assert entry["status"]["status_str"] == "success", entry["status"]
    files = [server.output_dir / img["subfolder"] / img["filename"] for img in comfy_api.output_images(entry)]
    assert files, "the workflow produced no image"
    return files


def test_comfyui_loads_the_extension_without_import_failure(comfy: ComfyServer) -> None:
    log = comfy.log_text()
    lines = [line for line in log.splitlines() if line.rstrip().endswith(EXTENSION_DIR_NAME)]
    assert lines, f"ComfyUI did not list {EXTENSION_DIR_NAME} among its custom nodes"
    assert not any("IMPORT FAILED" in line for line in lines), lines


def test_health_route_answers_on_both_paths_with_versions(comfy: ComfyServer) -> None:
    for path in ("/mcp-bridge/health", "/api/mcp-bridge/health"):
        body = comfy.get_json(path)
        assert isinstance(body, dict)
        assert body["comfyui_version"] == comfy.version
        assert re.fullmatch(r"\d+\.\d+\.\d+", body["bridge_version"])


def test_txt2img_with_the_tiny_checkpoint_writes_a_64px_png(comfy: ComfyServer) -> None:
    (png,) = run(comfy, txt2img(seed=random.randrange(2**32)))
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == (64, 64)
        lo, hi = img.convert("L").getextrema()
        assert hi - lo > 0, "the image is a flat colour: the tiny model's signal died"


def test_two_stacked_loras_apply_and_change_the_image(comfy: ComfyServer) -> None:
    seed = random.randrange(2**32)
    (plain,) = run(comfy, txt2img(seed))
    (with_loras,) = run(comfy, txt2img(seed, loras=[(LORA_A_NAME, 1.0), (LORA_B_NAME, 0.8)]))
    with Image.open(plain) as a, Image.open(with_loras) as b:
        assert b.size == (64, 64)
        assert a.tobytes() != b.tobytes(), "the LoRAs had no effect"
    assert "lora key not loaded" not in comfy.log_text()


def test_upscale_model_makes_a_4x_png(comfy: ComfyServer) -> None:
    src = Image.linear_gradient("L").convert("RGB").resize((32, 24))
    name = f"tb-{random.randrange(10**9)}.png"
    src.save(comfy.input_dir / name)
    prompt = {
        "load": {"class_type": "LoadImage", "inputs": {"image": name}},
        "up_model": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": UPSCALER_NAME}},
        "up": {
            "class_type": "ImageUpscaleWithModel",
            "inputs": {"upscale_model": ["up_model", 0], "image": ["load", 0]},
        },
        "save": {"class_type": "SaveImage", "inputs": {"images": ["up", 0], "filename_prefix": "tb-up"}},
    }
    (png,) = run(comfy, prompt)
    with Image.open(png) as img:
        assert img.size == (128, 96)
