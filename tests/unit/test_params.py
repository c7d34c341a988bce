"""Tool input models: strict types, bounds, budgets, schemas and name checks (security.md §6 rows 10-15)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from mcp_bridge.specs.graph import build_prompt, default_folder, parse_template, read_workflow_file
from mcp_bridge.specs.library import make_models
from mcp_bridge.specs.params import (
    DEFAULT_LIMITS,
    MAX_SEED,
    RANDOM_SEED_BOUND,
    Defaults,
    Limits,
    LoraParam,
    ParamRejected,
    UnknownName,
    check_name,
    check_text,
    closest_names,
    explain,
    random_seed,
    resolve_seed,
)

# The shipped tools' arguments models, compiled from their specs for the default limits and defaults.
DEFAULT_MODELS = make_models()
GenerateImageParams = DEFAULT_MODELS.generate_image
Img2ImgParams = DEFAULT_MODELS.img2img
UpscaleImageParams = DEFAULT_MODELS.upscale_image

BASE: dict[str, Any] = {"prompt": "a red fox in snow"}


def rejected(model: Any, data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return explain(info.value)


def test_defaults_are_the_seed_tutorials() -> None:
    p = GenerateImageParams.model_validate(BASE)
    assert (p.width, p.height, p.steps, p.cfg_scale) == (512, 768, 28, 7.0)
    assert (p.sampler, p.scheduler, p.batch_size) == ("euler_ancestral", "normal", 1)
    assert (p.model, p.seed, p.loras, p.output_path, p.overwrite, p.negative_prompt) == (
        None,
        None,
        [],
        None,
        False,
        "",
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="zero"),
        pytest.param(-8, id="negative"),
        pytest.param(7, id="not-a-multiple-of-8"),
        pytest.param(56, id="below-64"),
        pytest.param(16384, id="comfyui-max"),
        pytest.param(2056, id="just-over-max"),
        pytest.param(10**9, id="1e9"),
        pytest.param(2**63, id="2-to-the-63"),
        pytest.param("512", id="numeric-string"),
        pytest.param(512.5, id="fractional"),
        pytest.param(512.0, id="integral-float"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="null"),
        pytest.param([512], id="list"),
    ],
)
def test_width_and_height_outside_bounds_or_of_the_wrong_type_are_rejected(value: object) -> None:
    assert "width" in rejected(GenerateImageParams, {**BASE, "width": value})
    assert "height" in rejected(GenerateImageParams, {**BASE, "height": value})


def test_the_json_form_of_the_arguments_is_as_strict_as_the_python_form() -> None:
    for text in [
        '{"prompt": "x", "width": "512"}',
        '{"prompt": "x", "width": 512.0}',
        '{"prompt": "x", "cfg_scale": NaN}',
    ]:
        with pytest.raises(ValidationError):
            GenerateImageParams.model_validate_json(text)
    assert (
        GenerateImageParams.model_validate_json('{"prompt": "x", "seed": 18446744073709551615}').seed
        == MAX_SEED
    )


def test_sizes_on_the_boundaries_are_accepted() -> None:
    assert GenerateImageParams.model_validate({**BASE, "width": 64, "height": 2048}).height == 2048


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"batch_size": 4096}, id="batch-4096"),
        pytest.param({"batch_size": 0}, id="batch-0"),
        pytest.param({"steps": 0}, id="steps-0"),
        pytest.param({"steps": 10000}, id="steps-10000"),
        pytest.param({"steps": 151}, id="steps-151"),
        pytest.param({"cfg_scale": float("nan")}, id="cfg-nan"),
        pytest.param({"cfg_scale": float("inf")}, id="cfg-infinity"),
        pytest.param({"cfg_scale": -1}, id="cfg-negative"),
        pytest.param({"cfg_scale": 1e308}, id="cfg-1e308"),
        pytest.param({"cfg_scale": "7"}, id="cfg-string"),
        pytest.param({"seed": -1}, id="seed-negative"),
        pytest.param({"seed": 2**64}, id="seed-2-to-the-64"),
        pytest.param({"seed": 1.5}, id="seed-float"),
        pytest.param({"seed": True}, id="seed-bool"),
        pytest.param({"overwrite": 1}, id="overwrite-as-1"),
        pytest.param({"overwrite": "true"}, id="overwrite-as-string"),
        pytest.param({"sampler": ""}, id="empty-sampler"),
        pytest.param({"model": ""}, id="empty-model"),
        pytest.param({"output_path": ""}, id="empty-output-path"),
        pytest.param({"output_path": "x" * 1025 + ".png"}, id="huge-output-path"),
    ],
)
def test_generation_parameters_outside_project_caps_are_rejected(changes: dict[str, Any]) -> None:
    (key,) = changes
    assert key in rejected(GenerateImageParams, {**BASE, **changes})


def test_the_pixel_budget_counts_width_height_and_batch() -> None:
    GenerateImageParams.model_validate({**BASE, "width": 2048, "height": 2048, "batch_size": 1})
    message = rejected(GenerateImageParams, {**BASE, "width": 1024, "height": 1024, "batch_size": 8})
    assert "over the budget of 4194304" in message and "batch_size" in message
    GenerateImageParams.model_validate({**BASE, "width": 512, "height": 768, "batch_size": 8})


def test_limits_check_pixels_is_usable_on_its_own_for_source_image_sizes() -> None:
    DEFAULT_LIMITS.check_pixels(2048, 2048)
    with pytest.raises(ParamRejected, match="over the budget"):
        DEFAULT_LIMITS.check_pixels(4000, 3000, 1)


@pytest.mark.parametrize(
    ("prompt", "needle"),
    [
        pytest.param("x" * (16 * 1024 + 1), "16384", id="one-byte-over-the-cap"),
        pytest.param("x" * 1_000_000, "16384", id="a-1-MB-prompt"),
        pytest.param("é" * 8193, "16386 bytes", id="bytes-not-characters-are-counted"),
        pytest.param("a\x00b", "U+0000", id="nul"),
        pytest.param("\x1b[31mred", "U+001B", id="ansi-escape"),
        pytest.param("a\x85b", "U+0085", id="c1-control"),
        pytest.param("a\ud800b", "valid string", id="lone-surrogate"),
        pytest.param("", "prompt", id="empty"),
        pytest.param(["4", 0], "prompt", id="a-node-link"),
        pytest.param({"a": 1}, "prompt", id="an-object"),
        pytest.param(42, "prompt", id="a-number"),
    ],
)
def test_prompts_are_capped_in_utf8_bytes_and_refuse_controls_and_non_strings(
    prompt: object, needle: str
) -> None:
    assert needle in rejected(GenerateImageParams, {"prompt": prompt})


def test_a_lone_surrogate_from_pythons_json_parser_is_rejected_too() -> None:
    data = json.loads('{"prompt": "a\\ud800b"}')
    assert "prompt" in rejected(GenerateImageParams, data)
    with pytest.raises(ValueError, match="unpaired surrogate"):
        check_text("a\ud800b", 100)


def test_prompts_may_hold_newlines_tabs_markup_and_exactly_the_cap() -> None:
    text = "line one\n\tline two\r\n<img src=x onerror=alert(1)> ✨"
    assert GenerateImageParams.model_validate({"prompt": text}).prompt == text
    GenerateImageParams.model_validate({"prompt": "x" * 16384, "negative_prompt": "é" * 8192})


def test_the_negative_prompt_has_the_same_rules() -> None:
    assert "negative_prompt" in rejected(GenerateImageParams, {**BASE, "negative_prompt": "a\x00"})


def test_unknown_fields_are_rejected_and_named() -> None:
    message = rejected(GenerateImageParams, {**BASE, "workflow": {"1": {}}, "denoise": 0.5})
    assert "workflow: unknown field" in message and "denoise: unknown field" in message


def test_loras_are_parsed_with_default_strengths() -> None:
    p = GenerateImageParams.model_validate(
        {**BASE, "loras": [{"name": "a"}, {"name": "b", "strength_clip": -2}]}
    )
    assert p.loras == [LoraParam(name="a"), LoraParam(name="b", strength_model=1.0, strength_clip=-2.0)]


@pytest.mark.parametrize(
    "loras",
    [
        pytest.param([{"name": f"l{i}"} for i in range(9)], id="nine-loras"),
        pytest.param([{"name": f"l{i}"} for i in range(1000)], id="a-thousand-loras"),
        pytest.param([{"name": "a"}, {"name": "a", "strength_model": 0.2}], id="duplicate-names"),
        pytest.param([{"name": "a", "strength_model": 4.5}], id="strength-over-4"),
        pytest.param([{"name": "a", "strength_clip": -4.01}], id="strength-under-minus-4"),
        pytest.param([{"name": "a", "strength_model": float("nan")}], id="strength-nan"),
        pytest.param([{"name": "a", "weight": 1}], id="unknown-lora-field"),
        pytest.param([{"name": ""}], id="empty-name"),
        pytest.param(["a"], id="bare-string"),
        pytest.param({"name": "a"}, id="object-instead-of-list"),
    ],
)
def test_bad_lora_lists_are_rejected(loras: object) -> None:
    assert "loras" in rejected(GenerateImageParams, {**BASE, "loras": loras})


def test_img2img_requires_an_input_image_and_bounds_denoise() -> None:
    assert "input_image: required" in rejected(Img2ImgParams, BASE)
    for denoise in (1.5, -0.1, float("nan"), "0.5"):
        assert "denoise" in rejected(Img2ImgParams, {**BASE, "input_image": "a.png", "denoise": denoise})
    p = Img2ImgParams.model_validate({**BASE, "input_image": "a.png"})
    assert (p.denoise, p.width, p.height) == (0.75, None, None)


def test_img2img_takes_width_and_height_together_or_not_at_all() -> None:
    assert "together" in rejected(Img2ImgParams, {**BASE, "input_image": "a.png", "width": 512})
    p = Img2ImgParams.model_validate({**BASE, "input_image": "a.png", "width": 512, "height": 256})
    assert (p.width, p.height) == (512, 256)
    assert "budget" in rejected(
        Img2ImgParams, {**BASE, "input_image": "a.png", "width": 2048, "height": 2048, "batch_size": 2}
    )


def test_input_image_is_capped_by_the_base64_length_of_the_byte_cap() -> None:
    limit = DEFAULT_LIMITS.max_input_image_chars
    assert limit > 4 * DEFAULT_LIMITS.max_input_image_bytes // 3
    assert "input_image" in rejected(Img2ImgParams, {**BASE, "input_image": "A" * (limit + 1)})


def test_upscale_takes_only_its_own_fields() -> None:
    p = UpscaleImageParams.model_validate(
        {"input_image": "a.png", "output_path": "big.png", "overwrite": True}
    )
    assert (p.upscale_model, p.output_path, p.overwrite) == (None, "big.png", True)
    assert "prompt: unknown field" in rejected(UpscaleImageParams, {"input_image": "a.png", "prompt": "x"})


def test_the_json_schema_advertises_bounds_defaults_and_forbids_extras() -> None:
    schema = GenerateImageParams.model_json_schema()
    props = schema["properties"]
    assert schema["additionalProperties"] is False and schema["required"] == ["prompt"]
    assert props["width"] | {"description": ""} == {
        "default": 512,
        "description": "",
        "maximum": 2048,
        "minimum": 64,
        "multipleOf": 8,
        "title": "Width",
        "type": "integer",
    }
    assert (props["steps"]["minimum"], props["steps"]["maximum"]) == (1, 150)
    assert (props["cfg_scale"]["minimum"], props["cfg_scale"]["maximum"]) == (0.0, 30.0)
    assert props["loras"]["maxItems"] == 8 and props["batch_size"]["maximum"] == 8
    assert props["prompt"]["maxLength"] == 16384
    seed = [s for s in props["seed"]["anyOf"] if s.get("type") == "integer"][0]
    assert (seed["minimum"], seed["maximum"]) == (0, MAX_SEED)
    lora = schema["$defs"]["LoraParam"]
    assert lora["additionalProperties"] is False and lora["properties"]["strength_model"]["maximum"] == 4.0
    assert "list_samplers" in props["sampler"]["description"]
    for model in (GenerateImageParams, Img2ImgParams, UpscaleImageParams):
        assert len(json.dumps(model.model_json_schema())) < 6000


def test_make_models_applies_other_limits_and_defaults_to_bounds_schema_and_checks() -> None:
    models = make_models(
        Limits(
            max_side=1024, max_pixels=1024 * 1024, max_steps=50, max_batch=2, max_loras=1, max_prompt_bytes=10
        ),
        Defaults(width=256, height=256, steps=10, sampler="euler"),
    )
    gen = models.generate_image
    schema = gen.model_json_schema()["properties"]
    assert (schema["width"]["maximum"], schema["width"]["default"], schema["steps"]["maximum"]) == (
        1024,
        256,
        50,
    )
    assert gen.model_validate({"prompt": "x"}).sampler == "euler"
    assert "width" in rejected(gen, {"prompt": "x", "width": 1032})
    assert "budget" in rejected(gen, {"prompt": "x", "width": 1024, "height": 1024, "batch_size": 2})
    assert "12 bytes of UTF-8; at most 10" in rejected(gen, {"prompt": "é" * 6})
    assert "loras" in rejected(gen, {"prompt": "x", "loras": [{"name": "a"}, {"name": "b"}]})
    assert "budget" in rejected(
        models.img2img, {"prompt": "x", "input_image": "a", "width": 1024, "height": 1024, "batch_size": 2}
    )
    assert gen is not GenerateImageParams and gen.__name__ == GenerateImageParams.__name__  # rebuilt
    assert GenerateImageParams.model_json_schema()["properties"]["width"]["maximum"] == 2048


def test_make_models_refuses_defaults_outside_the_limits() -> None:
    with pytest.raises(ValueError, match="default width 768"):
        make_models(Limits(max_side=512, max_pixels=512 * 512), Defaults(width=768))
    with pytest.raises(ValueError, match="multiple of 8"):
        Limits(max_side=1001)


def test_slot_values_match_the_slots_of_the_shipped_templates() -> None:
    library = {
        n: parse_template(n, read_workflow_file(default_folder() / f"{n}.json"))
        for n in ("txt2img", "img2img")
    }
    gen = GenerateImageParams.model_validate(BASE).slot_values()
    img = Img2ImgParams.model_validate({**BASE, "input_image": "a.png"}).slot_values()
    assert set(gen) | {"model", "seed"} == set(library["txt2img"].slots)
    assert set(img) | {"model", "seed", "image"} == set(library["img2img"].slots)
    prompt = build_prompt(
        library["img2img"], {**img, "model": "m", "seed": 1, "image": "in.png"}, filename_prefix="mcp/x"
    )
    assert not [n for n in prompt.values() if n["class_type"] in ("ImageScale", "RepeatLatentBatch")]


def test_random_seeds_stay_below_2_to_the_53_and_given_seeds_pass_through() -> None:
    assert all(0 <= random_seed() < RANDOM_SEED_BOUND for _ in range(200))
    assert len({random_seed() for _ in range(20)}) == 20
    assert resolve_seed(MAX_SEED) == MAX_SEED and resolve_seed(0) == 0
    assert isinstance(resolve_seed(None), int)


INSTALLED = [
    "sd15/anime_style.safetensors",
    "sd15/photo_real_v2.safetensors",
    "detail_tweaker.safetensors",
    "xl/anime_xl.safetensors",
]


def test_check_name_returns_the_installed_entry_on_an_exact_match() -> None:
    name = "".join(["detail_", "tweaker.safetensors"])
    assert check_name("lora", name, INSTALLED) is INSTALLED[2]


def test_check_name_explains_an_unknown_lora_with_the_closest_names() -> None:
    with pytest.raises(UnknownName) as info:
        check_name("lora", "anime_style", INSTALLED)
    message = str(info.value)
    assert message.startswith("unknown LoRA 'anime_style'; closest: sd15/anime_style.safetensors")
    assert message.endswith("call list_loras to see all")
    assert info.value.closest[0] == "sd15/anime_style.safetensors" and info.value.kind == "lora"


@pytest.mark.parametrize(
    ("kind", "label", "tool"),
    [
        ("model", "model", "list_models"),
        ("sampler", "sampler", "list_samplers"),
        ("scheduler", "scheduler", "list_schedulers"),
        ("upscale_model", "upscale model", "list_upscale_models"),
    ],
)
def test_check_name_names_the_list_tool_for_each_kind(kind: Any, label: str, tool: str) -> None:
    with pytest.raises(
        UnknownName, match=f"unknown {label} 'zzz'; no installed name is similar; call {tool}"
    ):
        check_name(kind, "zzz", ["euler", "dpmpp_2m"])


def test_check_name_says_when_nothing_is_installed() -> None:
    with pytest.raises(UnknownName, match="no upscale models are installed"):
        check_name("upscale_model", "x4.pth", [])


def test_check_name_rejects_traversal_case_changes_and_huge_names_without_echoing_them_whole() -> None:
    for name in ("../../x.safetensors", "SD15/ANIME_STYLE.safetensors", "anime_style.safetensors "):
        with pytest.raises(UnknownName):
            check_name("lora", name, INSTALLED)
    with pytest.raises(UnknownName) as info:
        check_name("model", "a" * 100_000, INSTALLED)
    assert len(str(info.value)) < 300


def test_closest_names_ignores_case_folders_and_extensions() -> None:
    assert closest_names("ANIME_STYLE", INSTALLED)[0] == "sd15/anime_style.safetensors"
    assert closest_names("photo_real", INSTALLED) == ["sd15/photo_real_v2.safetensors"]
    assert closest_names("euler_a", ["euler", "euler_ancestral", "heun", "lms"])[:2] == [
        "euler",
        "euler_ancestral",
    ]
    assert closest_names("", INSTALLED) == []
    assert closest_names("q", INSTALLED) == []


def test_explain_is_compact_and_does_not_echo_long_input() -> None:
    message = rejected(GenerateImageParams, {"prompt": "y" * 100_000, "width": 7, "steps": "many"})
    assert "prompt:" in message and "width: Input should be a multiple of 8 (got 7)" in message
    assert "steps: Input should be a valid integer (got 'many')" in message
    assert len(message) < 400
