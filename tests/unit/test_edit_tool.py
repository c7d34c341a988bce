"""edit_image: the edit modes as data, their graphs, which model a call runs and every refusal — through
the SDK's in-memory client against the in-memory ComfyUI, with header-only model files (real tensor
names and shapes, no weights) so family detection reads real headers. ComfyUI's own validation of
these graphs is tests/integration/test_edit_image.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from mcp_bridge.bridge import build_mcp
from mcp_bridge.comfyui.backend import NodeInput
from mcp_bridge.config import Settings
from mcp_bridge.specs.edit import EditValues, Loaders, build_edit_prompt, load_edit_modes, output_size
from mcp_bridge.tools.services import Services
from tests.unit import model_headers as mh
from tests.unit.fake_comfy import FakeComfy, fake_services
from tests.unit.test_tools_fake import png_b64

pytestmark = pytest.mark.anyio

CLIP_TYPES = ("stable_diffusion", "sd3", "qwen_image", "flux2")
FAMILY_NODES = {
    "UNETLoader", "VAELoader", "EmptySD3LatentImage", "EmptyFlux2LatentImage", "Flux2Scheduler",
    "ModelSamplingAuraFlow", "ModelSamplingSD3", "FluxGuidance", "ConditioningZeroOut", "LoraLoaderModelOnly",
    "SamplerCustomAdvanced", "RandomNoise", "CFGGuider", "KSamplerSelect", "SplitSigmasDenoise",
    "TripleCLIPLoader", "QuadrupleCLIPLoader",
}  # fmt: skip
EDIT_NODES = {
    "ReferenceLatent", "FluxKontextImageScale", "ImageScaleToTotalPixels", "TextEncodeQwenImageEdit",
    "TextEncodeQwenImageEditPlus", "CFGNorm", "BasicGuider",
}  # fmt: skip
CORE = {"LoadImage", "VAEDecode", "VAEEncode", "SaveImage", "KSampler", "CLIPTextEncode"}
NODES_052 = (FAMILY_NODES | EDIT_NODES) - {
    "EmptyFlux2LatentImage",
    "Flux2Scheduler",
    "TextEncodeQwenImageEditPlus",
}
KONTEXT = "flux1-dev-kontext_fp8_scaled.safetensors"
SUPPORT = {
    "text_encoders": {
        "clip_l.safetensors": mh.ENCODERS["clip_l"],
        "t5xxl_fp16.safetensors": mh.ENCODERS["t5_xxl"],
        "qwen_2.5_vl_7b_fp8_scaled.safetensors": mh.ENCODERS["qwen25_7b"],
        "mistral_3_small_flux2_bf16.safetensors": mh.ENCODERS["mistral3_24b_flux2"],
    },
    "vae": {
        "ae.safetensors": mh.vae(16),
        "qwen_image_vae.safetensors": mh.wan_vae(),
        "flux2-vae.safetensors": mh.vae(32),
    },
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def extra_nodes(nodes: set[str]) -> dict[str, dict[str, NodeInput]]:
    table: dict[str, dict[str, NodeInput]] = {name: {} for name in nodes}
    table["CLIPLoader"] = {"type": NodeInput("COMBO", options=CLIP_TYPES)}
    table["DualCLIPLoader"] = {"type": NodeInput("COMBO", options=("sdxl", "sd3", "flux"))}
    return table


@asynccontextmanager
async def edit_bridge(
    root: Path, models: dict[str, mh.Shapes], *, nodes: set[str] | None = None, support: bool = True
) -> AsyncIterator[tuple[Client, Services]]:
    """The bridge over a fake ComfyUI whose diffusion_models are ``models`` (header-only files)."""
    folders: dict[str, dict[str, mh.Shapes]] = {"diffusion_models": models, **(SUPPORT if support else {})}
    listing: dict[str, list[str]] = {"checkpoints": ["tiny.safetensors"]}
    for folder, files in folders.items():
        for name, shapes in files.items():
            mh.write_header_only(root / "models" / folder / name, shapes)
        listing[folder] = list(files)
    mh.write_header_only(root / "models" / "checkpoints" / "tiny.safetensors", mh.sd15_checkpoint())
    fake: dict[str, Any] = {"models": listing, "extra_nodes": extra_nodes(nodes or FAMILY_NODES | EDIT_NODES)}
    async with fake_services(root, Settings(), **fake) as services, Client(build_mcp(services)) as client:
        yield client, services


def queued(services: Services) -> list[dict[str, Any]]:
    assert isinstance(services.comfy, FakeComfy)
    return [prompt for _, prompt in services.comfy.queued]


def staged(root: Path) -> list[Path]:
    folder = root / "input" / "mcp"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def classes(prompt: dict[str, Any]) -> list[str]:
    return sorted(node["class_type"] for node in prompt.values())


def only(prompt: dict[str, Any], class_type: str) -> dict[str, Any]:
    (found,) = [n["inputs"] for n in prompt.values() if n["class_type"] == class_type]
    return found


# -- the declarations and graphs (pure) --


def test_the_shipped_edit_modes_are_offered_where_their_nodes_exist() -> None:
    modes, left_out = load_edit_modes(FAMILY_NODES | EDIT_NODES | CORE)
    assert [m.id for m in modes] == ["flux1_kontext", "flux2", "qwen_image_edit", "qwen_image_edit_plus"]
    assert left_out == {}
    assert {m.id: m.references for m in modes} == {
        "flux1_kontext": 3, "flux2": 5, "qwen_image_edit": 0, "qwen_image_edit_plus": 2,
    }  # fmt: skip
    old, left_out = load_edit_modes(NODES_052 | CORE)
    assert [m.id for m in old] == ["flux1_kontext", "qwen_image_edit"]
    assert "TextEncodeQwenImageEditPlus" in left_out["qwen_image_edit_plus"]
    assert "Flux2Scheduler" in left_out["flux2"]


def _values(references: int, **changes: Any) -> EditValues:
    base: dict[str, Any] = {
        "image": "mcp/in.png", "references": tuple(f"mcp/ref{n}.png" for n in range(references)),
        "instruction": "make it night", "seed": 5, "steps": 20, "width": 1024, "height": 768,
        "filename_prefix": "mcp/x",
    }  # fmt: skip
    return EditValues(**{**base, **changes})


def _links_resolve(prompt: dict[str, Any]) -> bool:
    links = [v for n in prompt.values() for v in n["inputs"].values() if isinstance(v, list)]
    return all(link[0] in prompt for link in links)


def test_each_mode_builds_its_templates_graph_with_the_references_chained() -> None:
    modes = {m.id: m for m in load_edit_modes(FAMILY_NODES | EDIT_NODES | CORE)[0]}
    dual = Loaders(
        "k.safetensors", "DualCLIPLoader", "flux", ("clip_l.safetensors", "t5.safetensors"), "ae.st"
    )
    kontext = build_edit_prompt(modes["flux1_kontext"], dual, _values(3))
    assert classes(kontext).count("ReferenceLatent") == 4 and classes(kontext).count("LoadImage") == 4
    assert classes(kontext).count("FluxKontextImageScale") == 4
    assert only(kontext, "FluxGuidance")["guidance"] == 2.5
    assert only(kontext, "KSampler")["cfg"] == 1.0 and only(kontext, "KSampler")["denoise"] == 1.0
    assert only(kontext, "DualCLIPLoader") == {
        "clip_name1": "clip_l.safetensors", "clip_name2": "t5.safetensors", "type": "flux",
    }  # fmt: skip
    latent = only(kontext, "EmptySD3LatentImage")
    assert (latent["width"], latent["height"]) == (1024, 768)
    assert _links_resolve(kontext)
    qwen = Loaders("q.safetensors", "CLIPLoader", "qwen_image", ("qwen.safetensors",), "qvae.safetensors")
    plus = build_edit_prompt(modes["qwen_image_edit_plus"], qwen, _values(2, cfg_scale=4.0, shift=2.0))
    encoders = [n["inputs"] for n in plus.values() if n["class_type"] == "TextEncodeQwenImageEditPlus"]
    assert sorted(e["prompt"] for e in encoders) == ["", "make it night"]
    assert all({"image1", "image2", "image3"} <= set(e) for e in encoders)
    assert only(plus, "ModelSamplingAuraFlow")["shift"] == 2.0 and only(plus, "KSampler")["cfg"] == 4.0
    assert only(plus, "CFGNorm")["strength"] == 1.0 and _links_resolve(plus)
    single = build_edit_prompt(modes["qwen_image_edit"], qwen, _values(0))
    assert [n["inputs"].get("image") for n in single.values() if n["class_type"] == "TextEncodeQwenImageEdit"]
    assert only(single, "KSampler")["cfg"] == 2.5 and only(single, "ModelSamplingAuraFlow")["shift"] == 3.0
    flux2 = build_edit_prompt(
        modes["flux2"], Loaders("f2", "CLIPLoader", "flux2", ("m.safetensors",), "v"), _values(5)
    )
    assert classes(flux2).count("ReferenceLatent") == 6 and "KSampler" not in classes(flux2)
    assert only(flux2, "Flux2Scheduler") == {"steps": 20, "width": 1024, "height": 768}
    assert only(flux2, "EmptyFlux2LatentImage")["width"] == 1024 and _links_resolve(flux2)
    with pytest.raises(ValueError, match="at most 0 reference images"):
        build_edit_prompt(modes["qwen_image_edit"], qwen, _values(1))


@pytest.mark.parametrize(
    ("size", "expected"), [((300, 200), (1248, 832)), ((200, 300), (832, 1248)), ((64, 64), (1024, 1024))]
)
def test_the_output_keeps_the_inputs_aspect_at_the_pixel_budget(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert output_size(*size, 1024 * 1024, 16) == expected


# -- the tool --


async def test_a_kontext_edit_runs_with_its_references_and_reports_what_it_ran(tmp_path: Path) -> None:
    models = {KONTEXT: mh.flux1(), "flux1-dev.safetensors": mh.flux1()}
    async with edit_bridge(tmp_path, models) as (client, services):
        refs = [png_b64((64, 64)), png_b64((80, 40))]
        arguments = {"input_image": png_b64((300, 200)), "instruction": "make it night", "seed": 9}
        result = await client.call_tool("edit_image", {**arguments, "reference_images": refs})
        assert not result.is_error, text(result)
        (prompt,) = queued(services)
    assert classes(prompt).count("ReferenceLatent") == 3
    assert only(prompt, "UNETLoader")["unet_name"] == KONTEXT
    assert only(prompt, "VAELoader")["vae_name"] == "ae.safetensors"
    assert only(prompt, "KSampler")["seed"] == 9
    data = result.structured_content or {}
    meta = {k: data.get(k) for k in ("family", "model", "seed", "width", "height", "guidance", "vae")}
    assert meta == {
        "family": "flux1_kontext", "model": KONTEXT, "seed": 9, "width": 1248, "height": 832,
        "guidance": 2.5, "vae": "ae.safetensors",
    }  # fmt: skip
    assert len(data["references"]) == 2 and data["input"]["width"] == 300
    assert staged(tmp_path) == []  # the job ended: its staged copies are gone


async def test_too_many_references_are_refused_before_anything_is_staged_or_queued(tmp_path: Path) -> None:
    async with edit_bridge(tmp_path, {KONTEXT: mh.flux1()}) as (client, services):
        refs = [png_b64((64, 64))] * 4
        call = {"input_image": png_b64((64, 64)), "instruction": "x", "reference_images": refs}
        result = await client.call_tool("edit_image", call)
        assert result.is_error
        assert (
            "FLUX.1 Kontext [dev] takes at most 3 reference images besides input_image; 4 were given"
            in text(result)
        )
        assert queued(services) == []
    assert staged(tmp_path) == []


async def test_the_qwen_modes_take_their_own_number_of_images_and_knobs(tmp_path: Path) -> None:
    models = {
        "qwen_image_edit_fp8_e4m3fn.safetensors": mh.qwen_image(),
        "qwen_image.safetensors": mh.qwen_image(),
    }
    models["qwen_image_edit_2509_fp8_e4m3fn.safetensors"] = mh.qwen_image()
    async with edit_bridge(tmp_path, models) as (client, services):
        base = {"input_image": png_b64((64, 64)), "instruction": "add a hat"}
        first = {**base, "model": "qwen_image_edit_fp8_e4m3fn.safetensors"}
        one = await client.call_tool("edit_image", {**first, "reference_images": [png_b64((8, 8))]})
        assert "takes no reference images besides input_image; 1 were given" in text(one)
        knob = await client.call_tool("edit_image", {**first, "guidance": 3.0})
        assert "does not take guidance; it takes cfg_scale, shift" in text(knob)
        assert queued(services) == []
        plus = {
            **base,
            "model": "qwen_image_edit_2509_fp8_e4m3fn.safetensors",
            "shift": 2.5,
            "cfg_scale": 3.0,
        }
        result = await client.call_tool("edit_image", {**plus, "reference_images": [png_b64((8, 8))] * 2})
        assert not result.is_error, text(result)
        (prompt,) = queued(services)
        several = await client.call_tool("edit_image", base)
        assert "several edit models are installed" in text(several)
    assert "TextEncodeQwenImageEditPlus" in classes(prompt)
    assert only(prompt, "CLIPLoader") == {
        "clip_name": "qwen_2.5_vl_7b_fp8_scaled.safetensors",
        "type": "qwen_image",
    }
    assert (result.structured_content or {})["shift"] == 2.5


async def test_a_base_model_is_an_edit_model_only_when_named_or_chosen(tmp_path: Path) -> None:
    async with edit_bridge(tmp_path, {"flux1-dev.safetensors": mh.flux1()}) as (client, services):
        base = {"input_image": png_b64((64, 64)), "instruction": "x"}
        plain = await client.call_tool("edit_image", {**base, "model": "flux1-dev.safetensors"})
        assert (
            "its name does not say which edit model it is: if it is one, say family (flux1_kontext)"
            in text(plain)
        )
        chosen = {**base, "model": "flux1-dev.safetensors", "family": "flux1_kontext"}
        result = await client.call_tool("edit_image", chosen)
        assert not result.is_error, text(result)
        assert len(queued(services)) == 1


async def test_with_no_edit_model_it_says_what_this_comfyui_could_run(tmp_path: Path) -> None:
    async with edit_bridge(tmp_path, {"flux1-dev.safetensors": mh.flux1()}) as (client, services):
        result = await client.call_tool("edit_image", {"input_image": png_b64((64, 64)), "instruction": "x"})
        sd = await client.call_tool(
            "edit_image", {"input_image": png_b64((64, 64)), "instruction": "x", "model": "tiny.safetensors"}
        )
        assert queued(services) == []
    message = text(result)
    assert "no edit model is installed. This ComfyUI can edit with (install one):" in message
    assert "- flux1_kontext (FLUX.1 Kontext [dev]): models/diffusion_models/" + KONTEXT in message
    assert "models/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors" in message
    assert "qwen_image_edit_plus" in message and "flux2" in message
    assert (
        "tiny.safetensors is a Stable Diffusion checkpoint, which cannot edit by instruction: use img2img"
        in (text(sd))
    )
    assert "inpaint" in text(sd)
    assert staged(tmp_path) == []


async def test_what_is_missing_for_the_chosen_model_is_named(tmp_path: Path) -> None:
    async with edit_bridge(tmp_path, {KONTEXT: mh.flux1()}, support=False) as (client, services):
        result = await client.call_tool("edit_image", {"input_image": png_b64((64, 64)), "instruction": "x"})
        assert queued(services) == []
    assert "FLUX.1 Kontext [dev]: " in text(result) and "install clip_l.safetensors" in text(result)


async def test_the_tool_is_listed_only_where_an_edit_mode_can_run(tmp_path: Path) -> None:
    async with edit_bridge(tmp_path, {}, nodes=FAMILY_NODES) as (client, _):
        names = {t.name for t in (await client.list_tools()).tools}
    assert "edit_image" not in names
    async with edit_bridge(tmp_path / "b", {}, nodes=NODES_052) as (client, _):
        tool = next(t for t in (await client.list_tools()).tools if t.name == "edit_image")
    assert tool.input_schema["properties"]["family"]["enum"] == ["flux1_kontext", "qwen_image_edit"]
    assert tool.input_schema["properties"]["reference_images"]["maxItems"] == 3
    async with edit_bridge(tmp_path / "c", {KONTEXT: mh.flux1()}, nodes=NODES_052) as (client, services):
        call = {"input_image": png_b64((64, 64)), "instruction": "x", "reference_images": ["a.png"] * 4}
        result = await client.call_tool("edit_image", call)
        assert queued(services) == []
    said = "4 reference images were given; the edit families here take at most: flux1_kontext 3, "
    assert said + "qwen_image_edit 0" in text(result)
    assert "title" not in tool.input_schema["properties"]["model"]


async def test_asked_sizes_follow_the_pixel_budget_and_come_together(tmp_path: Path) -> None:
    async with edit_bridge(tmp_path, {KONTEXT: mh.flux1()}) as (client, services):
        base = {"input_image": png_b64((64, 64)), "instruction": "x"}
        alone = await client.call_tool("edit_image", {**base, "width": 512})
        assert "give width and height together" in text(alone)
        big = await client.call_tool("edit_image", {**base, "width": 2048, "height": 2048 + 16})
        assert big.is_error
        result = await client.call_tool("edit_image", {**base, "width": 512, "height": 256})
        assert not result.is_error, text(result)
        (prompt,) = queued(services)
    assert (only(prompt, "EmptySD3LatentImage")["width"], only(prompt, "EmptySD3LatentImage")["height"]) == (
        512,
        256,
    )


async def test_a_bad_reference_is_named_and_nothing_stays_staged(tmp_path: Path) -> None:
    async with edit_bridge(tmp_path, {KONTEXT: mh.flux1()}) as (client, services):
        refs = [png_b64((64, 64)), "nope.png"]
        call = {"input_image": png_b64((64, 64)), "instruction": "x", "reference_images": refs}
        result = await client.call_tool("edit_image", call)
        assert queued(services) == []
    assert "reference_images[1]: no file named 'nope.png'" in text(result)
    assert staged(tmp_path) == []


async def test_text_encoders_and_vae_may_be_named_and_must_fit(tmp_path: Path) -> None:
    async with edit_bridge(tmp_path, {KONTEXT: mh.flux1()}) as (client, services):
        base = {"input_image": png_b64((64, 64)), "instruction": "x"}
        wrong = await client.call_tool("edit_image", {**base, "vae": "qwen_image_vae.safetensors"})
        assert "qwen_image_vae.safetensors is a Wan 2.1 / Qwen-Image VAE" in text(wrong)
        assert queued(services) == []
        named = {
            **base,
            "text_encoders": ["t5xxl_fp16.safetensors", "clip_l.safetensors"],
            "vae": "ae.safetensors",
        }
        result = await client.call_tool("edit_image", named)
        assert not result.is_error, text(result)
        (prompt,) = queued(services)
    assert only(prompt, "DualCLIPLoader")["clip_name1"] == "clip_l.safetensors"
