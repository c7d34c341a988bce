"""edit_image on a real ComfyUI (0.3.52 and 0.3.75): the graph of every edit mode this ComfyUI offers
passes ComfyUI's own prompt validation against the real node definitions; the refusals queue nothing.

The test bed cannot run any edit family: their text encoders (T5-XXL, Qwen2.5-VL 7B, Mistral 24B) are
gigabytes and nothing is downloaded. The model files here are placeholders with the names ComfyUI's
templates use and real safetensors *headers* (the tensor names and shapes family detection reads) but
no tensor data: the bridge detects their families from them, ComfyUI lists them, validation passes
(only a validated prompt reaches ComfyUI's history) and the first model loader fails on the missing
data. That failure is what these tests expect; a refusal by validation fails them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult

from testbed.mcp_client import connect
from testbed.server import ComfyServer
from tests.unit import model_headers as mh
from tests.unit.test_edit_tool import SUPPORT
from tests.unit.test_tools_fake import png_b64

pytestmark = pytest.mark.anyio

PLACEHOLDERS: dict[str, dict[str, mh.Shapes]] = {
    "diffusion_models": {
        "flux1-dev-kontext_fp8_scaled.safetensors": mh.flux1(),
        "qwen_image_edit_fp8_e4m3fn.safetensors": mh.qwen_image(),
        "qwen_image_edit_2509_fp8_e4m3fn.safetensors": mh.qwen_image(),
        "flux2_dev_fp8mixed.safetensors": mh.flux2(),
    },
    **SUPPORT,  # the encoders and VAEs the families' templates name
}
LOADERS = {"UNETLoader", "CLIPLoader", "DualCLIPLoader", "VAELoader"}
# mode, model file, references, the mode's own nodes in the graph
KONTEXT, QWEN, QWEN_PLUS, FLUX2 = list(PLACEHOLDERS["diffusion_models"])
CASES = [
    ("flux1_kontext", KONTEXT, 3, {"ReferenceLatent", "FluxKontextImageScale", "FluxGuidance"}),
    ("qwen_image_edit", QWEN, 0, {"TextEncodeQwenImageEdit", "CFGNorm", "ModelSamplingAuraFlow"}),
    ("qwen_image_edit_plus", QWEN_PLUS, 2, {"TextEncodeQwenImageEditPlus", "CFGNorm"}),
    (
        "flux2",
        FLUX2,
        5,
        {"ReferenceLatent", "Flux2Scheduler", "EmptyFlux2LatentImage", "SamplerCustomAdvanced"},
    ),
]
OFFERED = {
    "0.3.75": ["flux1_kontext", "flux2", "qwen_image_edit", "qwen_image_edit_plus"],
    "0.3.52": ["flux1_kontext", "qwen_image_edit"],  # no TextEncodeQwenImageEditPlus, no Flux.2 nodes
}


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def write_header_without_data(path: Path, shapes: mh.Shapes) -> None:
    """A safetensors header (real names, shapes and offsets) and nothing after it."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        count = 2
        for n in shape:
            count *= n
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + count]}
        offset += count
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


@pytest.fixture
def placeholders(comfy: ComfyServer) -> Iterator[list[Path]]:
    """The placeholder files in the server's own models folder, removed after the test (shared server)."""
    made = []
    for folder, files in PLACEHOLDERS.items():
        for name, shapes in files.items():
            path = comfy.base_dir / "models" / folder / name
            write_header_without_data(path, shapes)
            made.append(path)
    yield made
    for path in made:
        path.unlink()


def history_entry(comfy: ComfyServer) -> dict[str, Any]:
    latest = comfy.get_json("/history?max_items=1")
    assert isinstance(latest, dict)
    (entry,) = latest.values()
    return entry


async def test_with_no_edit_model_edit_image_says_what_to_install(comfy: ComfyServer) -> None:
    async with connect("streamable-2025", comfy.url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        before = comfy.get_json("/history")
        result = await client.call_tool("edit_image", {"input_image": png_b64((64, 64)), "instruction": "x"})
        sd = await client.call_tool(
            "edit_image",
            {"input_image": png_b64((64, 64)), "instruction": "x", "model": "tiny-sd15.safetensors"},
        )
        assert comfy.get_json("/history") == before  # nothing was queued
    assert tools["edit_image"].input_schema["properties"]["family"]["enum"] == OFFERED[comfy.version]
    assert result.is_error
    assert "no edit model is installed. This ComfyUI can edit with (install one):" in text(result)
    for mode in OFFERED[comfy.version]:
        assert f"- {mode} (" in text(result)
    assert "tiny-sd15.safetensors is a Stable Diffusion checkpoint, which cannot edit by instruction" in text(
        sd
    )
    assert "img2img" in text(sd) and "inpaint" in text(sd)


async def test_each_offered_mode_builds_a_graph_that_comfyui_validates(
    comfy: ComfyServer, placeholders: list[Path]
) -> None:
    ran = []
    async with connect("streamable-2025", comfy.url) as client:
        for mode, model, references, nodes in CASES:
            if mode not in OFFERED[comfy.version]:
                continue
            call = {
                "input_image": png_b64((96, 64)),
                "instruction": "make it night",
                "model": model,
                "reference_images": [png_b64((64, 64))] * references,
                "seed": 3,
                "steps": 2,
            }
            result = await client.call_tool("edit_image", call)
            where = f"{mode}: {text(result)}"
            assert result.is_error, where
            assert "refused" not in text(result), where  # not ComfyUI's validation: the loader's failure
            assert "ComfyUI failed in node" in text(result), where
            entry = history_entry(comfy)
            graph = {node["class_type"] for node in entry["prompt"][2].values()}
            assert nodes | {"SaveImage", "VAEDecode"} <= graph, where
            loads = sum(node["class_type"] == "LoadImage" for node in entry["prompt"][2].values())
            assert loads == references + 1, where
            failed = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
            assert failed["node_type"] in LOADERS, where
            ran.append(mode)
    assert ran == [m for m, *_ in CASES if m in OFFERED[comfy.version]]


async def test_refusals_queue_nothing(comfy: ComfyServer, placeholders: list[Path]) -> None:
    async with connect("streamable-2025", comfy.url) as client:
        before = comfy.get_json("/history")
        base = {"input_image": png_b64((64, 64)), "instruction": "x"}
        kontext = {**base, "model": KONTEXT}
        many = await client.call_tool("edit_image", {**kontext, "reference_images": [png_b64((8, 8))] * 4})
        single = {
            **base,
            "model": "qwen_image_edit_fp8_e4m3fn.safetensors",
            "reference_images": [base["input_image"]],
        }
        one = await client.call_tool("edit_image", single)
        url = await client.call_tool("edit_image", {**kontext, "input_image": "https://example.com/a.png"})
        assert comfy.get_json("/history") == before
    if comfy.version == "0.3.52":  # more than any family here takes
        assert "4 reference images were given; the edit families here take at most: flux1_kontext 3" in text(
            many
        )
    else:
        assert "takes at most 3 reference images besides input_image; 4 were given" in text(many)
    assert "takes no reference images besides input_image; 1 were given" in text(one)
    assert "fetch_url_hosts" in text(url)
