"""A split-file DiT family end to end on a real ComfyUI: the tiny SD3 MMDiT (diffusion_models) with
CLIP-L + CLIP-G (text_encoders) and a 16-channel VAE (vae), recognised from their headers, run through
the family's graph (UNETLoader, DualCLIPLoader type sd3, ModelSamplingSD3, EmptySD3LatentImage) by
generate_image, img2img, inpaint and generate_batch, with a model-level LoRA.

The split files are a second image model: only this module's own servers see them
(``ComfyServer(family_models=True)``), so the session servers keep one checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from test_inpaint import BOX, b64, changed, mask, outside_identical, result_image, source
from test_inpaint_model import prompt_classes

from testbed import tiny_families
from testbed.mcp_client import connect
from testbed.server import MODELS, VERSIONS, ComfyServer
from testbed.tiny_families import CLIP_G_NAME, CLIP_L_NAME, LORA_NAME, MMDIT_NAME, VAE_NAME
from testbed.tiny_models import CHECKPOINT_NAME

pytestmark = pytest.mark.anyio
SD3_GRAPH = {
    "UNETLoader",
    "DualCLIPLoader",
    "VAELoader",
    "ModelSamplingSD3",
    "EmptySD3LatentImage",
    "KSampler",
}


@pytest.fixture(scope="module", autouse=True)
def sd3_files() -> None:
    """The tiny SD3 files (made by install.sh; here too when missing: ~30 s and 1.8 GB, once)."""
    tiny_families.generate_all(MODELS)


def call(**extra: Any) -> dict[str, Any]:
    return {"prompt": "a lighthouse", "steps": 2, "seed": 5, "model": MMDIT_NAME, **extra}


@pytest.mark.parametrize("version", VERSIONS)
async def test_generate_image_with_a_split_file_sd3_model(
    comfy_factory: Callable[..., ComfyServer], version: str
) -> None:
    comfy = comfy_factory(version, family_models=True)
    async with connect("streamable-2025", comfy.url) as client:
        made = await client.call_tool("generate_image", call(width=64, height=96, negative_prompt="fog"))
        listed = await client.call_tool("list_models", {})
        unnamed = await client.call_tool("generate_image", {"prompt": "x", "steps": 1})
    image = await result_image(comfy, made)
    assert image.size == (64, 96)
    content = made.structured_content
    assert content is not None and content["family"] == "sd3" and content["model"] == MMDIT_NAME
    assert content["family_files"] == {
        "model": MMDIT_NAME,
        "text_encoders": [CLIP_L_NAME, CLIP_G_NAME],
        "vae": VAE_NAME,
    }
    assert content["family_defaults"] == {"cfg_scale": 4.5, "sampler": "euler", "scheduler": "sgm_uniform"}
    assert SD3_GRAPH <= prompt_classes(comfy, content)
    assert "CheckpointLoaderSimple" not in prompt_classes(comfy, content)
    # list_models: both image models, each with its family and files; names as before
    assert listed.structured_content is not None
    models = {m["name"]: m for m in listed.structured_content["image_models"]}
    assert CHECKPOINT_NAME in listed.structured_content["names"]
    assert models[MMDIT_NAME]["family"] == "sd3" and models[MMDIT_NAME]["runnable"]
    assert models[MMDIT_NAME]["text_encoders"] == [CLIP_L_NAME, CLIP_G_NAME]
    assert models[CHECKPOINT_NAME]["family"] == "sd"
    # two image models now: a call without model must name one (today's rule, across families)
    assert unnamed.is_error and MMDIT_NAME in str(unnamed.content) and CHECKPOINT_NAME in str(unnamed.content)


async def test_img2img_inpaint_batch_and_a_model_lora_with_the_sd3_family(
    comfy_factory: Callable[..., ComfyServer],
) -> None:
    comfy = comfy_factory(VERSIONS[0], family_models=True)
    original = source()
    lora = [{"name": LORA_NAME, "strength_model": 1.0}]
    async with connect("streamable-2025", comfy.url) as client:
        moved = await client.call_tool("img2img", call(input_image=b64(original), denoise=0.6, loras=lora))
        painted = await client.call_tool(
            "inpaint", call(input_image=b64(original), mask=b64(mask((64, 64), BOX)))
        )
        batch = await client.call_tool(
            "generate_batch",
            {
                "prompts": ["a fox"],
                "variations": 2,
                "seed": 3,
                "arguments": {"model": MMDIT_NAME, "steps": 1, "width": 64, "height": 64},
            },
        )
    out = await result_image(comfy, moved)
    assert out.size == (64, 64) and changed(out, original, (0, 0, 64, 64))
    assert moved.structured_content is not None
    classes = prompt_classes(comfy, moved.structured_content)
    assert {"LoraLoaderModelOnly", "VAEEncode", "UNETLoader"} <= classes and "LoraLoader" not in classes
    out = await result_image(comfy, painted)
    assert outside_identical(out, original, BOX) and changed(out, original, BOX)
    assert painted.structured_content is not None and painted.structured_content["family"] == "sd3"
    assert painted.structured_content["inpaint_conditioning"] == "noise_mask"
    assert not batch.is_error and batch.structured_content is not None
    items = batch.structured_content["items"]
    assert len(items) == 2 and all(i["parameters"]["family"] == "sd3" for i in items), items
