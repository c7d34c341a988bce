"""Every tool through the SDK's in-memory client against a ComfyUI in memory (tests/unit/fake_comfy.py):
validation, error texts, result shape, delivery. Fast; the integration tests prove the real thing.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, ImageContent, ResourceLink
from PIL import Image

from mcp_bridge.bridge import build_mcp
from mcp_bridge.config import Settings
from mcp_bridge.tools.services import Services
from tests.unit.fake_comfy import FakeComfy, fake_services

pytestmark = pytest.mark.anyio

BASE = {"prompt": "a fox", "width": 64, "height": 64, "steps": 2, "seed": 7}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def bridge(
    root: Path, settings: Settings | None = None, **fake: Any
) -> AsyncIterator[tuple[Client, Services]]:
    async with fake_services(root, settings, **fake) as services, Client(build_mcp(services)) as client:
        yield client, services


def fake(services: Services) -> FakeComfy:
    assert isinstance(services.comfy, FakeComfy)
    return services.comfy


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def png_b64(size: tuple[int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


async def test_the_tools_list_advertises_each_spec_with_its_compiled_schema(tmp_path: Path) -> None:
    async with bridge(tmp_path) as (client, services):
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert list(tools)[:1] == ["get_server_info"]
    assert {"generate_image", "img2img", "upscale_image", "list_models", "wait_job"} <= set(tools)
    for name in ("generate_image", "img2img", "upscale_image"):
        schema = tools[name].input_schema
        expected = services.param_models[name].model_json_schema()
        assert list(schema["properties"]) == list(expected["properties"])
        assert all("title" not in prop for prop in schema["properties"].values())
    width = tools["generate_image"].input_schema["properties"]["width"]
    assert (width["minimum"], width["maximum"], width["multipleOf"], width["default"]) == (64, 2048, 8, 512)


async def test_generate_image_fills_the_workflow_chains_loras_and_returns_previews_and_links(
    tmp_path: Path,
) -> None:
    async with bridge(tmp_path) as (client, services):
        loras = [{"name": "b.safetensors", "strength_model": 0.5}, {"name": "a.safetensors"}]
        result = await client.call_tool("generate_image", {**BASE, "batch_size": 2, "loras": loras})
        assert not result.is_error, text(result)
        ((_prompt_id, prompt),) = fake(services).queued
    job_id = result.structured_content["job_id"]  # type: ignore[index]
    by_class: dict[str, list[dict[str, Any]]] = {}
    for node in prompt.values():
        by_class.setdefault(node["class_type"], []).append(node["inputs"])
    (sampler,) = by_class["KSampler"]
    assert (sampler["seed"], sampler["steps"], sampler["sampler_name"]) == (7, 2, "euler_ancestral")
    assert [lora["lora_name"] for lora in by_class["LoraLoader"]] == ["b.safetensors", "a.safetensors"]
    assert by_class["CheckpointLoaderSimple"][0]["ckpt_name"] == "tiny.safetensors"  # the only one installed
    assert job_id.startswith(services.runner.instance_id + ".")
    assert by_class["SaveImage"][0]["filename_prefix"] == "mcp/" + job_id.replace(".", "_")
    data = result.structured_content
    assert (
        data is not None
        and data["job_id"] == job_id
        and data["seed"] == 7
        and data["model"] == "tiny.safetensors"
    )
    assert [x["name"] for x in data["loras"]] == ["b.safetensors", "a.safetensors"]
    previews = [b for b in result.content if isinstance(b, ImageContent)]
    links = [b for b in result.content if isinstance(b, ResourceLink)]
    assert len(previews) == len(links) == len(data["images"]) == 2
    prefix = f"comfy://{services.runner.instance_id}/output/mcp/" + job_id.replace(".", "_")
    assert all(str(link.uri).startswith(prefix) for link in links)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        pytest.param({"width": 7}, "multiple of 8", id="width-7"),
        pytest.param({"width": "512"}, "width", id="width-text"),
        pytest.param({"width": 2048, "height": 2048, "batch_size": 8}, "budget", id="budget"),
        pytest.param({"model": "sdxl.safetensors"}, "list_models", id="unknown-model"),
        pytest.param({"sampler": "eulerr"}, "closest: euler", id="unknown-sampler"),
        pytest.param({"loras": [{"name": "c.safetensors"}]}, "call list_loras", id="unknown-lora"),
        pytest.param({"loras": [{"name": "a.safetensors"}] * 2}, "listed once", id="lora-twice"),
        pytest.param({"workflow": {}}, "unknown field", id="unknown-field"),
        pytest.param({"prompt": "x\x00y"}, "control character", id="nul-in-prompt"),
        pytest.param({"output_path": "../escape.png"}, "output_path", id="path-dotdot"),
        pytest.param({"output_path": "x.mp4"}, "output_path", id="video-suffix-for-a-still"),
    ],
)
async def test_bad_arguments_are_clear_errors_and_queue_nothing(
    tmp_path: Path, arguments: dict[str, Any], expected: str
) -> None:
    async with bridge(tmp_path) as (client, services):
        result = await client.call_tool("generate_image", {**BASE, **arguments})
        assert result.is_error and expected in text(result), text(result)
        assert "Traceback" not in text(result)
        assert fake(services).queued == []


async def test_several_checkpoints_need_a_name_and_the_configured_default_picks_one(tmp_path: Path) -> None:
    models = {"checkpoints": ["a.ckpt", "b.ckpt"], "loras": [], "upscale_models": []}
    async with bridge(tmp_path / "1", models=models) as (client, _):
        result = await client.call_tool("generate_image", BASE)
        assert result.is_error and "several checkpoints are installed; name one with model" in text(result)
    async with bridge(tmp_path / "2", Settings(default_model="b.ckpt"), models=models) as (client, services):
        result = await client.call_tool("generate_image", BASE)
        assert not result.is_error and result.structured_content["model"] == "b.ckpt"  # type: ignore[index]


async def test_img2img_keeps_the_source_size_checks_its_budget_and_removes_its_staged_copy(
    tmp_path: Path,
) -> None:
    async with bridge(tmp_path) as (client, services):
        result = await client.call_tool(
            "img2img", {"prompt": "p", "input_image": png_b64((80, 48)), "seed": 1}
        )
        assert not result.is_error, text(result)
        data = result.structured_content
        assert data is not None and (data["images"][0]["width"], data["images"][0]["height"]) == (80, 48)
        assert data["input"]["source"] == "inline"
        assert list((tmp_path / "input" / "mcp").iterdir()) == []  # staged copy gone with its job
        half = await client.call_tool(
            "img2img", {"prompt": "p", "input_image": png_b64((80, 48)), "width": 64}
        )
        assert half.is_error and "give width and height together" in text(half)
        huge = {"prompt": "p", "input_image": png_b64((2048, 2048)), "batch_size": 8}
        over = await client.call_tool("img2img", huge)
        assert over.is_error and "budget" in text(over)
        assert len(fake(services).queued) == 1
        assert list((tmp_path / "input" / "mcp").iterdir()) == []  # refused calls leave nothing either


async def test_a_refused_prompt_removes_the_staged_input_too(tmp_path: Path) -> None:
    async with bridge(tmp_path, reject="node 3: no such sampler") as (client, _):
        result = await client.call_tool("upscale_image", {"input_image": png_b64((16, 16))})
    assert result.is_error and "ComfyUI refused the workflow: node 3: no such sampler" in text(result)
    assert list((tmp_path / "input" / "mcp").iterdir()) == []


async def test_a_clean_up_that_cannot_remove_the_staged_input_keeps_the_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unlink = Path.unlink

    def refuse(path: Path, missing_ok: bool = False) -> None:
        if path.parent.name == "mcp":
            raise PermissionError(13, "Permission denied")
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    async with bridge(tmp_path, reject="node 3: no such sampler") as (client, _):
        result = await client.call_tool("upscale_image", {"input_image": png_b64((16, 16))})
    assert result.is_error and "ComfyUI refused the workflow: node 3: no such sampler" in text(result)
    assert "Permission" not in text(result)


async def test_upscale_picks_the_only_model_and_names_the_list_tool_when_several(tmp_path: Path) -> None:
    async with bridge(tmp_path) as (client, _):
        result = await client.call_tool("upscale_image", {"input_image": png_b64((16, 12))})
        assert not result.is_error, text(result)
        assert result.structured_content["upscale_model"] == "x4.safetensors"  # type: ignore[index]
        assert (result.structured_content["images"][0]["width"], 48) == (64, 48)  # type: ignore[index]
    models = {"checkpoints": [], "loras": [], "upscale_models": ["x2.pth", "x4.pth"]}
    async with bridge(tmp_path / "b", models=models) as (client, _):
        result = await client.call_tool("upscale_image", {"input_image": png_b64((16, 12))})
        assert result.is_error and "several upscale models are installed" in text(result)


async def test_delivery_writes_output_path_at_job_end_without_any_poll(tmp_path: Path) -> None:
    settings = Settings(call_wait_s=1.0, output_roots=[str(tmp_path / "dest")])
    (tmp_path / "dest").mkdir()
    target = tmp_path / "dest" / "a.webp"
    async with bridge(tmp_path, settings, hold=True) as (client, services):
        handle = await client.call_tool("generate_image", {**BASE, "output_path": str(target)})
        assert handle.structured_content is not None and handle.structured_content["state"] == "queued"
        assert not target.exists()
        job = services.registry.get(handle.structured_content["job_id"])
        assert job is not None
        fake(services).release()
        await job.wait(5)
        await services.runner.settled(job)
        assert target.is_file()  # nobody called get_job or wait_job
        with Image.open(target) as im:
            assert im.format == "WEBP" and im.size == (64, 64)
        mtime = target.stat().st_mtime_ns
        for _ in range(2):  # reading the job is read-only: no second write
            again = await client.call_tool("get_job", {"job_id": job.id})
            assert again.structured_content["images"][0]["saved_path"] == str(target)  # type: ignore[index]
        assert target.stat().st_mtime_ns == mtime


async def test_a_failed_write_is_an_error_with_the_link_of_what_comfyui_saved(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    settings = Settings(output_roots=[str(dest)])
    async with bridge(tmp_path, settings, hold=True) as (client, services):
        call = asyncio.ensure_future(
            client.call_tool("generate_image", {**BASE, "output_path": str(dest / "sub" / "x.png")})
        )
        await asyncio.wait_for(fake(services).wait_queued(1), 10)  # checked, staged and queued
        (dest / "sub").write_text("a file where the folder should go")  # swapped after the check
        fake(services).release()
        result = await call
    assert result.is_error
    assert "could not write output_path" in text(result) and "/output/mcp/" in text(result)
    assert [b for b in result.content if isinstance(b, ResourceLink)]
    assert result.structured_content is not None and result.structured_content["save_error"]


async def test_cancel_job_removes_a_queued_job_and_get_job_of_an_unknown_id_is_an_error(
    tmp_path: Path,
) -> None:
    async with bridge(tmp_path, Settings(call_wait_s=1.0), hold=True) as (client, services):
        handle = await client.call_tool("generate_image", BASE)
        job_id = handle.structured_content["job_id"]  # type: ignore[index]
        cancelled = await client.call_tool("cancel_job", {"job_id": job_id})
        assert cancelled.structured_content == {"job_id": job_id, "outcome": "removed", "state": "cancelled"}
        waited = await client.call_tool("wait_job", {"job_id": job_id, "timeout_s": 1})
        assert waited.is_error and "cancelled" in text(waited)
        unknown = await client.call_tool("get_job", {"job_id": "nope"})
        assert unknown.is_error and "Unknown job id" in text(unknown)


async def test_list_tools_read_the_backend(tmp_path: Path) -> None:
    async with bridge(tmp_path) as (client, _):
        models = await client.call_tool("list_models", {})
        samplers = await client.call_tool("list_samplers", {})
    assert models.structured_content == {
        "names": ["tiny.safetensors"],
        "count": 1,
        "video_families": [],
        # issue 21: every image model with its family (the fake's file has no header: the tools' own graph)
        "image_models": [
            {"name": "tiny.safetensors", "folder": "checkpoints", "family": None, "runnable": True}
            | {"text_encoders": None, "vae": None, "missing": None}
        ],
    }
    assert samplers.structured_content is not None and "dpmpp_2m" in samplers.structured_content["names"]


async def test_a_spec_in_a_tool_folder_becomes_a_tool(tmp_path: Path) -> None:
    spec = json.loads((Path(__file__).parents[2] / "workflows" / "tools" / "txt2img.json").read_text())
    spec["_bridge"] = {
        "tool": "quick_sketch",
        "description": "A quick 2-step sketch of the prompt.",
        "inputs": {"idea": {"kind": "text", "node": "6", "input": "text", "required": True}},
    }
    spec["3"]["inputs"]["steps"] = 2
    spec["4"]["inputs"]["ckpt_name"] = "tiny.safetensors"
    folder = tmp_path / "tools"
    folder.mkdir()
    (folder / "sketch.json").write_text(json.dumps(spec))
    async with bridge(tmp_path, Settings(tool_folders=[str(folder)])) as (client, services):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["quick_sketch"].input_schema["required"] == ["idea"]
        result = await client.call_tool("quick_sketch", {"idea": "a boat"})
        assert not result.is_error, text(result)
        ((_, prompt),) = fake(services).queued
    assert prompt["6"]["inputs"]["text"] == "a boat" and prompt["3"]["inputs"]["steps"] == 2


def tool_folder(
    root: Path, inputs: dict[str, Any], nodes: dict[str, dict[str, Any]] | None = None, **settings: Any
) -> Settings:
    """Settings with one tool spec over the shipped txt2img workflow (``nodes``: node inputs changed)."""
    spec = json.loads((Path(__file__).parents[2] / "workflows" / "tools" / "txt2img.json").read_text())
    spec["_bridge"] = {"tool": "mine", "description": "A tool of the user's.", "inputs": inputs}
    spec["4"]["inputs"]["ckpt_name"] = "tiny.safetensors"
    for node, changes in (nodes or {}).items():
        spec[node]["inputs"].update(changes)
    folder = root / "tools"
    folder.mkdir(parents=True)
    (folder / "mine.json").write_text(json.dumps(spec))
    return Settings(tool_folders=[str(folder)], **settings)


async def test_arguments_named_like_the_results_own_fields_never_overwrite_them(tmp_path: Path) -> None:
    inputs = {
        "job_id": {"kind": "int", "node": "3", "input": "seed"},
        "state": {"kind": "int", "node": "3", "input": "steps"},
        "images": {"kind": "int", "node": "5", "input": "width"},
        "timings": {"kind": "int", "node": "5", "input": "height"},
        "prompt_ids": {"kind": "float", "node": "3", "input": "cfg"},
    }
    mine = {"job_id": 4242, "state": 2, "images": 64, "timings": 64, "prompt_ids": 1.5}
    async with bridge(tmp_path, tool_folder(tmp_path, inputs)) as (client, services):
        result = await client.call_tool("mine", mine)
        assert not result.is_error, text(result)
        data = result.structured_content
        assert data is not None
        again = await client.call_tool("get_job", {"job_id": data["job_id"]})
    assert data["job_id"].startswith(services.runner.instance_id + ".")
    assert data["state"] == "succeeded" and data["prompt_ids"] == [p for p, _ in fake(services).queued]
    assert [image["width"] for image in data["images"]] == [64] and set(data["timings"]) >= {"total_s"}
    assert data["arguments"] == mine  # the caller's values, all of them, under their own key
    assert not again.is_error and again.structured_content == data


async def test_a_result_with_a_thousand_files_stays_within_what_a_client_reads_in_one_message(
    tmp_path: Path,
) -> None:
    # The fake backend gives the shape (1000 files of one output node, saved to output_path as a user
    # would); the sizes are the real ones of what the bridge sends. Their previews alone are far below
    # result_inline_bytes: with the links, entries and text the result passed 1 MiB (1,055,031 bytes).
    inputs = {"idea": {"kind": "text", "node": "6", "input": "text"}}
    size = {"5": {"width": 8, "height": 8, "batch_size": 1000}}
    settings = tool_folder(tmp_path, inputs, size, output_roots=[str(tmp_path / "renders")])
    target = tmp_path / "renders" / "client-projects-archive" / "2026-lighthouse-campaign-final"
    target = target / "storyboard-shots" / "frame.png"
    (tmp_path / "renders").mkdir()
    async with bridge(tmp_path, settings) as (client, _):
        result = await client.call_tool("mine", {"idea": "many", "output_path": str(target)})
    message = {"jsonrpc": "2.0", "id": 2, "result": result.model_dump(by_alias=True, exclude_none=True)}
    wire = json.dumps(message, separators=(",", ":")).encode()  # as compact as the SDK sends it
    assert len(wire) < 1024 * 1024  # the SDK client's max_event_size
    data = result.structured_content
    assert data is not None and not result.is_error, text(result)
    listed = data["images"]
    links = [b for b in result.content if isinstance(b, ResourceLink)]
    assert len(listed) + data.get("files_omitted", 0) == 1000 and listed
    assert [str(link.uri) for link in links] == [entry["uri"] for entry in listed]
    previews = [b for b in result.content if isinstance(b, ImageContent)]
    assert data["contact_sheet"] is True and len(previews) == 1
    assert "1000 image(s)" in text(result) and len(list(target.parent.iterdir())) == 1000


async def test_controlnets_are_chained_on_the_sampler_conditioning_in_order(tmp_path: Path) -> None:
    controls = [
        {"image": png_b64((32, 32)), "model": "cn-edges.safetensors", "preprocessor": "canny"},
        {"image": png_b64((64, 64)), "model": "cn-depth.safetensors", "strength": 0.5, "end_percent": 0.6},
    ]
    async with bridge(tmp_path) as (client, services):
        result = await client.call_tool("generate_image", {**BASE, "controlnets": controls})
        assert not result.is_error, text(result)
        ((_, prompt),) = fake(services).queued
        listed = await client.call_tool("list_controlnets", {})
    applies = {i: n["inputs"] for i, n in prompt.items() if n["class_type"] == "ControlNetApplyAdvanced"}
    (sampler,) = [n["inputs"] for n in prompt.values() if n["class_type"] == "KSampler"]
    first, second = applies
    assert (sampler["positive"], sampler["negative"]) == ([second, 0], [second, 1])
    assert (applies[second]["positive"], applies[second]["negative"]) == ([first, 0], [first, 1])
    assert [n["class_type"] for n in prompt.values()].count("CLIPTextEncode") == 2
    assert prompt[applies[first]["positive"][0]]["class_type"] == "CLIPTextEncode"
    canny = prompt[applies[first]["image"][0]]
    assert canny["class_type"] == "Canny" and prompt[canny["inputs"]["image"][0]]["class_type"] == "LoadImage"
    assert prompt[applies[second]["image"][0]]["class_type"] == "LoadImage"  # preprocessor none
    assert (applies[second]["strength"], applies[second]["end_percent"]) == (0.5, 0.6)
    names = [prompt[a["control_net"][0]]["inputs"]["control_net_name"] for a in applies.values()]
    assert names == ["cn-edges.safetensors", "cn-depth.safetensors"]
    reported = result.structured_content["controlnets"]  # type: ignore[index]
    assert [(c["model"], c["preprocessor"], c["strength"]) for c in reported] == [
        ("cn-edges.safetensors", "canny", 1.0),
        ("cn-depth.safetensors", "none", 0.5),
    ]
    assert list((tmp_path / "input" / "mcp").iterdir()) == []  # staged control images gone with the job
    assert listed.structured_content == {
        "names": ["cn-depth.safetensors", "cn-edges.safetensors"],
        "count": 2,
        "preprocessors": ["none", "canny"],
    }


@pytest.mark.parametrize(
    ("control", "expected"),
    [
        pytest.param({"model": "cn-edgez.safetensors"}, "closest: cn-edges.safetensors", id="unknown-model"),
        pytest.param({"preprocessor": "depth"}, "list_controlnets", id="preprocessor-not-installed"),
        pytest.param({"strength": 11.0}, "strength", id="strength-over-10"),
        pytest.param({"start_percent": 0.8, "end_percent": 0.2}, "start_percent", id="window-reversed"),
        pytest.param({"image": "missing.png"}, "missing.png", id="no-such-image"),
        pytest.param({"weight": 1}, "unknown field", id="unknown-field"),
    ],
)
async def test_bad_controlnets_are_clear_errors_and_queue_or_stage_nothing(
    tmp_path: Path, control: dict[str, Any], expected: str
) -> None:
    good = {"image": png_b64((32, 32)), "model": "cn-edges.safetensors"}
    async with bridge(tmp_path) as (client, services):
        for tool, extra in (("generate_image", {}), ("img2img", {"input_image": png_b64((64, 64))})):
            controls = [good, {**good, **control}]
            result = await client.call_tool(tool, {**BASE, **extra, "controlnets": controls})
            assert result.is_error and expected in text(result), text(result)
        assert fake(services).queued == []
    assert [p for p in (tmp_path / "input").rglob("*") if p.is_file()] == []


def rgba_b64(size: tuple[int, int], hole: tuple[int, int, int, int] | None) -> str:
    """An opaque image, with a fully transparent rectangle ``hole`` (left, top, right, bottom)."""
    image = Image.new("RGBA", size, (200, 100, 50, 255))
    if hole is not None:
        image.paste((0, 0, 0, 0), hole)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def mask_b64(size: tuple[int, int], white: tuple[int, int, int, int] | None) -> str:
    image = Image.new("L", size, 0)
    if white is not None:
        image.paste(255, white)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def staged_mask(root: Path, prompt: dict[str, Any]) -> Image.Image:
    (node,) = [n for n in prompt.values() if n["class_type"] == "LoadImageMask"]
    with Image.open(root / "input" / node["inputs"]["image"]) as im:
        return im.copy()


async def test_inpaint_masks_from_a_resized_mask_image_or_the_alpha_and_pastes_back(tmp_path: Path) -> None:
    keep = Settings(keep_staged_inputs=True)
    base = {"prompt": "a window", "steps": 2, "seed": 3}
    async with bridge(tmp_path, keep) as (client, services):
        sized = await client.call_tool(
            "inpaint",
            {**base, "input_image": png_b64((64, 64)), "mask": mask_b64((32, 32), (8, 8, 16, 16))},
        )
        alpha = await client.call_tool(
            "inpaint", {**base, "input_image": rgba_b64((64, 48), (0, 0, 16, 48)), "grow_mask_by": 0}
        )
        assert not sized.is_error and not alpha.is_error, text(sized) + text(alpha)
        (_, first), (_, second) = fake(services).queued
        resized, from_alpha = staged_mask(tmp_path, first), staged_mask(tmp_path, second)
    assert resized.size == (64, 64) and resized.getpixel((24, 24)) == 255 and resized.getpixel((40, 40)) == 0
    assert from_alpha.size == (64, 48)
    assert from_alpha.getpixel((8, 20)) == 255 and from_alpha.getpixel((40, 20)) == 0  # transparent = repaint
    by_class = {n["class_type"]: (i, n["inputs"]) for i, n in second.items()}
    load, _ = by_class["LoadImage"]
    mask, _ = by_class["LoadImageMask"]
    _, paste = by_class["ImageCompositeMasked"]
    assert paste["destination"] == [load, 0] and paste["mask"] == [mask, 0]  # the caller's mask, not grown
    assert by_class["GrowMask"][1]["expand"] == 0
    (save,) = [n for n in second.values() if n["class_type"] == "SaveImage"]
    assert save["inputs"]["images"] == [by_class["ImageCompositeMasked"][0], 0]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        pytest.param({"mask": mask_b64((64, 64), None)}, "all black: nothing to repaint", id="black-mask"),
        pytest.param({}, "give a mask", id="no-mask-no-alpha"),
        pytest.param({"input_image": rgba_b64((64, 64), None)}, "no transparent pixels", id="opaque-alpha"),
        pytest.param({"grow_mask_by": 65}, "grow_mask_by", id="grow-over-64"),
        pytest.param({"denoise": 1.5}, "denoise", id="denoise-over-1"),
        pytest.param({"mask": "nothing.png"}, "nothing.png", id="no-such-mask"),
    ],
)
async def test_bad_inpaint_arguments_are_clear_errors_and_leave_nothing(
    tmp_path: Path, arguments: dict[str, Any], expected: str
) -> None:
    call = {"prompt": "p", "input_image": png_b64((64, 64)), **arguments}
    async with bridge(tmp_path) as (client, services):
        result = await client.call_tool("inpaint", call)
        assert result.is_error and expected in text(result), text(result)
        assert fake(services).queued == []
    assert [p for p in (tmp_path / "input").rglob("*") if p.is_file()] == []


async def test_outpaint_pads_the_canvas_and_refuses_nothing_to_add(tmp_path: Path) -> None:
    async with bridge(tmp_path) as (client, services):
        result = await client.call_tool(
            "outpaint", {"prompt": "sky", "input_image": png_b64((64, 64)), "top": 32, "left": 8, "seed": 1}
        )
        assert not result.is_error, text(result)
        none = await client.call_tool("outpaint", {"prompt": "sky", "input_image": png_b64((64, 64))})
        odd = await client.call_tool(
            "outpaint", {"prompt": "sky", "input_image": png_b64((64, 64)), "top": 7}
        )
        ((_, prompt),) = fake(services).queued
    assert none.is_error and "give at least one of left, right, top and bottom" in text(none)
    assert odd.is_error and "multiple of 8" in text(odd)
    (pad,) = [n["inputs"] for n in prompt.values() if n["class_type"] == "ImagePadForOutpaint"]
    assert (pad["left"], pad["top"], pad["right"], pad["bottom"], pad["feathering"]) == (8, 32, 0, 0, 0)


async def test_outpaint_refuses_a_canvas_over_the_side_or_pixel_caps_before_queueing(tmp_path: Path) -> None:
    async with bridge(tmp_path, Settings(max_side=1024, max_pixels=512 * 768)) as (client, services):
        wide = await client.call_tool(
            "outpaint", {"prompt": "sky", "input_image": png_b64((64, 64)), "left": 512, "right": 512}
        )
        big = await client.call_tool(
            "outpaint", {"prompt": "sky", "input_image": png_b64((64, 64)), "right": 896, "bottom": 896}
        )
        fits = await client.call_tool(
            "outpaint", {"prompt": "sky", "input_image": png_b64((64, 64)), "right": 128, "bottom": 128}
        )
        queued = len(fake(services).queued)
    assert wide.is_error and "would be 1088x64, over the largest side of 1024" in text(wide), text(wide)
    assert big.is_error and "960x960" in text(big) and "over the budget" in text(big), text(big)
    assert not fits.is_error, text(fits)
    assert queued == 1


def test_schema_trimming_drops_derived_titles_but_keeps_a_property_named_title() -> None:
    from mcp_bridge.mcp.toolset import drop_titles

    schema = {
        "title": "Args",
        "properties": {"title": {"title": "Title", "type": "string"}, "n": {"title": "N", "type": "integer"}},
        "$defs": {"Lora": {"title": "Lora", "properties": {"name": {"title": "Name"}}}},
    }
    drop_titles(schema)
    assert schema == {
        "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
        "$defs": {"Lora": {"properties": {"name": {}}}},
    }


async def test_a_batch_queues_every_item_in_order_and_returns_them_with_their_parameters(
    tmp_path: Path,
) -> None:
    batch = {
        "prompts": ["a fox", "a cat", "a dog", "an owl"],
        "variations": 2,
        "seed": 100,
        "arguments": {"width": 64, "height": 64, "steps": 2},
        "output_path": "runs/{index}_{seed}.png",
    }
    async with bridge(tmp_path) as (client, services):
        result = await client.call_tool("generate_batch", batch)
        assert not result.is_error, text(result)
        queued = fake(services).queued
    seeds = [[n["inputs"]["seed"] for n in p.values() if n["class_type"] == "KSampler"][0] for _, p in queued]
    texts = [
        [n["inputs"]["text"] for n in p.values() if n["class_type"] == "CLIPTextEncode"][0] for _, p in queued
    ]
    assert seeds == [100, 101] * 4
    assert texts == ["a fox", "a fox", "a cat", "a cat", "a dog", "a dog", "an owl", "an owl"]
    data = result.structured_content
    assert data is not None and data["count"] == 8 and data["failed"] == 0
    assert [(i["index"], i["prompt"], i["seed"]) for i in data["items"]] == [
        (n + 1, t, s) for n, (t, s) in enumerate(zip(texts, seeds, strict=True))
    ]
    assert all(i["parameters"]["steps"] == 2 for i in data["items"])
    written = sorted(p.name for p in (tmp_path / "output" / "runs").iterdir())
    assert written == sorted(f"{n + 1}_{s}.png" for n, s in enumerate(seeds))
    assert len([b for b in result.content if isinstance(b, ImageContent)]) == 8  # under the budget
    assert len([b for b in result.content if isinstance(b, ResourceLink)]) == 8


async def test_a_sweep_varies_one_parameter_for_every_prompt(tmp_path: Path) -> None:
    batch = {
        "prompts": ["a", "b", "c"],
        "sweep": {"parameter": "cfg_scale", "values": [3.0, 5.0]},
        "arguments": {"width": 64, "height": 64, "steps": 2},
    }
    async with bridge(tmp_path) as (client, services):
        result = await client.call_tool("generate_batch", batch)
        assert not result.is_error, text(result)
        queued = fake(services).queued
    cfgs = [[n["inputs"]["cfg"] for n in p.values() if n["class_type"] == "KSampler"][0] for _, p in queued]
    assert cfgs == [3.0, 5.0] * 3
    data = result.structured_content
    assert data is not None and [i["cfg_scale"] for i in data["items"]] == cfgs
    assert len({i["seed"] for i in data["items"]}) == 1  # one variation: the same seed throughout


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        pytest.param({"prompts": ["p"] * 9, "variations": 2}, "18 items; at most 16", id="over-the-cap"),
        pytest.param(
            {"prompts": ["p", "q"], "arguments": {"width": 7}}, "item 1: invalid arguments", id="bad-item"
        ),
        pytest.param(
            {"prompts": ["p"], "arguments": {"seed": 3}}, "must not set seed", id="seed-in-arguments"
        ),
        pytest.param(
            {"prompts": ["p"], "sweep": {"parameter": "lora_strength", "values": [0.5]}},
            "needs LoRAs",
            id="lora-sweep-without-loras",
        ),
        pytest.param(
            {"prompts": ["p"], "sweep": {"parameter": "denoise", "values": [0.5]}},
            "sweep",
            id="unknown-sweep",
        ),
        pytest.param(
            {"prompts": ["p"], "arguments": {"loras": [{"name": "zz.safetensors"}]}},
            "list_loras",
            id="unknown-lora",
        ),
    ],
)
async def test_bad_batches_are_refused_before_anything_is_queued(
    tmp_path: Path, batch: dict[str, Any], expected: str
) -> None:
    async with bridge(tmp_path) as (client, services):
        result = await client.call_tool("generate_batch", batch)
        assert result.is_error and expected in text(result), text(result)
        assert fake(services).queued == []


async def test_a_batch_whose_items_are_still_queued_is_not_an_error(tmp_path: Path) -> None:
    batch = {"prompts": ["a fox", "a cat"], "arguments": {"width": 64, "height": 64, "steps": 2}}
    async with bridge(tmp_path, Settings(call_wait_s=1.0), hold=True) as (client, services):
        result = await client.call_tool("generate_batch", batch)
        fake(services).release()
    assert not result.is_error, text(result)
    data = result.structured_content
    assert data is not None and (data["failed"], data["pending"]) == (0, 2)
    for item in data["items"]:
        assert "error" not in item and item["job_id"] in item["pending"] and "wait_job" in item["pending"]
    assert "failed" not in text(result) and "not finished yet" in text(result)
