"""list_templates / run_template over the in-memory ComfyUI: the catalog, runnability, the derived
arguments and refusals before anything is queued (issue 23). The real packages: tests/integration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_bridge.comfyui.backend import NodeInput
from tests.unit.test_tools_fake import bridge, fake, text

CKPT = "v1-5-pruned-emaonly-fp16.safetensors"
NODES = {
    "CheckpointLoaderSimple": {"ckpt_name": NodeInput("COMBO", options=(CKPT,))},
    "CLIPTextEncode": {"text": NodeInput("STRING"), "clip": NodeInput("CLIP")},
    "VAEDecode": {"samples": NodeInput("LATENT"), "vae": NodeInput("VAE")},
    "SaveImage": {"images": NodeInput("IMAGE"), "filename_prefix": NodeInput("STRING")},
    "KSampler": {
        "model": NodeInput("MODEL"),
        "seed": NodeInput("INT", minimum=0, maximum=2**64 - 1, control_after_generate=True),
        "steps": NodeInput("INT", default=20, minimum=1, maximum=10000),
        "cfg": NodeInput("FLOAT", default=8.0, minimum=0.0, maximum=100.0),
        "sampler_name": NodeInput("COMBO", options=("euler", "euler_ancestral")),
        "scheduler": NodeInput("COMBO", options=("normal", "karras")),
        "positive": NodeInput("CONDITIONING"),
        "negative": NodeInput("CONDITIONING"),
        "latent_image": NodeInput("LATENT"),
        "denoise": NodeInput("FLOAT", default=1.0, minimum=0.0, maximum=1.0),
    },
}


def _node(
    node_id: int, kind: str, values: list[Any], inputs: list[tuple[str, str, int]], **more: Any
) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": kind,
        "mode": 0,
        "widgets_values": values,
        "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
        **more,
    }


def sd15_template() -> dict[str, Any]:
    model = {"name": CKPT, "url": "https://example.invalid/sd15", "directory": "checkpoints"}
    return {
        "nodes": [
            _node(4, "CheckpointLoaderSimple", [CKPT], [], properties={"models": [model]}),
            _node(6, "CLIPTextEncode", ["a bottle"], [("clip", "CLIP", 3)]),
            _node(7, "CLIPTextEncode", ["watermark"], [("clip", "CLIP", 5)]),
            _node(5, "EmptyLatentImage", [512, 512, 1], []),
            _node(
                3,
                "KSampler",
                [1, "randomize", 20, 8, "euler", "normal", 1],
                [("model", "MODEL", 1), ("positive", "C", 4), ("negative", "C", 6), ("latent_image", "L", 2)],
            ),
            _node(8, "VAEDecode", [], [("samples", "LATENT", 7), ("vae", "VAE", 8)]),
            _node(9, "SaveImage", ["SD1.5"], [("images", "IMAGE", 9)]),
            _node(15, "MarkdownNote", ["read me"], []),
        ],
        "links": [
            [1, 4, 0, 3, 0, "MODEL"],
            [2, 5, 0, 3, 3, "LATENT"],
            [3, 4, 1, 6, 0, "CLIP"],
            [4, 6, 0, 3, 1, "CONDITIONING"],
            [5, 4, 1, 7, 0, "CLIP"],
            [6, 7, 0, 3, 2, "CONDITIONING"],
            [7, 3, 0, 8, 0, "LATENT"],
            [8, 4, 2, 8, 1, "VAE"],
            [9, 8, 0, 9, 0, "IMAGE"],
        ],
    }


def package(root: Path) -> dict[str, Path]:
    folder = root / "templates"
    folder.mkdir()
    index = [
        {"title": "Getting Started", "type": "image", "templates": [
            {"name": "default", "title": "Image Generation", "description": "Text to image with SD1.5",
             "mediaType": "image"},
            {"name": "exotic", "title": "Exotic", "description": "Needs a node pack", "mediaType": "image"},
        ]}
    ]  # fmt: skip
    exotic = {"nodes": [_node(1, "SomePackNode", [1], [])], "links": []}
    files = {"index.json": index, "default.json": sd15_template(), "exotic.json": exotic}
    for name, data in files.items():
        (folder / name).write_text(json.dumps(data))
    return {name: folder / name for name in files}


@pytest.mark.anyio
async def test_runnable_exactly_when_the_named_file_is_installed(tmp_path: Path) -> None:
    models = {"checkpoints": ["tiny.safetensors"]}
    async with bridge(tmp_path, templates=package(tmp_path), extra_nodes=NODES, models=models) as (
        client,
        services,
    ):
        listed = await client.call_tool("list_templates", {})
        default = listed.structured_content["templates"][0]  # type: ignore[index]
        assert default["runnable"] is False
        assert default["missing"]["files"] == [
            {"name": CKPT, "folder": "checkpoints", "url": "https://example.invalid/sd15"}
        ]
        assert f"models/checkpoints/{CKPT} (https://example.invalid/sd15)" in text(listed)
        assert "node types SomePackNode" in text(listed)
        refused = await client.call_tool(
            "run_template", {"name": "default", "arguments": {"prompt": "a fox"}}
        )
        assert refused.is_error and f"missing: models/checkpoints/{CKPT}" in text(refused)
        assert fake(services).queued == []

        fake(services).models["checkpoints"].append(CKPT)
        listed = await client.call_tool("list_templates", {"runnable_only": True})
        assert [t["name"] for t in listed.structured_content["templates"]] == ["default"]  # type: ignore[index]
        inputs = listed.structured_content["templates"][0]["inputs"]  # type: ignore[index]
        assert inputs == {
            "prompt": "text",
            "negative_prompt": "text",
            "width": "int",
            "height": "int",
            "seed": "seed",
        }


@pytest.mark.anyio
async def test_run_template_fills_the_derived_arguments_and_validates_them(tmp_path: Path) -> None:
    models = {"checkpoints": [CKPT]}
    async with bridge(tmp_path, templates=package(tmp_path), extra_nodes=NODES, models=models) as (
        client,
        services,
    ):
        bad = await client.call_tool("run_template", {"name": "default", "arguments": {"steps": 3}})
        assert bad.is_error and "steps" in text(bad)
        wrong = await client.call_tool("run_template", {"name": "defualt"})
        assert wrong.is_error and "close: default" in text(wrong)
        assert fake(services).queued == []
        ran = await client.call_tool(
            "run_template",
            {"name": "default", "arguments": {"prompt": "a fox", "seed": 5, "width": 64, "height": 64}},
        )
        assert not ran.is_error, text(ran)
        (_id, prompt), *_ = fake(services).queued
        assert prompt["6"]["inputs"]["text"] == "a fox"
        assert prompt["7"]["inputs"]["text"] == "watermark"
        assert prompt["3"]["inputs"]["seed"] == 5 and prompt["5"]["inputs"]["width"] == 64
        assert prompt["9"]["inputs"]["filename_prefix"].startswith("mcp/")
        assert "15" not in prompt


@pytest.mark.anyio
async def test_query_category_and_pages(tmp_path: Path) -> None:
    async with bridge(tmp_path, templates=package(tmp_path), extra_nodes=NODES) as (client, _services):
        found = await client.call_tool("list_templates", {"query": "node pack"})
        assert [t["name"] for t in found.structured_content["templates"]] == ["exotic"]  # type: ignore[index]
        none = await client.call_tool("list_templates", {"category": "Video"})
        assert none.structured_content["total"] == 0  # type: ignore[index]
        bad = await client.call_tool("list_templates", {"page": 0})
        assert bad.is_error and "page starts at 1" in text(bad)
