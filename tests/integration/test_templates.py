"""ComfyUI's own templates on a real ComfyUI (the packages the test bed pins), through a real MCP client:
list_templates marks the SD1.5 "default" template runnable exactly when its checkpoint file is in
models/checkpoints, run_template refuses it before anything is queued while the file is missing and runs
it end to end with the tiny checkpoint under the template's file name (issue 23).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _mcp_clients import ok, text

from testbed.mcp_client import connect
from testbed.server import MODELS, VERSIONS, ComfyServer
from testbed.tiny_models import CHECKPOINT_NAME

pytestmark = pytest.mark.anyio

TEMPLATE = "default"  # the SD1.5 text-to-image template of every package version
FILE = "v1-5-pruned-emaonly-fp16.safetensors"  # the checkpoint it names


def default_entry(listed: Any) -> dict[str, Any]:
    entries = {t["name"]: t for t in listed.structured_content["templates"]}
    assert TEMPLATE in entries, entries.keys()
    return entries[TEMPLATE]


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_default_template_runs_exactly_when_its_checkpoint_is_there(
    comfy_factory: Callable[..., ComfyServer], version: str, tmp_path: Path
) -> None:
    folder = tmp_path / "models" / "checkpoints"
    folder.mkdir(parents=True)
    config = tmp_path / "template_models.yaml"
    config.write_text(
        json.dumps({"template_models": {"base_path": str(tmp_path / "models"), "checkpoints": "checkpoints"}})
    )
    comfy = comfy_factory(version, extra_args=["--extra-model-paths-config", str(config)])
    async with connect("streamable-2025", comfy.url) as client:
        listed = await client.call_tool("list_templates", {"query": "SD1.5"})
        entry = default_entry(listed)
        assert entry["runnable"] is False
        assert [f["name"] for f in entry["missing"]["files"]] == [FILE]
        assert entry["missing"]["files"][0]["folder"] == "checkpoints"
        assert entry["missing"]["files"][0]["url"].startswith("https://")
        refused = await client.call_tool("run_template", {"name": TEMPLATE, "arguments": {"prompt": "a fox"}})
        assert refused.is_error and f"models/checkpoints/{FILE}" in text(refused)
        assert comfy.get_json("/history") == {}  # nothing was queued

        (folder / FILE).symlink_to(MODELS / "checkpoints" / CHECKPOINT_NAME)
        listed = await client.call_tool("list_templates", {"runnable_only": True, "query": "SD1.5"})
        entry = default_entry(listed)
        assert entry["runnable"] is True, (entry.get("problem"), entry.get("missing"))
        assert {"prompt", "negative_prompt", "seed", "width", "height"} <= set(entry["inputs"])
        ran = await client.call_tool(
            "run_template",
            {"name": TEMPLATE, "arguments": {"prompt": "a red fox", "seed": 7, "width": 64, "height": 64}},
        )
        content = ok(ran)
        assert content["seed"] == 7
        (prompt_id,) = content["prompt_ids"]
        entry_history: dict[str, Any] = comfy.get_json(f"/history/{prompt_id}")[prompt_id]  # type: ignore[index]
        assert entry_history["status"]["status_str"] == "success"
        prompt = entry_history["prompt"][2]
        # The bridge adds its result-preview node beside SaveImage (issue 25); the rest is the template's.
        assert {n["class_type"] for n in prompt.values()} - {"MCPBridgeResultPreview"} == {
            "CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode",
            "SaveImage",
        }  # fmt: skip
        texts = sorted(n["inputs"]["text"] for n in prompt.values() if n["class_type"] == "CLIPTextEncode")
        assert "a red fox" in texts and len(texts) == 2
        (image,) = content["images"]
        assert content["state"] == "succeeded" and image["uri"].endswith(".png")

        (folder / FILE).unlink()
        entry = default_entry(await client.call_tool("list_templates", {"query": "SD1.5"}))
        assert entry["runnable"] is False and entry["missing"]["files"][0]["name"] == FILE
