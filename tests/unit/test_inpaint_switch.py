"""inpaint with an inpainting checkpoint: its own conditioning (InpaintModelConditioning) instead of a
latent noise mask; the checkpoint is recognised from its safetensors header alone."""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from mcp import Client
from safetensors.torch import save_file

from mcp_bridge.bridge import build_mcp
from mcp_bridge.comfyui import headers as checkpoint_header
from mcp_bridge.specs.spec import SpecError, parse_spec
from tests.unit.fake_comfy import FakeComfy, fake_services
from tests.unit.test_specs import shipped
from tests.unit.test_tools_fake import mask_b64, png_b64, text

pytestmark = pytest.mark.anyio
MODELS = {"checkpoints": ["plain.safetensors", "inpainting.safetensors"], "controlnet": ["cn.safetensors"]}
CALL = {"prompt": "a window", "steps": 2, "seed": 3, "input_image": png_b64((64, 64))}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def inpaint(root: Path, **arguments: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
    """One inpaint call: the prompt queued, the result's structured content, the job's summary."""
    call = {**CALL, "mask": mask_b64((64, 64), (16, 16, 48, 48)), **arguments}
    return await queued_call(root, "inpaint", call)


async def queued_call(
    root: Path, tool: str, call: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """One call of ``tool`` with an inpainting checkpoint installed: the prompt queued, the result's
    structured content, the job's summary."""
    async with (
        fake_services(root, models=MODELS, inpainting={"inpainting.safetensors"}) as services,
        Client(build_mcp(services)) as client,
    ):
        result = await client.call_tool(tool, call)
        assert not result.is_error, text(result)
        assert isinstance(services.comfy, FakeComfy)
        ((_, prompt),) = services.comfy.queued
        assert result.structured_content is not None
        (job,) = services.registry.all()
        return prompt, result.structured_content, job.summary


def by_class(prompt: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {n["class_type"]: (i, n["inputs"]) for i, n in prompt.items()}


async def test_an_inpainting_checkpoint_is_conditioned_by_inpaint_model_conditioning(tmp_path: Path) -> None:
    prompt, content, summary = await inpaint(tmp_path, model="inpainting.safetensors")
    nodes = by_class(prompt)
    assert "VAEEncode" not in nodes and "SetLatentNoiseMask" not in nodes
    condition, inputs = nodes["InpaintModelConditioning"]
    sampler = nodes["KSampler"][1]
    assert (sampler["positive"], sampler["negative"], sampler["latent_image"]) == (
        [condition, 0],
        [condition, 1],
        [condition, 2],
    )
    checkpoint, grow, load = nodes["CheckpointLoaderSimple"][0], nodes["GrowMask"][0], nodes["LoadImage"][0]
    assert inputs["vae"] == [checkpoint, 2] and inputs["pixels"] == [load, 0] and inputs["mask"] == [grow, 0]
    assert inputs["noise_mask"] is True
    texts = {n["_meta"]["title"]: i for i, n in prompt.items() if n["class_type"] == "CLIPTextEncode"}
    assert inputs["positive"] == [texts["Positive prompt"], 0]
    assert inputs["negative"] == [texts["Negative prompt"], 0]
    paste = nodes["ImageCompositeMasked"][1]
    assert paste["destination"] == [load, 0] and paste["mask"] == [nodes["LoadImageMask"][0], 0]
    assert content["inpaint_conditioning"] == "model" and content["model"] == "inpainting.safetensors"
    assert "inpaint_conditioning='model'" in summary


async def test_an_ordinary_checkpoint_keeps_the_noise_mask_path(tmp_path: Path) -> None:
    prompt, content, summary = await inpaint(tmp_path, model="plain.safetensors")
    nodes = by_class(prompt)
    assert "InpaintModelConditioning" not in nodes
    encode, noise = nodes["VAEEncode"][0], nodes["SetLatentNoiseMask"]
    assert noise[1]["samples"] == [encode, 0] and nodes["KSampler"][1]["latent_image"] == [noise[0], 0]
    assert content["inpaint_conditioning"] == "noise_mask"
    assert "inpaint_conditioning='noise_mask'" in summary


async def test_the_model_conditioning_takes_the_controlnet_stack_output(tmp_path: Path) -> None:
    control = {"image": png_b64((64, 64)), "model": "cn.safetensors"}
    prompt, _, _ = await inpaint(tmp_path, model="inpainting.safetensors", controlnets=[control])
    nodes = by_class(prompt)
    apply, condition = nodes["ControlNetApplyAdvanced"][0], nodes["InpaintModelConditioning"]
    assert condition[1]["positive"] == [apply, 0] and condition[1]["negative"] == [apply, 1]
    assert nodes["KSampler"][1]["positive"] == [condition[0], 0]


async def test_without_the_node_or_its_noise_mask_input_the_graph_adapts(tmp_path: Path) -> None:
    call = {**CALL, "mask": mask_b64((64, 64), (16, 16, 48, 48)), "model": "inpainting.safetensors"}
    prompts, kinds = [], []
    for n, tweak in enumerate(("no noise_mask input", "no node")):
        async with (
            fake_services(
                tmp_path / str(n), models=MODELS, inpainting={"inpainting.safetensors"}
            ) as services,
            Client(build_mcp(services)) as client,
        ):
            comfy = services.comfy
            assert isinstance(comfy, FakeComfy)
            if tweak == "no node":
                kept = frozenset(comfy.node_class_names() - {"InpaintModelConditioning"})
                comfy.node_class_names = lambda kept=kept: set(kept)  # type: ignore[method-assign]
            else:
                comfy.node_inputs = lambda class_type: {}  # type: ignore[method-assign]
            result = await client.call_tool("inpaint", call)
            assert not result.is_error, text(result)
            assert result.structured_content is not None
            kinds.append(result.structured_content["inpaint_conditioning"])
            ((_, prompt),) = comfy.queued
            prompts.append(by_class(prompt))
    older, oldest = prompts
    assert "noise_mask" not in older["InpaintModelConditioning"][1]
    assert "InpaintModelConditioning" not in oldest and "SetLatentNoiseMask" in oldest
    assert kinds == ["model", "noise_mask"]


async def test_validation_is_unchanged_for_an_inpainting_checkpoint(tmp_path: Path) -> None:
    async with (
        fake_services(tmp_path, models=MODELS, inpainting={"inpainting.safetensors"}) as services,
        Client(build_mcp(services)) as client,
    ):
        black = await client.call_tool(
            "inpaint", {**CALL, "model": "inpainting.safetensors", "mask": mask_b64((64, 64), None)}
        )
        unknown = await client.call_tool("inpaint", {**CALL, "model": "inpainting-v2.safetensors"})
        assert isinstance(services.comfy, FakeComfy) and services.comfy.queued == []
    assert black.is_error and "all black: nothing to repaint" in text(black)
    assert unknown.is_error and "inpainting.safetensors" in text(unknown)  # names the closest installed
    assert [p for p in (tmp_path / "input").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({"model": "seed"}, "'model' must name", id="not-a-model-input"),
        pytest.param({"sampler": "8"}, "'sampler'", id="not-a-sampler"),
        pytest.param({"vae": ["4", 7]}, "'vae'", id="no-such-output"),
        pytest.param({"mask": "21"}, "'mask' must be a", id="not-a-link"),
        pytest.param({"pixels": ["99", 0]}, "'pixels'", id="no-such-node"),
        pytest.param({"noise_mask": "yes"}, "'noise_mask'", id="noise-mask-not-bool"),
    ],
)
def test_a_broken_inpaint_model_declaration_is_a_spec_error(change: dict[str, Any], expected: str) -> None:
    data = copy.deepcopy(shipped("inpaint"))
    data["_bridge"]["inpaint_model"].update(change)
    with pytest.raises(SpecError, match=expected):
        parse_spec("inpaint", data)


async def test_outpaint_with_an_inpainting_checkpoint_conditions_the_padded_canvas(tmp_path: Path) -> None:
    call = {"prompt": "sky", "input_image": png_b64((64, 64)), "right": 32, "model": "inpainting.safetensors"}
    prompt, content, _summary = await queued_call(tmp_path, "outpaint", call)
    nodes = by_class(prompt)
    assert "VAEEncode" not in nodes and "SetLatentNoiseMask" not in nodes
    condition, inputs = nodes["InpaintModelConditioning"]
    pad, grow = nodes["ImagePadForOutpaint"][0], nodes["GrowMask"][0]
    assert inputs["pixels"] == [pad, 0] and inputs["mask"] == [grow, 0]
    assert nodes["KSampler"][1]["latent_image"] == [condition, 2]
    assert content["inpaint_conditioning"] == "model"


def test_the_shipped_inpaint_spec_declares_the_switch_on_its_model_input() -> None:
    switch = parse_spec("inpaint", shipped("inpaint")).inpaint_model
    assert switch is not None and switch.model == "model" and switch.graph.sampler == "3"
    assert parse_spec("img2img", shipped("img2img")).inpaint_model is None


def checkpoint(path: Path, in_channels: int) -> Path:
    weights = {checkpoint_header.FIRST_CONV: torch.zeros((8, in_channels, 3, 3)), "other": torch.zeros(2)}
    save_file(weights, str(path))
    return path


def test_the_header_tells_an_inpainting_checkpoint_from_an_ordinary_one(tmp_path: Path) -> None:
    assert checkpoint_header.is_inpainting_checkpoint(checkpoint(tmp_path / "in.safetensors", 9))
    assert not checkpoint_header.is_inpainting_checkpoint(checkpoint(tmp_path / "plain.safetensors", 4))
    assert not checkpoint_header.is_inpainting_checkpoint(tmp_path / "missing.safetensors")
    no_conv = tmp_path / "lora.safetensors"
    save_file({"lora_up.weight": torch.zeros((4, 9, 3, 3))}, str(no_conv))
    assert not checkpoint_header.is_inpainting_checkpoint(no_conv)


def test_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    path = checkpoint(tmp_path / "model.safetensors", 4)
    assert not checkpoint_header.is_inpainting_checkpoint(path)
    checkpoint(path, 9)  # other size (and mtime): the cache key changes
    assert checkpoint_header.is_inpainting_checkpoint(path)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x01\x02", id="short"),
        pytest.param(struct.pack("<Q", 200_000_000) + b"{}", id="header-over-100MB"),
        pytest.param(struct.pack("<Q", 50) + b"{}", id="header-past-the-end"),
        pytest.param(struct.pack("<Q", 5) + b"{nope", id="not-json"),
        pytest.param(struct.pack("<Q", 2) + b"[]", id="not-an-object"),
        pytest.param(
            (lambda h: struct.pack("<Q", len(h)) + h)(
                json.dumps({checkpoint_header.FIRST_CONV: {"shape": [8, "9", 3, 3]}}).encode()
            ),
            id="odd-shape",
        ),
    ],
)
def test_an_unreadable_or_broken_file_is_not_an_inpainting_model(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    assert not checkpoint_header.is_inpainting_checkpoint(path)
