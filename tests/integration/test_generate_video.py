"""generate_video on a real ComfyUI (0.3.52 and 0.3.75): what it says with no video model installed, and
that the graph it builds for each family and mode passes ComfyUI's own prompt validation against the real
node definitions.

The test bed cannot run any video family (their encoders are gigabytes; nothing is downloaded): the model
files here are empty placeholders with the names ComfyUI's examples use. A call then passes validation
(only a validated prompt reaches ComfyUI's queue and history) and fails in its first model loader, which
cannot read an empty file. That failure is what these tests expect; a refusal by validation fails them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult

from testbed.mcp_client import connect
from testbed.server import ComfyServer
from tests.unit.test_tools_fake import png_b64

pytestmark = pytest.mark.anyio

PLACEHOLDERS = {
    "diffusion_models": [
        "wan2.1_t2v_1.3B_fp16.safetensors",
        "wan2.1_i2v_480p_14B_fp16.safetensors",
        "wan2.2_ti2v_5B_fp16.safetensors",
    ],
    "text_encoders": ["umt5_xxl_fp8_e4m3fn_scaled.safetensors", "t5xxl_fp16.safetensors"],
    "vae": ["wan_2.1_vae.safetensors", "wan2.2_vae.safetensors"],
    "clip_vision": ["clip_vision_h.safetensors"],
    "checkpoints": ["ltx-video-2b-v0.9.5.safetensors", "svd_xt.safetensors"],
}
WAN_LOADERS = {"UNETLoader", "CLIPLoader", "VAELoader", "CLIPVisionLoader"}
LTXV_LOADERS = {"CheckpointLoaderSimple", "CLIPLoader"}
SMALL = {"width": 64, "height": 64}  # nothing is sampled
# family, mode, arguments, the family's own nodes in the graph, the loaders that may fail first
CASES = [
    ("wan21", "t2v", {**SMALL, "frames": 5}, {"WanImageToVideo"}, WAN_LOADERS),
    ("wan21", "i2v", {**SMALL, "frames": 5}, {"WanImageToVideo", "CLIPVisionEncode"}, WAN_LOADERS),
    ("wan22", "t2v", {**SMALL, "frames": 5}, {"Wan22ImageToVideoLatent"}, WAN_LOADERS),
    ("wan22", "i2v", {**SMALL, "frames": 5}, {"Wan22ImageToVideoLatent", "LoadImage"}, WAN_LOADERS),
    ("ltxv", "t2v", {**SMALL, "frames": 9}, {"EmptyLTXVLatentVideo", "LTXVConditioning"}, LTXV_LOADERS),
    ("ltxv", "i2v", {**SMALL, "frames": 9}, {"LTXVImgToVideo", "LTXVPreprocess"}, LTXV_LOADERS),
    ("svd", "i2v", {**SMALL, "frames": 14}, {"SVD_img2vid_Conditioning"}, {"ImageOnlyCheckpointLoader"}),
]


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


@pytest.fixture
def placeholders(comfy: ComfyServer) -> Iterator[list[Path]]:
    """Empty model files in the server's own models folder, removed after the test (the server is shared)."""
    made = []
    for folder, names in PLACEHOLDERS.items():
        for name in names:
            path = comfy.base_dir / "models" / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
            made.append(path)
    yield made
    for path in made:
        path.unlink()


async def test_with_no_video_model_generate_video_says_what_to_install(comfy: ComfyServer) -> None:
    async with connect("streamable-2025", comfy.url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        models = await client.call_tool("list_models", {})
        result = await client.call_tool("generate_video", {"prompt": "a fox runs through snow"})
        still = await client.call_tool("generate_video", {"family": "svd", "input_image": png_b64((64, 64))})
    tool = tools["generate_video"]
    assert (tool.description or "").startswith("Unavailable: no video model is installed")
    assert tool.input_schema["properties"]["family"]["enum"] == ["ltxv", "svd", "wan21", "wan22"]
    families = {f["family"]: f for f in (models.structured_content or {})["video_families"]}
    assert set(families) == {"ltxv", "svd", "wan21", "wan22"}
    assert not any(mode["available"] for family in families.values() for mode in family["modes"])
    assert result.is_error
    assert "no video model for text-to-video is installed; supported: ltxv, svd, wan21, wan22" in text(result)
    assert "wan2.2_ti2v_5B_fp16.safetensors in models/diffusion_models" in text(result)
    assert still.is_error
    needs = "svd image-to-video is not installed; it needs model: a file like svd_xt.safetensors"
    assert needs in text(still)


async def test_each_family_builds_a_graph_that_comfyui_validates(
    comfy: ComfyServer, placeholders: list[Path]
) -> None:
    async with connect("streamable-2025", comfy.url) as client:
        models = await client.call_tool("list_models", {})
        families = {f["family"]: f for f in (models.structured_content or {})["video_families"]}
        assert all(m["available"] for f in families.values() for m in f["modes"]), families
        for family, mode, arguments, nodes, loaders in CASES:
            call: dict[str, Any] = {"family": family, "seed": 3, **arguments}
            if family != "svd":
                call["prompt"] = "a paper boat on a river"
            if mode == "i2v":
                call["input_image"] = png_b64((64, 64))
            result = await client.call_tool("generate_video", call)
            where = f"{family} {mode}: {text(result)}"
            assert result.is_error, where
            assert "refused" not in text(result), where  # not ComfyUI's validation: the loader's failure
            assert "ComfyUI failed in node" in text(result), where
            latest = comfy.get_json("/history?max_items=1")
            assert isinstance(latest, dict)
            (entry,) = latest.values()  # the prompt this call queued, as ComfyUI validated and ran it
            graph = {node["class_type"] for node in entry["prompt"][2].values()}
            assert nodes | {"CreateVideo", "SaveVideo"} <= graph, where
            failed = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
            assert failed["node_type"] in loaders, where
