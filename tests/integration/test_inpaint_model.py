"""inpaint with an inpainting checkpoint on a real ComfyUI: InpaintModelConditioning runs, the pixels
outside the mask stay; an ordinary checkpoint keeps the latent noise mask; outpaint takes the same switch.

The inpainting checkpoint is a second checkpoint: only this test's own server sees it
(``ComfyServer(inpaint_models=True)``), so the session servers keep one checkpoint and the tests that
omit ``model`` keep testing the "only one installed" default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PIL import ImageChops
from test_inpaint import BOX, args, b64, changed, mask, outside_identical, result_image, source

from testbed import comfy_api
from testbed.mcp_client import connect
from testbed.server import VERSIONS, ComfyServer
from testbed.tiny_models import CHECKPOINT_NAME, INPAINT_CHECKPOINT_NAME

pytestmark = pytest.mark.anyio


def prompt_classes(comfy: ComfyServer, content: dict[str, Any]) -> set[str]:
    """The node classes of the prompt ComfyUI ran for a call (from its history)."""
    (prompt_id,) = content["prompt_ids"]
    entry = comfy_api.history(comfy.url, prompt_id)
    assert entry is not None and entry["status"]["status_str"] == "success", entry
    return {node["class_type"] for node in entry["prompt"][2].values()}


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_inpainting_checkpoint_runs_its_own_conditioning_and_keeps_the_outside(
    comfy_factory: Callable[..., ComfyServer], version: str
) -> None:
    comfy = comfy_factory(version, inpaint_models=True)
    original = source()
    given = {"input_image": b64(original), "mask": b64(mask((64, 64), BOX))}
    async with connect("streamable-2025", comfy.url) as client:
        listed = await client.call_tool("list_models", {})
        model = await client.call_tool("inpaint", args(**given, model=INPAINT_CHECKPOINT_NAME))
        plain = await client.call_tool("inpaint", args(**given, model=CHECKPOINT_NAME))
        grown = await client.call_tool(
            "outpaint", args(input_image=given["input_image"], right=32, model=INPAINT_CHECKPOINT_NAME)
        )
    assert not listed.is_error and listed.structured_content is not None
    assert INPAINT_CHECKPOINT_NAME in str(listed.structured_content) and CHECKPOINT_NAME in str(
        listed.structured_content
    )
    out = await result_image(comfy, model)
    assert outside_identical(out, original, BOX) and changed(out, original, BOX)
    assert model.structured_content is not None
    assert model.structured_content["inpaint_conditioning"] == "model"
    classes = prompt_classes(comfy, model.structured_content)
    assert "InpaintModelConditioning" in classes
    assert not classes & {"VAEEncode", "SetLatentNoiseMask"}
    out = await result_image(comfy, plain)
    assert outside_identical(out, original, BOX) and changed(out, original, BOX)
    assert plain.structured_content is not None
    assert plain.structured_content["inpaint_conditioning"] == "noise_mask"
    classes = prompt_classes(comfy, plain.structured_content)
    assert {"VAEEncode", "SetLatentNoiseMask"} <= classes and "InpaintModelConditioning" not in classes
    # outpaint declares the same switch: the padded canvas is conditioned, the original stays.
    out = await result_image(comfy, grown)
    assert out.size == (96, 64)
    assert ImageChops.difference(out.crop((0, 0, 64, 64)), original).getbbox() is None
    assert grown.structured_content is not None
    assert grown.structured_content["inpaint_conditioning"] == "model"
    classes = prompt_classes(comfy, grown.structured_content)
    assert {"ImagePadForOutpaint", "InpaintModelConditioning"} <= classes
    assert not classes & {"VAEEncode", "SetLatentNoiseMask"}
