"""The nine tools end to end through an MCP client against a real ComfyUI with the tiny models."""

from __future__ import annotations

import base64
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _mcp_clients import ok, text
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ImageContent, ListRootsResult, ResourceLink, Root
from PIL import Image
from pydantic import FileUrl

from testbed import comfy_api
from testbed.mcp_client import connect
from testbed.server import ComfyServer
from testbed.tiny_models import CHECKPOINT_NAME, LORA_A_NAME, LORA_B_NAME, UPSCALER_NAME

pytestmark = pytest.mark.anyio


def args(**extra: Any) -> dict[str, Any]:
    base = {
        "prompt": "a lighthouse at dusk",
        "width": 64,
        "height": 64,
        "steps": 2,
        "sampler": "euler",
        "seed": random.randrange(2**40),
    }
    return {**base, **extra}


def files_of(comfy: ComfyServer, data: dict[str, Any]) -> list[Path]:
    return [comfy.output_dir / img["subfolder"] / img["filename"] for img in data["images"]]


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def png_b64(size: tuple[int, int] = (64, 48)) -> str:
    buf = io.BytesIO()
    Image.linear_gradient("L").convert("RGB").resize(size).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def check_previews(result: CallToolResult, count: int) -> None:
    previews = [b for b in result.content if isinstance(b, ImageContent)]
    links = [b for b in result.content if isinstance(b, ResourceLink)]
    assert len(previews) == count and len(links) == count
    for block in previews:
        raw = base64.b64decode(block.data)
        assert len(raw) < 200_000
        with Image.open(io.BytesIO(raw)) as im:
            assert max(im.size) <= 512 and im.format in ("WEBP", "JPEG")


async def test_list_tools_show_exactly_what_is_installed(comfy: ComfyServer) -> None:
    async with connect("streamable-2025", comfy.url) as client:
        names = {
            tool: ok(await client.call_tool(tool, {}))["names"]
            for tool in (
                "list_models",
                "list_loras",
                "list_upscale_models",
                "list_samplers",
                "list_schedulers",
            )
        }
        listing = await client.list_tools()
    assert names["list_models"] == [CHECKPOINT_NAME]
    assert names["list_loras"] == [LORA_A_NAME, LORA_B_NAME]
    assert names["list_upscale_models"] == [UPSCALER_NAME]
    assert "euler" in names["list_samplers"] and "euler_ancestral" in names["list_samplers"]
    assert "normal" in names["list_schedulers"] and "karras" in names["list_schedulers"]
    tools = {t.name: t for t in listing.tools}
    for name in (
        "list_models",
        "list_loras",
        "list_samplers",
        "list_schedulers",
        "list_upscale_models",
        "get_queue_status",
        "get_job",
    ):
        assert tools[name].annotations is not None and tools[name].annotations.read_only_hint
    schema = tools["generate_image"].input_schema
    assert schema["properties"]["width"]["multipleOf"] == 8 and schema["required"] == ["prompt"]


async def test_generate_with_two_loras_and_a_batch_of_two(comfy: ComfyServer) -> None:
    loras = [
        {"name": LORA_A_NAME, "strength_model": 1.0, "strength_clip": 1.0},
        {"name": LORA_B_NAME, "strength_model": 0.8, "strength_clip": 0.5},
    ]
    async with connect("streamable-2026", comfy.url) as client:
        result = await client.call_tool("generate_image", args(loras=loras, batch_size=2, width=96))
        data = ok(result)
        check_previews(result, 2)
        files = files_of(comfy, data)
        assert len(files) == 2
        for path, image in zip(files, data["images"], strict=True):
            with Image.open(path) as im:
                assert im.size == (96, 64) == (image["width"], image["height"])
            assert image["bytes"] == path.stat().st_size
        assert [lora["name"] for lora in data["loras"]] == [LORA_A_NAME, LORA_B_NAME]
        assert data["model"] == CHECKPOINT_NAME and isinstance(data["seed"], int)
        # The resource link reads back the full image, byte for byte.
        link = next(b for b in result.content if isinstance(b, ResourceLink))
        read = await client.read_resource(str(link.uri))
        blob = read.contents[0]
        assert base64.b64decode(blob.blob) == files[0].read_bytes()  # type: ignore[union-attr]
    assert "lora key not loaded" not in comfy.log_text()


async def test_same_seed_same_bytes_other_seed_other_image(comfy: ComfyServer) -> None:
    async with connect("sse", comfy.url) as client:
        seed = random.randrange(2**40)
        first = files_of(comfy, ok(await client.call_tool("generate_image", args(seed=seed))))[0]
        # A different prompt first, so ComfyUI's cache cannot simply hand back the first file.
        ok(await client.call_tool("generate_image", args(seed=seed, prompt="something else")))
        again = files_of(comfy, ok(await client.call_tool("generate_image", args(seed=seed))))[0]
        other = files_of(comfy, ok(await client.call_tool("generate_image", args(seed=seed + 1))))[0]
    assert first != again
    with Image.open(first) as a, Image.open(again) as b, Image.open(other) as c:
        assert a.tobytes() == b.tobytes()
        assert a.tobytes() != c.tobytes()


async def test_img2img_from_an_input_file_from_base64_and_from_an_earlier_output(comfy: ComfyServer) -> None:
    name = f"src-{random.randrange(10**9)}.png"
    (comfy.input_dir / name).write_bytes(base64.b64decode(png_b64((80, 64))))
    async with connect("streamable-2025", comfy.url) as client:
        from_file = ok(
            await client.call_tool("img2img", args(input_image=name, denoise=0.6, width=None, height=None))
        )
        assert (from_file["images"][0]["width"], from_file["images"][0]["height"]) == (80, 64)
        from_b64 = ok(
            await client.call_tool(
                "img2img",
                args(input_image="data:image/png;base64," + png_b64(), denoise=0.5, width=None, height=None),
            )
        )
        assert (from_b64["images"][0]["width"], from_b64["images"][0]["height"]) == (64, 48)
        earlier = from_file["images"][0]["uri"]
        chained = ok(await client.call_tool("img2img", args(input_image=earlier, width=64, height=64)))
        assert (chained["images"][0]["width"], chained["images"][0]["height"]) == (64, 64)
        assert chained["input"]["source"] == "resource"
        for data in (from_file, from_b64, chained):
            assert all(p.is_file() for p in files_of(comfy, data))
            staged = data["input"]["staged_as"]
            # The staged copy served its job and was removed when the job ended (issue 13, defect 9).
            assert staged.startswith("mcp/") and not (comfy.input_dir / staged).exists()
    assert (comfy.input_dir / name).is_file()  # the caller's own file is never touched


async def test_upscale_times_four_and_save_to_output_path(comfy: ComfyServer) -> None:
    target = f"renders/up-{random.randrange(10**9)}.webp"
    async with connect("streamable-2025", comfy.url) as client:
        result = await client.call_tool(
            "upscale_image", {"input_image": png_b64((40, 30)), "output_path": target}
        )
        data = ok(result)
        check_previews(result, 1)
    (image,) = data["images"]
    assert (image["width"], image["height"]) == (160, 120)
    saved = Path(image["saved_path"])
    assert saved == (comfy.output_dir / target).resolve()
    with Image.open(saved) as im:
        assert im.format == "WEBP" and im.size == (160, 120)


async def test_output_path_writes_a_clean_png_and_refuses_to_overwrite(comfy: ComfyServer) -> None:
    target = f"hero-{random.randrange(10**9)}.png"
    async with connect("streamable-2025", comfy.url) as client:
        data = ok(await client.call_tool("generate_image", args(output_path=target)))
        saved = Path(data["images"][0]["saved_path"])
        with Image.open(saved) as im:
            assert im.size == (64, 64) and "prompt" not in im.info  # no embedded workflow in the copy
        before = saved.read_bytes()
        again = await client.call_tool("generate_image", args(output_path=target))
        assert again.is_error and "exists" in text(again) and "overwrite" in text(again)
        assert saved.read_bytes() == before
        replaced = ok(await client.call_tool("generate_image", args(output_path=target, overwrite=True)))
        assert Path(replaced["images"][0]["saved_path"]) == saved and saved.read_bytes() != before


def bad_cases(tmp: Path) -> list[tuple[str, str, dict[str, Any], str]]:
    """(id, tool, arguments, expected words in the error)."""
    return [
        ("unknown-model", "generate_image", args(model="sdxl.safetensors"), "list_models"),
        ("unknown-lora", "generate_image", args(loras=[{"name": "tiny-lora-c.safetensors"}]), LORA_A_NAME),
        ("unknown-sampler", "generate_image", args(sampler="eulerr"), "euler"),
        (
            "unknown-upscaler",
            "upscale_image",
            {"input_image": png_b64(), "upscale_model": "x8.pth"},
            "list_upscale_models",
        ),
        ("width-0", "generate_image", args(width=0), "width"),
        ("width-7", "generate_image", args(width=7), "multiple of 8"),
        ("width-huge", "generate_image", args(width=100_000), "width"),
        ("width-text", "generate_image", args(width="512"), "width"),
        ("pixel-budget", "generate_image", args(width=2048, height=2048, batch_size=8), "budget"),
        ("denoise-1.5", "img2img", args(input_image=png_b64(), denoise=1.5), "denoise"),
        ("prompt-1MB", "generate_image", args(prompt="x" * 1_000_000), "prompt"),
        ("prompt-as-link", "generate_image", args(prompt=["4", 0]), "prompt"),
        ("unknown-field", "generate_image", args(workflow={}), "unknown field"),
        ("path-dotdot", "generate_image", args(output_path="../../escape.png"), "output_path"),
        ("path-outside", "generate_image", args(output_path=str(tmp / "x.png")), "Allowed folders"),
        ("path-symlink", "generate_image", args(output_path="link-out/x.png"), "outside"),
        ("path-extension", "generate_image", args(output_path="x.py"), "output_path"),
        ("input-outside", "img2img", args(input_image="/etc/passwd"), "input_image"),
        ("input-directory", "img2img", args(input_image="mcp"), "input_image"),
        ("input-truncated", "img2img", args(input_image=png_b64()[:200]), "input_image"),
        ("input-oversized", "img2img", args(input_image="A" * (12 * 1024 * 1024)), "input_image"),
    ]


async def test_bad_input_is_a_clear_error_and_changes_nothing(comfy: ComfyServer, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = comfy.output_dir / "link-out"
    if not link.exists():
        link.symlink_to(outside, target_is_directory=True)
    (comfy.input_dir / "mcp").mkdir(exist_ok=True)
    async with connect("streamable-2025", comfy.url) as client:
        for case_id, tool, arguments, expected in bad_cases(tmp_path):
            out_before, in_before = tree(comfy.output_dir), tree(comfy.input_dir)
            history_before = len(comfy.get_json("/history"))  # type: ignore[arg-type]
            result = await client.call_tool(tool, arguments)
            assert result.is_error, f"{case_id}: accepted"
            message = text(result)
            assert expected in message, f"{case_id}: {message[:300]}"
            assert "Traceback" not in message, case_id
            assert tree(comfy.output_dir) == out_before, f"{case_id}: wrote into the output folder"
            assert tree(comfy.input_dir) == in_before, f"{case_id}: wrote into the input folder"
            assert len(comfy.get_json("/history")) == history_before, f"{case_id}: queued something"  # type: ignore[arg-type]
    assert list(outside.iterdir()) == []


async def test_a_nan_cfg_never_reaches_comfyui(comfy: ComfyServer) -> None:
    history_before = len(comfy.get_json("/history"))  # type: ignore[arg-type]
    async with connect("streamable-2025", comfy.url) as client:
        try:
            result = await client.call_tool("generate_image", args(cfg_scale=float("nan")))
        except MCPError as exc:  # rejected as invalid JSON before reaching the tool
            assert "parse" in str(exc).lower() or "invalid" in str(exc).lower()
        else:
            assert result.is_error and "cfg_scale" in text(result)
    assert len(comfy.get_json("/history")) == history_before  # type: ignore[arg-type]


async def test_relative_output_paths_land_in_the_clients_first_root(
    comfy: ComfyServer, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()

    async def roots(_context: Any) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=FileUrl(project.as_uri()), name="project")])

    async with connect("streamable-2025", comfy.url, list_roots_callback=roots) as client:
        data = ok(await client.call_tool("generate_image", args(output_path="assets/hero.png")))
    saved = Path(data["images"][0]["saved_path"])
    assert saved == (project / "assets" / "hero.png").resolve()
    with Image.open(saved) as im:
        assert im.size == (64, 64)


async def test_a_client_root_at_the_filesystem_root_allows_nothing(
    comfy: ComfyServer, tmp_path: Path
) -> None:
    async def roots(_context: Any) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=FileUrl("file:///"), name="everything")])

    target = tmp_path / "x.png"
    async with connect("streamable-2025", comfy.url, list_roots_callback=roots) as client:
        result = await client.call_tool("generate_image", args(output_path=str(target)))
    assert result.is_error and "Allowed folders" in text(result)
    assert not target.exists()


async def test_a_big_result_is_previewed_from_the_image_inside_the_prompt(comfy: ComfyServer) -> None:
    # Issue 25: a preview node beside SaveImage makes the WebP from the tensor; no full-size decode after.
    source = Image.linear_gradient("L").resize((300, 200)).convert("RGB")
    buf = io.BytesIO()
    source.save(buf, "PNG")
    async with connect("streamable-2026", comfy.url) as client:
        result = await client.call_tool(
            "upscale_image", {"input_image": base64.b64encode(buf.getvalue()).decode()}
        )
        data = ok(result)
    (preview,) = [c for c in result.content if isinstance(c, ImageContent)]
    with Image.open(io.BytesIO(base64.b64decode(preview.data))) as im:
        assert preview.mime_type == "image/webp" and im.size == (512, 341)
        small = np.asarray(im.convert("L"), dtype=np.float32)
    with Image.open(files_of(comfy, data)[0]) as full:
        assert full.size == (1200, 800)
        expected = np.asarray(full.convert("L").resize((512, 341), Image.Resampling.BOX), dtype=np.float32)
    assert float(np.abs(small - expected).mean()) < 6  # the same picture, from the tensor
    (prompt_id,) = data["prompt_ids"]
    entry = comfy_api.history(comfy.url, prompt_id)
    assert entry is not None
    prompt = entry["prompt"][2]
    added = [node for node in prompt.values() if node["class_type"] == "MCPBridgeResultPreview"]
    (save_id,) = [nid for nid, node in prompt.items() if node["class_type"] == "SaveImage"]
    assert [node["inputs"]["key"] for node in added] == [f"{prompt_id}/{save_id}"]
    assert "no in-prompt preview" not in comfy.log_text()
