"""Workflow templates: start-up validation, slot injection, bypasses and LoRA chaining."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcp_bridge.specs.graph import (
    CORE_NODES,
    SlotValueRejected,
    Template,
    TemplateError,
    build_prompt,
    default_folder,
    is_link,
    parse_template,
    read_workflow_file,
)

SHIPPED = Path(__file__).resolve().parents[2] / "workflows" / "tools"


@dataclass
class Lora:
    name: str
    strength_model: float = 1.0
    strength_clip: float = 1.0


TXT2IMG: dict[str, Any] = {
    "model": "sd15.safetensors",
    "prompt": "a lighthouse at dusk",
    "negative_prompt": "blurry",
    "width": 640,
    "height": 384,
    "batch_size": 2,
    "seed": 1234,
    "steps": 12,
    "cfg_scale": 6.5,
    "sampler": "euler",
    "scheduler": "karras",
}
IMG2IMG: dict[str, Any] = {
    "model": "sd15.safetensors",
    "image": "mcp/in.png",
    "prompt": "oil painting",
    "seed": 7,
}


Library = dict[str, Template]


@pytest.fixture(scope="module")
def library() -> Library:
    """Every shipped workflow parsed as a template (what the spec loader builds on)."""
    return {p.stem: parse_template(p.stem, read_workflow_file(p)) for p in sorted(SHIPPED.glob("*.json"))}


def by_class(prompt: dict[str, Any], class_type: str) -> list[str]:
    return [node_id for node_id, node in prompt.items() if node["class_type"] == class_type]


def links_to(prompt: dict[str, Any], node_id: str, index: int) -> list[tuple[str, str]]:
    return [
        (consumer, key)
        for consumer, node in prompt.items()
        for key, value in node["inputs"].items()
        if is_link(value) and value == [node_id, index]
    ]


def assert_graph_sound(prompt: dict[str, Any]) -> None:
    for node in prompt.values():
        for value in node["inputs"].values():
            if is_link(value):
                assert value[0] in prompt, f"dangling link {value}"
                outputs = CORE_NODES[prompt[value[0]]["class_type"]][0]
                assert 0 <= value[1] < outputs


def template_text(nodes: dict[str, Any], slots: dict[str, Any] | None = None, **meta: Any) -> str:
    return json.dumps({"_bridge": {"slots": slots or {}, **meta}, **nodes})


MINIMAL = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
}


def test_the_shipped_templates_all_load_without_problems(library: Library) -> None:
    assert set(library) >= {"txt2img", "img2img", "inpaint", "outpaint", "upscale", "images_to_video"}
    assert "images_to_animation" in library
    assert default_folder() == SHIPPED


def test_the_shipped_templates_pass_a_check_against_comfyuis_core_node_names(
    library: Library,
) -> None:
    outputs = {k: v[0] for k, v in CORE_NODES.items()}
    for name in library:
        parse_template(name, read_workflow_file(SHIPPED / f"{name}.json"), set(CORE_NODES), outputs)


def test_the_shipped_templates_declare_the_slots_the_tools_fill(library: Library) -> None:
    common = {"model", "prompt", "negative_prompt", "width", "height", "batch_size", "seed", "steps"}
    common |= {"cfg_scale", "sampler", "scheduler"}
    assert set(library["txt2img"].slots) == common
    assert set(library["img2img"].slots) == common | {"image", "denoise"}
    assert set(library["upscale"].slots) == {"image", "upscale_model"}


def test_txt2img_receives_every_value_in_its_slot(library: Library) -> None:
    prompt = build_prompt(library["txt2img"], TXT2IMG, filename_prefix="mcp/job-1")
    (sampler,) = by_class(prompt, "KSampler")
    inputs = prompt[sampler]["inputs"]
    assert (inputs["seed"], inputs["steps"], inputs["cfg"]) == (1234, 12, 6.5)
    assert (inputs["sampler_name"], inputs["scheduler"], inputs["denoise"]) == ("euler", "karras", 1.0)
    (latent,) = by_class(prompt, "EmptyLatentImage")
    assert prompt[latent]["inputs"] == {"width": 640, "height": 384, "batch_size": 2}
    texts = {prompt[n]["inputs"]["text"] for n in by_class(prompt, "CLIPTextEncode")}
    assert texts == {"a lighthouse at dusk", "blurry"}
    assert prompt[inputs["positive"][0]]["inputs"]["text"] == "a lighthouse at dusk"
    (save,) = by_class(prompt, "SaveImage")
    assert prompt[save]["inputs"]["filename_prefix"] == "mcp/job-1"
    assert_graph_sound(prompt)


def test_build_returns_a_fresh_copy_and_leaves_the_template_untouched(library: Library) -> None:
    before = copy.deepcopy(library["txt2img"].prompt)
    first = build_prompt(library["txt2img"], TXT2IMG, [Lora("a")], filename_prefix="mcp/a")
    first["3"]["inputs"]["seed"] = 99
    second = build_prompt(library["txt2img"], {**TXT2IMG, "seed": 1}, filename_prefix="mcp/b")
    assert library["txt2img"].prompt == before
    assert second["3"]["inputs"]["seed"] == 1
    assert not by_class(second, "LoraLoader")


def test_values_left_out_or_given_as_none_keep_the_template_defaults(library: Library) -> None:
    prompt = build_prompt(
        library["txt2img"], {"model": "m", "prompt": "p", "seed": 1, "steps": None}, filename_prefix="mcp/x"
    )
    assert prompt["3"]["inputs"]["steps"] == 28
    assert prompt["5"]["inputs"] == {"width": 512, "height": 768, "batch_size": 1}


def test_an_integer_cfg_is_stored_as_a_float(library: Library) -> None:
    prompt = build_prompt(library["txt2img"], {**TXT2IMG, "cfg_scale": 7}, filename_prefix="mcp/x")
    assert prompt["3"]["inputs"]["cfg"] == 7.0 and isinstance(prompt["3"]["inputs"]["cfg"], float)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("prompt", ["4", 0], id="prompt-as-a-node-link"),
        pytest.param("prompt", {"a": 1}, id="prompt-as-an-object"),
        pytest.param("prompt", ("4", 0), id="prompt-as-a-tuple"),
        pytest.param("prompt", 5, id="prompt-as-a-number"),
        pytest.param("seed", "5", id="seed-as-a-string"),
        pytest.param("seed", True, id="seed-as-a-bool"),
        pytest.param("seed", 5.0, id="seed-as-a-float"),
        pytest.param("cfg_scale", math.nan, id="cfg-nan"),
        pytest.param("cfg_scale", math.inf, id="cfg-infinite"),
        pytest.param("cfg_scale", False, id="cfg-as-a-bool"),
        pytest.param("width", [512], id="width-as-a-list"),
        pytest.param("model", b"m", id="model-as-bytes"),
    ],
)
def test_build_refuses_values_that_are_not_scalars_of_the_slot_type(
    library: Library, key: str, value: object
) -> None:
    with pytest.raises(SlotValueRejected, match=key):
        build_prompt(library["txt2img"], {**TXT2IMG, key: value}, filename_prefix="mcp/x")  # type: ignore[dict-item]


def test_build_refuses_a_value_for_a_slot_the_template_does_not_declare(library: Library) -> None:
    with pytest.raises(SlotValueRejected, match="no slot 'denoise'"):
        build_prompt(library["txt2img"], {**TXT2IMG, "denoise": 0.5}, filename_prefix="mcp/x")


def test_build_requires_the_slots_marked_required(library: Library) -> None:
    with pytest.raises(SlotValueRejected, match="needs a value for image, model"):
        build_prompt(library["img2img"], {"prompt": "p", "seed": 1}, filename_prefix="mcp/x")


@pytest.mark.parametrize(
    "prefix",
    ["", "../x", "/abs", "a//b", "a/../b", "mcp/%date:yyyy%", "x" * 65, "a/b/c/d/e", "-x", "mcp/a b", 7],
)
def test_build_refuses_unsafe_filename_prefixes(library: Library, prefix: Any) -> None:
    with pytest.raises(SlotValueRejected, match="filename_prefix"):
        build_prompt(library["txt2img"], TXT2IMG, filename_prefix=prefix)


def test_loras_are_chained_between_the_checkpoint_and_every_model_and_clip_consumer(
    library: Library,
) -> None:
    loras = [Lora("style/a.safetensors", 1.0, 0.5), Lora("b.safetensors", -0.8, 2.0), Lora("c", 0.1, 0.1)]
    prompt = build_prompt(library["txt2img"], TXT2IMG, loras, filename_prefix="mcp/x")
    (ckpt,) = by_class(prompt, "CheckpointLoaderSimple")
    chain = by_class(prompt, "LoraLoader")
    assert len(chain) == 3
    first = links_to(prompt, ckpt, 0)
    assert [consumer for consumer, _ in first] == [chain[0]]
    assert [consumer for consumer, _ in links_to(prompt, ckpt, 1)] == [chain[0]]
    previous = ckpt
    for node_id, lora in zip(chain, loras, strict=True):
        inputs = prompt[node_id]["inputs"]
        assert inputs["model"] == [previous, 0] and inputs["clip"] == [previous, 1]
        assert (inputs["lora_name"], inputs["strength_model"], inputs["strength_clip"]) == (
            lora.name,
            lora.strength_model,
            lora.strength_clip,
        )
        previous = node_id
    model_users = {prompt[c]["class_type"] for c, _ in links_to(prompt, chain[-1], 0)}
    clip_users = [prompt[c]["class_type"] for c, _ in links_to(prompt, chain[-1], 1)]
    assert model_users == {"KSampler"}
    assert clip_users == ["CLIPTextEncode", "CLIPTextEncode"]
    assert prompt[ckpt]["inputs"]["ckpt_name"] == "sd15.safetensors"
    (decode,) = by_class(prompt, "VAEDecode")
    assert prompt[decode]["inputs"]["vae"] == [ckpt, 2]
    assert_graph_sound(prompt)


def test_lora_chaining_finds_consumers_by_link_whatever_the_node_ids() -> None:
    nodes = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m"}},
        "77": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["ckpt", 1]}},
        "a:b": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["ckpt", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "x": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["ckpt", 0],
                "positive": ["77", 0],
                "negative": ["a:b", 0],
                "latent_image": ["5", 0],
                "seed": 0,
                "steps": 1,
                "cfg": 1.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
            },
        },
        "78": {"class_type": "VAEDecode", "inputs": {"samples": ["x", 0], "vae": ["ckpt", 2]}},
        "save": {"class_type": "SaveImage", "inputs": {"images": ["78", 0], "filename_prefix": "p"}},
    }
    template = parse_template("odd", template_text(nodes))
    prompt = build_prompt(template, {}, [Lora("a"), Lora("b")], filename_prefix="mcp/x")
    chain = by_class(prompt, "LoraLoader")
    assert chain == ["79", "80"]
    assert prompt["x"]["inputs"]["model"] == ["80", 0]
    assert prompt["77"]["inputs"]["clip"] == ["80", 1] and prompt["a:b"]["inputs"]["clip"] == ["80", 1]
    assert prompt["79"]["inputs"]["model"] == ["ckpt", 0]


def test_build_refuses_duplicate_loras_and_non_finite_strengths(library: Library) -> None:
    with pytest.raises(SlotValueRejected, match="listed twice"):
        build_prompt(library["txt2img"], TXT2IMG, [Lora("a"), Lora("a", 0.5)], filename_prefix="mcp/x")
    with pytest.raises(SlotValueRejected, match="strength_clip"):
        build_prompt(library["txt2img"], TXT2IMG, [Lora("a", 1.0, math.nan)], filename_prefix="mcp/x")
    with pytest.raises(SlotValueRejected, match="strength_model"):
        build_prompt(library["txt2img"], TXT2IMG, [Lora("a", True)], filename_prefix="mcp/x")
    with pytest.raises(SlotValueRejected, match="name"):
        build_prompt(library["txt2img"], TXT2IMG, [Lora(["4", 0])], filename_prefix="mcp/x")  # type: ignore[arg-type]


def test_a_template_without_a_checkpoint_loader_takes_no_loras(library: Library) -> None:
    assert not library["upscale"].supports_loras
    with pytest.raises(SlotValueRejected, match="does not take LoRAs"):
        build_prompt(
            library["upscale"],
            {"image": "a.png", "upscale_model": "x4.pth"},
            [Lora("a")],
            filename_prefix="m",
        )


def test_img2img_without_size_or_batch_bypasses_resize_and_repeat(library: Library) -> None:
    prompt = build_prompt(
        library["img2img"], {**IMG2IMG, "batch_size": 1, "denoise": 0.4}, filename_prefix="mcp/x"
    )
    assert not by_class(prompt, "ImageScale") and not by_class(prompt, "RepeatLatentBatch")
    (load,) = by_class(prompt, "LoadImage")
    (encode,) = by_class(prompt, "VAEEncode")
    (sampler,) = by_class(prompt, "KSampler")
    assert prompt[load]["inputs"]["image"] == "mcp/in.png"
    assert prompt[encode]["inputs"]["pixels"] == [load, 0]
    assert prompt[sampler]["inputs"]["latent_image"] == [encode, 0]
    assert prompt[sampler]["inputs"]["denoise"] == 0.4
    assert_graph_sound(prompt)


def test_img2img_with_size_and_batch_keeps_resize_and_repeat_in_the_chain(library: Library) -> None:
    values = {**IMG2IMG, "width": 256, "height": 320, "batch_size": 3}
    prompt = build_prompt(library["img2img"], values, [Lora("a")], filename_prefix="mcp/x")
    (scale,) = by_class(prompt, "ImageScale")
    (repeat,) = by_class(prompt, "RepeatLatentBatch")
    (encode,) = by_class(prompt, "VAEEncode")
    (sampler,) = by_class(prompt, "KSampler")
    assert (prompt[scale]["inputs"]["width"], prompt[scale]["inputs"]["height"]) == (256, 320)
    assert prompt[encode]["inputs"]["pixels"] == [scale, 0]
    assert prompt[repeat]["inputs"] == {"samples": [encode, 0], "amount": 3}
    assert prompt[sampler]["inputs"]["latent_image"] == [repeat, 0]
    assert_graph_sound(prompt)


def test_the_upscale_template_takes_the_image_and_the_model(library: Library) -> None:
    prompt = build_prompt(
        library["upscale"], {"image": "in.png", "upscale_model": "x4.pth"}, filename_prefix="mcp/u"
    )
    assert prompt["1"]["inputs"]["image"] == "in.png"
    assert prompt["2"]["inputs"]["model_name"] == "x4.pth"
    assert prompt["4"]["inputs"]["filename_prefix"] == "mcp/u"
    assert library["upscale"].save_nodes == ("4",)


def test_more_images_are_loaded_and_batched_after_the_slots_image_and_feed_its_consumers(
    library: Library,
) -> None:
    template = library["images_to_video"]
    prompt = build_prompt(
        template,
        {"image": "a.png", "fps": 12.0},
        filename_prefix="mcp/v",
        more_images={"image": ["b.png", "c.png"]},
    )
    loads = {i: n["inputs"]["image"] for i, n in prompt.items() if n["class_type"] == "LoadImage"}
    assert sorted(loads.values()) == ["a.png", "b.png", "c.png"] and loads["1"] == "a.png"
    batches = [n for n in prompt.values() if n["class_type"] == "ImageBatch"]
    assert len(batches) == 2
    (video,) = [n for n in prompt.values() if n["class_type"] == "CreateVideo"]
    last = prompt[video["inputs"]["images"][0]]
    assert last["class_type"] == "ImageBatch" and loads[last["inputs"]["image2"][0]] == "c.png"
    first = prompt[last["inputs"]["image1"][0]]
    assert first["inputs"]["image1"] == ["1", 0] and loads[first["inputs"]["image2"][0]] == "b.png"
    assert video["inputs"]["fps"] == 12.0


def _nodes(**changes: Any) -> dict[str, Any]:
    nodes = copy.deepcopy(MINIMAL)
    for key, value in changes.items():
        node_id, _, field = key.partition("__")
        if field:
            nodes[node_id][field] = value
        else:
            nodes[node_id] = value
    return nodes


BROKEN = [
    pytest.param("[]", "top level", id="not-an-object"),
    pytest.param(json.dumps(MINIMAL), "'_bridge'", id="no-meta"),
    pytest.param('{"_bridge": {"slots": {}}}', "no nodes", id="no-nodes"),
    pytest.param(template_text({"1": MINIMAL["1"]}), "no SaveImage", id="no-save-node"),
    pytest.param(template_text(_nodes(**{"1__class_type": ""})), "class_type", id="empty-class-type"),
    pytest.param(template_text(_nodes(**{"1__inputs": []})), "'inputs'", id="inputs-not-an-object"),
    pytest.param(template_text(_nodes(**{"2": "x"})), "must be an object", id="node-not-an-object"),
    pytest.param(
        template_text(_nodes(**{"2__inputs": {"images": ["9", 0], "filename_prefix": "x"}})),
        "missing node 9",
        id="dangling-link",
    ),
    pytest.param(
        template_text(_nodes(**{"2__inputs": {"images": ["1", 3], "filename_prefix": "x"}})),
        "no output 3",
        id="output-index-out-of-range",
    ),
    pytest.param(
        template_text(_nodes(**{"2__inputs": {"images": ["1", -1], "filename_prefix": "x"}})),
        "no output -1",
        id="negative-output-index",
    ),
    pytest.param(
        template_text(_nodes(**{"2__inputs": {"images": [1, 0], "filename_prefix": "x"}})),
        "a link must be",
        id="link-with-a-numeric-node-id",
    ),
    pytest.param(
        template_text(_nodes(**{"2__inputs": {"images": ["1", 0, 1], "filename_prefix": "x"}})),
        "scalar or a",
        id="three-element-list",
    ),
    pytest.param(
        template_text(_nodes(**{"2__inputs": {"images": ["1", 0]}})),
        "missing inputs filename_prefix",
        id="missing-required-input",
    ),
    pytest.param(
        template_text(
            {
                "1": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["2", 0]}},
                "2": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["1", 0]}},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
            }
        ),
        "cycle",
        id="cycle",
    ),
    pytest.param(
        template_text(MINIMAL, {"w": {"node": "9", "input": "width", "type": "int"}}),
        "does not exist",
        id="slot-on-a-missing-node",
    ),
    pytest.param(
        template_text(MINIMAL, {"w": {"node": "1", "input": "wide", "type": "int"}}),
        "no input 'wide'",
        id="slot-on-a-missing-input",
    ),
    pytest.param(
        template_text(MINIMAL, {"w": {"node": "1", "input": "width", "type": "list"}}),
        "type must be",
        id="slot-with-an-unknown-type",
    ),
    pytest.param(
        template_text(MINIMAL, {"i": {"node": "2", "input": "images", "type": "string"}}),
        "is a link",
        id="slot-on-a-link-input",
    ),
    pytest.param(
        template_text(MINIMAL, {"w": {"node": "1", "input": "width", "type": "string"}}),
        "default",
        id="slot-type-differs-from-the-default",
    ),
    pytest.param(
        template_text(
            MINIMAL,
            {
                "a": {"node": "1", "input": "width", "type": "int"},
                "b": {"node": "1", "input": "width", "type": "int"},
            },
        ),
        "already has a slot",
        id="two-slots-on-one-input",
    ),
    pytest.param(
        template_text(MINIMAL, {"w": {"node": "1", "input": "width", "type": "int", "required": "yes"}}),
        "'required'",
        id="required-not-a-bool",
    ),
    pytest.param(
        template_text(MINIMAL, bypass={"9": {"through": "x", "when": {}}}),
        "node 9 does not exist",
        id="bypass-of-a-missing-node",
    ),
    pytest.param(
        template_text(
            MINIMAL,
            {"w": {"node": "1", "input": "width", "type": "int"}},
            bypass={"1": {"through": "width", "when": {"w": 1}}},
        ),
        "link inputs",
        id="bypass-through-a-value",
    ),
    pytest.param(
        '{"_bridge": {"slots": {}}, "1": {"class_type": "X", "inputs": {"a": NaN}}}',
        "NaN",
        id="nan-in-the-template",
    ),
]


@pytest.mark.parametrize(("text", "reason"), BROKEN)
def test_a_broken_template_raises_a_template_error_naming_the_problem(text: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason.replace("[", r"\[")):
        parse_template("t", text)


def test_a_template_with_a_node_class_comfyui_lacks_is_refused_with_the_class_named() -> None:
    with pytest.raises(TemplateError, match="ImageUpscaleWithModel, UpscaleModelLoader"):
        parse_template("upscale", (SHIPPED / "upscale.json").read_text(), {"LoadImage", "SaveImage"})


def test_output_counts_from_comfyui_override_the_built_in_table() -> None:
    with pytest.raises(TemplateError, match="no output 0"):
        parse_template("t", template_text(MINIMAL), {"EmptyImage", "SaveImage"}, {"EmptyImage": 0})


def test_unknown_node_classes_are_accepted_when_no_class_list_is_given() -> None:
    nodes = {
        "1": {"class_type": "SomeCustomNode", "inputs": {"x": 1}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 5], "filename_prefix": "x"}},
    }
    assert parse_template("t", template_text(nodes)).save_nodes == ("2",)


def test_a_template_larger_than_the_cap_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_text(" " * 1_000_001)
    with pytest.raises(TemplateError, match="larger than"):
        read_workflow_file(tmp_path / "big.json")
