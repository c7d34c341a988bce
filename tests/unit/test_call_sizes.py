"""Every generation is checked against what ComfyUI will be asked to make — the result's side and pixels,
an upscale's input times the model's scale, a video's frames x width x height — before anything is
staged or queued, and the refusal has the numbers (issue 24 #2)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from PIL import Image

from mcp_bridge.bridge import build_mcp
from tests.unit.fake_comfy import FakeComfy, fake_services
from tests.unit.test_tools_fake import text
from tests.unit.test_video_tool import VIDEO_NODES, WAN21_T2V

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def png(size: tuple[int, int]) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 120, 200)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


async def refused(tmp_path: Path, tool: str, arguments: dict[str, Any], *words: str) -> None:
    """``tool`` refuses ``arguments`` naming ``words``, with nothing queued and nothing staged."""
    models = {"checkpoints": ["tiny.safetensors"], "upscale_models": ["x4.safetensors"], **WAN21_T2V}
    nodes = {**VIDEO_NODES, "SaveAnimatedWEBP": {}}
    async with fake_services(tmp_path, models=models, extra_nodes=nodes) as services:
        async with Client(build_mcp(services)) as client:
            result = await client.call_tool(tool, arguments)
        comfy = services.comfy
        assert isinstance(comfy, FakeComfy)
        assert result.is_error, result.structured_content
        assert all(word in text(result) for word in words), text(result)
        assert comfy.queued == []
    assert not [p for p in (tmp_path / "input").rglob("*") if p.is_file()]  # nothing staged


@pytest.mark.parametrize(
    ("tool", "arguments", "words"),
    [
        pytest.param("inpaint", {"input_image": png((2560, 64)), "mask": png((2560, 64)), "prompt": "x"},
                     ("2560x64", "largest side of 2048"), id="inpaint-keeps-a-too-wide-source"),
        pytest.param("img2img", {"input_image": png((4096, 64)), "prompt": "x"},
                     ("4096x64", "largest side of 2048"), id="img2img-keeps-a-too-wide-source"),
        pytest.param("upscale_image", {"input_image": png((1024, 1024))},
                     ("1024x1024", "x4", "4096x4096", "largest side of 2048"), id="upscale-times-scale"),
        pytest.param("upscale_image", {"input_image": png((1024, 1536)), "upscale_model": "x4.safetensors"},
                     ("1024x1536", "4096x6144"), id="upscale-named-model"),
        pytest.param("images_to_video", {"images": [png((2048, 2048))] * 40},
                     ("40 frames of 2048x2048 = 167772160", "video budget of 134217728"), id="video-budget"),
        pytest.param("images_to_animation", {"images": [png((4096, 64)), png((64, 64))]},
                     ("frames of 4096x64", "largest side of 2048"), id="animation-frame-side"),
        pytest.param("generate_video", {"prompt": "waves", "width": 2048, "height": 2048, "frames": 129},
                     ("129 frames of 2048x2048 = 541065216", "134217728"), id="generate-video-budget"),
    ],
)  # fmt: skip
async def test_a_call_over_the_caps_is_refused_with_its_numbers_before_anything_is_staged(
    tmp_path: Path, tool: str, arguments: dict[str, Any], words: tuple[str, ...]
) -> None:
    await refused(tmp_path, tool, arguments, *words)


async def test_an_upscale_within_the_caps_runs(tmp_path: Path) -> None:
    async with fake_services(tmp_path) as services, Client(build_mcp(services)) as client:
        result = await client.call_tool("upscale_image", {"input_image": png((512, 256))})
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    (image,) = result.structured_content["images"]
    assert (image["width"], image["height"]) == (2048, 1024)
