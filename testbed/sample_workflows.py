"""Plain ComfyUI API workflows over the tiny models: what the test bed runs to prove itself."""

from __future__ import annotations

import random
from typing import Any

from testbed.tiny_models import CHECKPOINT_NAME, UPSCALER_NAME


def txt2img(seed: int, size: int = 64, loras: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    """Checkpoint -> LoRAs -> CLIPTextEncode x2 -> EmptyLatentImage -> KSampler -> VAEDecode -> SaveImage."""
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


def with_controlnet(prompt: dict[str, Any], model_name: str, image_name: str, strength: float = 1.0) -> None:
    """Put a ControlNet (LoadImage as the control map) between ``txt2img``'s prompts and its sampler."""
    prompt.update(
        {
            "cn_image": {"class_type": "LoadImage", "inputs": {"image": image_name}},
            "cn_model": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": model_name}},
            "cn": {
                "class_type": "ControlNetApplyAdvanced",
                "inputs": {
                    "positive": ["pos", 0],
                    "negative": ["neg", 0],
                    "control_net": ["cn_model", 0],
                    "image": ["cn_image", 0],
                    "strength": strength,
                    "start_percent": 0.0,
                    "end_percent": 1.0,
                },
            },
        }
    )
    prompt["sample"]["inputs"] |= {"positive": ["cn", 0], "negative": ["cn", 1]}


def upscale(image_name: str, prefix: str = "tb-up") -> dict[str, Any]:
    """LoadImage -> the tiny x4 ESRGAN -> SaveImage."""
    return {
        "load": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "up_model": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": UPSCALER_NAME}},
        "up": {
            "class_type": "ImageUpscaleWithModel",
            "inputs": {"upscale_model": ["up_model", 0], "image": ["load", 0]},
        },
        "save": {"class_type": "SaveImage", "inputs": {"images": ["up", 0], "filename_prefix": prefix}},
    }


def empty_image(prefix: str = "tb-empty", size: int = 64) -> dict[str, Any]:
    """EmptyImage (a random colour, so no two are cached alike) -> SaveImage: model-free, milliseconds."""
    colour = random.randrange(2**24)  # noqa: S311 - a colour, not a secret
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": size, "height": size, "batch_size": 1, "color": colour},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }
