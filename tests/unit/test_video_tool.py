"""generate_video against a ComfyUI in memory: which families it offers, how it picks their model files,
and every bad argument refused before anything is queued. The graphs themselves are checked by ComfyUI's
own validation in tests/integration/test_generate_video.py."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult
from PIL import Image

from mcp_bridge.bridge import build_mcp
from mcp_bridge.comfyui.backend import NodeInput
from mcp_bridge.mcp.apps import VIEW_URI
from mcp_bridge.tools.services import Services
from tests.unit.fake_comfy import FakeComfy, fake_services
from tests.unit.test_tools_fake import png_b64

pytestmark = pytest.mark.anyio

BIG = 16384


def frame(size: tuple[int, int], low: int, step: int, frames: tuple[int, int, int]) -> dict[str, NodeInput]:
    """A video latent node's width, height (default, min, step) and length (default, min, step) inputs."""
    width, height = size
    default, first, every = frames
    side = {"minimum": low, "maximum": BIG, "step": step}
    return {
        "width": NodeInput("INT", default=width, **side),
        "height": NodeInput("INT", default=height, **side),
        "length": NodeInput("INT", default=default, minimum=first, maximum=BIG, step=every),
    }


# The video nodes' inputs as ComfyUI 0.3.52/0.3.75 declare them (comfy_extras/nodes_wan.py, nodes_lt.py,
# nodes_video_model.py); the other classes only need to exist.
VIDEO_NODES: dict[str, dict[str, NodeInput]] = {
    "WanImageToVideo": frame((832, 480), 16, 16, (81, 1, 4)),
    "Wan22ImageToVideoLatent": frame((1280, 704), 32, 32, (49, 1, 4)),
    "EmptyLTXVLatentVideo": frame((768, 512), 64, 32, (97, 1, 8)),
    "LTXVImgToVideo": frame((768, 512), 64, 32, (97, 9, 8)),
    "SVD_img2vid_Conditioning": {
        "width": NodeInput("INT", default=1024, minimum=16, maximum=BIG, step=8),
        "height": NodeInput("INT", default=576, minimum=16, maximum=BIG, step=8),
        "video_frames": NodeInput("INT", default=14, minimum=1, maximum=4096),
        "motion_bucket_id": NodeInput("INT", default=127, minimum=1, maximum=1023),
    },
    "CreateVideo": {"fps": NodeInput("FLOAT", default=30.0, minimum=1.0, maximum=120.0)},
    "SamplerCustom": {"cfg": NodeInput("FLOAT", default=8.0, minimum=0.0, maximum=100.0, step=0.1)},
    "LTXVScheduler": {"steps": NodeInput("INT", default=20, minimum=1, maximum=10000)},
    **{
        name: {}
        for name in (
            "UNETLoader CLIPLoader VAELoader ModelSamplingSD3 CLIPVisionLoader CLIPVisionEncode SaveVideo "
            "PrimitiveFloat LTXVConditioning KSamplerSelect LTXVPreprocess ImageOnlyCheckpointLoader "
            "VideoLinearCFGGuidance"
        ).split()
    },
}
WAN21_T2V = {
    "diffusion_models": ["wan/wan2.1_t2v_1.3B_fp16.safetensors", "flux1-dev.safetensors"],
    "text_encoders": ["clip_l.safetensors", "umt5_xxl_fp8_e4m3fn_scaled.safetensors"],
    "vae": ["ae.safetensors", "wan_2.1_vae.safetensors"],
}
LTXV = {
    "checkpoints": ["tiny.safetensors", "ltx-video-2b-v0.9.5.safetensors"],
    "text_encoders": ["t5xxl_fp16.safetensors"],
}
SVD = {"checkpoints": ["tiny.safetensors", "svd_xt.safetensors"]}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def bridge(root: Path, **models: list[str]) -> AsyncIterator[tuple[Client, FakeComfy]]:
    installed = {"checkpoints": ["tiny.safetensors"], **models}
    async with fake_services(root, models=installed, extra_nodes=VIDEO_NODES) as services:
        async with Client(build_mcp(services)) as client:
            yield client, comfy_of(services)


def comfy_of(services: Services) -> FakeComfy:
    assert isinstance(services.comfy, FakeComfy)
    return services.comfy


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def by_class(prompt: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["class_type"]: node["inputs"] for node in prompt.values()}


async def test_with_no_video_model_the_tool_says_what_to_install_and_list_models_reports_each_family(
    tmp_path: Path,
) -> None:
    async with bridge(tmp_path) as (client, comfy):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("generate_video", {"prompt": "a fox runs"})
        models = await client.call_tool("list_models", {})
    description = tools["generate_video"].description or ""
    assert description.startswith("Unavailable: no video model is installed")
    assert tools["generate_video"].input_schema["properties"]["family"]["enum"] == [
        "ltxv",
        "svd",
        "wan21",
        "wan22",
    ]
    assert result.is_error
    message = text(result)
    assert "no video model for text-to-video is installed; supported: ltxv, svd, wan21, wan22" in message
    for wanted in ("wan2.1_t2v_1.3B_fp16.safetensors in models/diffusion_models", "umt5_xxl", "t5xxl_fp16"):
        assert wanted in message
    assert comfy.queued == []
    families = {f["family"]: f for f in (models.structured_content or {})["video_families"]}
    assert set(families) == {"ltxv", "svd", "wan21", "wan22"}
    svd = families["svd"]["modes"]
    assert [(m["mode"], m["available"]) for m in svd] == [("i2v", False)]
    assert svd[0]["missing"] == ["model: a file like svd_xt.safetensors in models/checkpoints"]


async def test_an_installed_family_runs_with_its_own_files_picked_among_others(tmp_path: Path) -> None:
    async with bridge(tmp_path, **WAN21_T2V) as (client, comfy):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("generate_video", {"prompt": "a fox runs", "frames": 17, "seed": 5})
        models = await client.call_tool("list_models", {})
    assert "Installed at start: wan21 t2v" in (tools["generate_video"].description or "")
    assert (tools["generate_video"].meta or {})["ui"]["resourceUri"] == VIEW_URI  # the result view
    assert not result.is_error, text(result)
    ((_id, prompt),) = comfy.queued
    nodes = by_class(prompt)
    assert nodes["UNETLoader"]["unet_name"] == "wan/wan2.1_t2v_1.3B_fp16.safetensors"
    assert nodes["CLIPLoader"]["clip_name"] == "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
    assert nodes["VAELoader"]["vae_name"] == "wan_2.1_vae.safetensors"
    wan = nodes["WanImageToVideo"]
    assert (wan["width"], wan["height"], wan["length"]) == (832, 480, 17)
    assert "start_image" not in wan
    assert nodes["KSampler"]["seed"] == 5
    assert nodes["CreateVideo"]["fps"] == 16.0
    assert nodes["SaveVideo"]["format"] == "mp4"
    wan21 = next(f for f in (models.structured_content or {})["video_families"] if f["family"] == "wan21")
    t2v, i2v = wan21["modes"]
    assert (t2v["mode"], t2v["available"], i2v["mode"], i2v["available"]) == ("t2v", True, "i2v", False)
    assert t2v["files"]["text_encoder"] == "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
    assert any("clip_vision_h.safetensors in models/clip_vision" in m for m in i2v["missing"])


async def test_ltxv_image_to_video_sends_the_fps_to_the_conditioning_and_the_video(tmp_path: Path) -> None:
    async with bridge(tmp_path, **LTXV) as (client, comfy):
        arguments = {"prompt": "waves", "input_image": png_b64((64, 64)), "frames": 25, "fps": 12}
        result = await client.call_tool("generate_video", arguments)
    assert not result.is_error, text(result)
    ((_id, prompt),) = comfy.queued
    nodes = by_class(prompt)
    assert nodes["LTXVImgToVideo"]["length"] == 25
    assert nodes["PrimitiveFloat"]["value"] == 12.0
    fps_link = nodes["CreateVideo"]["fps"]
    assert prompt[fps_link[0]]["class_type"] == "PrimitiveFloat"
    assert nodes["LTXVConditioning"]["frame_rate"] == fps_link
    assert nodes["LoadImage"]["image"].startswith("mcp/")


async def test_several_installed_families_need_a_family_and_svd_needs_a_still(tmp_path: Path) -> None:
    both = {**LTXV, "checkpoints": [*LTXV["checkpoints"], "svd_xt.safetensors"]}
    async with bridge(tmp_path, **both) as (client, comfy):
        still = png_b64((64, 64))
        several = await client.call_tool("generate_video", {"prompt": "waves", "input_image": still})
        svd = await client.call_tool(
            "generate_video", {"family": "svd", "input_image": still, "frames": 25, "motion": 60}
        )
    assert several.is_error
    assert "can do image-to-video here (ltxv, svd): name one with family" in text(several)
    assert not svd.is_error, text(svd)
    ((_id, prompt),) = comfy.queued
    nodes = by_class(prompt)
    assert nodes["ImageOnlyCheckpointLoader"]["ckpt_name"] == "svd_xt.safetensors"
    conditioning = nodes["SVD_img2vid_Conditioning"]
    assert (conditioning["video_frames"], conditioning["motion_bucket_id"]) == (25, 60)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        pytest.param({"fps": 0}, "fps: Input should be greater than or equal to 1", id="fps-0"),
        pytest.param({"fps": 1000}, "fps: Input should be less than or equal to 60", id="fps-1000"),
        pytest.param({"frames": 0}, "frames: Input should be greater than or equal to 1", id="zero-frames"),
        pytest.param({"frames": 32}, "frames must be 1 + a multiple of 4 for wan21 t2v (1, 5, 9,", id="4n+1"),
        pytest.param({"frames": 133}, "frames: Input should be less than or equal to 129", id="frames-cap"),
        pytest.param({"width": 840}, "width: Input should be a multiple of 16", id="size-step"),
        pytest.param({"family": "mochi"}, "unknown family 'mochi'; this ComfyUI supports ltxv", id="family"),
        pytest.param({"family": "svd"}, "svd does no text-to-video: it needs an input_image", id="svd-t2v"),
        pytest.param({"family": "ltxv"}, "ltxv text-to-video is not installed; it needs", id="absent"),
        pytest.param({"motion": 3}, "wan21 t2v does not take motion", id="not-this-family"),
        pytest.param({"prompt": ""}, "prompt: String should have at least 1 character", id="empty-prompt"),
        pytest.param({"model": "flux1-dev.safetensors", "frames": 5}, None, id="model-override"),
    ],
)  # fmt: skip
async def test_bad_video_arguments_are_refused_before_anything_is_queued(
    tmp_path: Path, arguments: dict[str, Any], expected: str | None
) -> None:
    async with bridge(tmp_path, **WAN21_T2V) as (client, comfy):
        result = await client.call_tool("generate_video", {"prompt": "a fox", **arguments})
    if expected is None:
        assert not result.is_error, text(result)
        assert by_class(comfy.queued[0][1])["UNETLoader"]["unet_name"] == "flux1-dev.safetensors"
        return
    assert result.is_error
    assert expected in text(result)
    assert comfy.queued == []
    assert not list((tmp_path / "input").rglob("*.*"))  # nothing staged either


@pytest.mark.parametrize("name", ["clip.mp4", "comfy://output/mcp/clip_00001_.webm"])
async def test_a_video_where_a_still_is_needed_is_refused(tmp_path: Path, name: str) -> None:
    async with bridge(tmp_path, **SVD) as (client, comfy):
        (tmp_path / "input" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
        result = await client.call_tool("generate_video", {"input_image": name})
    assert result.is_error
    assert "input_image is a video" in text(result)
    assert "a still image (png, jpeg or webp)" in text(result)
    assert comfy.queued == []


async def test_an_animated_image_as_the_start_image_is_refused(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (32, 32), (n * 60, 0, 0)) for n in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    animated = base64.b64encode(buffer.getvalue()).decode()
    async with bridge(tmp_path, **SVD) as (client, comfy):
        result = await client.call_tool("generate_video", {"input_image": animated})
    assert result.is_error
    assert "animated images are not accepted; send a single frame" in text(result)
    assert comfy.queued == []


async def test_a_family_whose_nodes_comfyui_lacks_is_not_offered_and_without_any_there_is_no_tool(
    tmp_path: Path,
) -> None:
    no_ltxv = {
        k: v for k, v in VIDEO_NODES.items() if not k.startswith("LTXV") and k != "EmptyLTXVLatentVideo"
    }
    async with fake_services(tmp_path, models=SVD, extra_nodes=no_ltxv) as services:
        async with Client(build_mcp(services)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            refused = await client.call_tool("generate_video", {"family": "ltxv", "prompt": "waves"})
            models = await client.call_tool("list_models", {})
    assert tools["generate_video"].input_schema["properties"]["family"]["enum"] == ["svd", "wan21", "wan22"]
    assert "unknown family 'ltxv'; this ComfyUI supports svd, wan21, wan22" in text(refused)
    assert [f["family"] for f in (models.structured_content or {})["video_families"]] == [
        "svd",
        "wan21",
        "wan22",
    ]
    async with fake_services(tmp_path / "bare", models=SVD) as services:
        async with Client(build_mcp(services)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
    assert "generate_video" not in names
