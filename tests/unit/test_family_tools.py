"""The image tools with a split-file family, against the in-memory ComfyUI (header-only model files):
default_model naming a diffusion model, arguments the family does not use, a missing encoder refused
before anything is queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcp_bridge.comfyui.backend import NodeInput
from mcp_bridge.config import Settings
from tests.unit import model_headers as mh
from tests.unit.test_tools_fake import bridge, fake, text

pytestmark = pytest.mark.anyio
SD3_NODES: dict[str, dict[str, NodeInput]] = {
    "UNETLoader": {},
    "DualCLIPLoader": {"type": NodeInput("COMBO", options=("sdxl", "sd3", "flux"))},
    "TripleCLIPLoader": {},
    "VAELoader": {},
    "EmptySD3LatentImage": {},
    "ModelSamplingSD3": {},
    "LoraLoaderModelOnly": {},
}
FILES = {
    "checkpoints": {"tiny.safetensors": mh.sd15_checkpoint()},
    "diffusion_models": {"mmdit.safetensors": mh.mmdit(depth=2, hidden=128)},
    "text_encoders": {
        "clip_l.safetensors": mh.ENCODERS["clip_l"],
        "clip_g.safetensors": mh.ENCODERS["clip_g"],
    },
    "vae": {"vae16.safetensors": mh.vae(16)},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def models(root: Path, without: str = "") -> dict[str, list[str]]:
    listed: dict[str, list[str]] = {}
    for folder, files in FILES.items():
        for name, shapes in files.items():
            if name != without:
                mh.write_header_only(root / "models" / folder / name, shapes, data=False)
                listed.setdefault(folder, []).append(name)
    return listed


def classes(prompt: dict[str, Any]) -> set[str]:
    return {node["class_type"] for node in prompt.values()}


async def test_default_model_may_name_a_diffusion_model_and_unused_arguments_are_reported(
    tmp_path: Path,
) -> None:
    settings = Settings(default_model="mmdit.safetensors")
    async with bridge(tmp_path, settings, models=models(tmp_path), extra_nodes=SD3_NODES) as (
        client,
        services,
    ):
        result = await client.call_tool(
            "generate_image", {"prompt": "a fox", "negative_prompt": "fog", "cfg_scale": 1.0, "steps": 2}
        )
        assert not result.is_error, text(result)
        ((_, prompt),) = fake(services).queued
    assert {"UNETLoader", "DualCLIPLoader", "ModelSamplingSD3", "EmptySD3LatentImage"} <= classes(prompt)
    content = result.structured_content or {}
    assert content["family"] == "sd3" and content["model"] == "mmdit.safetensors"
    assert content["not_used"] == {
        "negative_prompt": "at cfg_scale 1 the sampler ignores the negative prompt"
    }
    # the family's defaults for what the caller left out (the fake has no sgm_uniform scheduler: not used)
    assert content["family_defaults"] == {"width": 1024, "height": 1024, "sampler": "euler"}


async def test_a_missing_encoder_is_refused_before_anything_is_queued(tmp_path: Path) -> None:
    listed = models(tmp_path, without="clip_g.safetensors")
    async with bridge(tmp_path, models=listed, extra_nodes=SD3_NODES) as (client, services):
        result = await client.call_tool("generate_image", {"prompt": "a fox", "model": "mmdit.safetensors"})
        unnamed = await client.call_tool("generate_image", {"prompt": "a fox"})
        assert not fake(services).queued
    assert result.is_error
    assert "needs a CLIP-G text encoder: install clip_g.safetensors in models/text_encoders" in text(result)
    # the SD3 model is not runnable, but it is an image model: the checkpoint is not "the only one" silently
    assert unnamed.is_error or "mmdit" not in text(unnamed)
