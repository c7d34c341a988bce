"""Families as data: which are offered from the node definitions, which files a call runs with, and the
graph each family's call becomes (built from the tools' own all-in-one graphs)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bridge.comfyui.backend import NodeInput
from mcp_bridge.specs import params
from mcp_bridge.specs.families import catalog, plan
from mcp_bridge.specs.families.build import Sampling, apply_family
from mcp_bridge.specs.families.detect import Detection
from mcp_bridge.specs.graph import build_prompt
from mcp_bridge.specs.spec import parse_spec
from tests.unit.test_specs import shipped

CLIP_TYPES_075 = ("stable_diffusion", "sd3", "lumina2", "hidream", "chroma", "qwen_image", "flux2")
DUAL_TYPES = ("sdxl", "sd3", "flux", "hunyuan_video", "hidream")
NODES_075 = {
    "CheckpointLoaderSimple", "UNETLoader", "CLIPLoader", "DualCLIPLoader", "TripleCLIPLoader",
    "QuadrupleCLIPLoader", "VAELoader", "EmptySD3LatentImage", "EmptyFlux2LatentImage", "Flux2Scheduler",
    "ModelSamplingSD3", "ModelSamplingAuraFlow", "FluxGuidance", "ConditioningZeroOut", "LoraLoaderModelOnly",
    "SamplerCustomAdvanced", "RandomNoise", "CFGGuider", "KSamplerSelect", "SplitSigmasDenoise",
}  # fmt: skip
NODES_052 = NODES_075 - {"EmptyFlux2LatentImage", "Flux2Scheduler"}


def node_inputs(clip_types: tuple[str, ...]) -> catalog.NodeInputs:
    table = {
        "CLIPLoader": {"type": NodeInput("COMBO", options=clip_types)},
        "DualCLIPLoader": {"type": NodeInput("COMBO", options=DUAL_TYPES)},
    }
    return lambda cls: table.get(cls, {})


def offered(version: str = "0.3.75") -> catalog.FamilyCatalog:
    if version == "0.3.75":
        return catalog.load_families(NODES_075, node_inputs(CLIP_TYPES_075), "0.3.75")
    return catalog.load_families(NODES_052, node_inputs(CLIP_TYPES_075[:-1]), "0.3.52")


def test_every_shipped_family_is_offered_where_its_nodes_and_loader_types_exist() -> None:
    new = offered("0.3.75")
    assert not new.problems and not new.unoffered
    assert set(new.families) == {
        "sd", "sd3", "flux1_dev", "flux1_schnell", "chroma", "flux2",
        "qwen_image", "z_image", "lumina2", "hidream",
    }  # fmt: skip
    old = offered("0.3.52")
    assert set(old.unoffered) == {"flux2", "z_image"}
    assert "EmptyFlux2LatentImage" in old.unoffered["flux2"][1]
    assert "0.3.75" in old.unoffered["z_image"][1]
    assert old.for_detected("z_image") is None and old.unoffered_for("z_image") is not None
    assert new.for_detected("flux1_dev") is new.families["flux1_dev"]


def test_a_broken_declaration_is_left_out_with_the_reason(tmp_path: Any) -> None:
    (tmp_path / "bad.json").write_text('{"family": "x", "title": "X", "detect": ["x"], "model": {}}')
    found = catalog.load_families(NODES_075, node_inputs(CLIP_TYPES_075), "0.3.75", tmp_path)
    assert not found.families and "model" in found.problems["bad"]
    with pytest.raises(catalog.FamilyError, match="CLIP loader"):
        catalog.parse_family(
            {**shipped_family("sd3"), "clip_loaders": {"2": {"class": "DualCLIPLoader", "type": "sd3"}}}
        )


def shipped_family(name: str) -> dict[str, Any]:
    import json

    return json.loads((catalog.default_folder() / f"{name}.json").read_text())  # type: ignore[no-any-return]


TE = {
    "clip_l.safetensors": Detection("text_encoder", encoder="clip_l"),
    "clip_g.safetensors": Detection("text_encoder", encoder="clip_g"),
    "t5/t5xxl_fp16.safetensors": Detection("text_encoder", encoder="t5_xxl"),
    "qwen_3_4b.safetensors": Detection("text_encoder", encoder="qwen3_4b"),
}
VAES = {"ae.safetensors": Detection("vae", vae="flux"), "sd.safetensors": Detection("vae", vae="sd")}
MMDIT = Detection("diffusion_model", "sd3")


def test_encoders_and_vae_are_chosen_by_kind_and_template_name() -> None:
    families = offered().families
    sd3 = plan.make_plan(families["sd3"], "m.safetensors", "diffusion_models", MMDIT, TE, VAES)
    assert sd3.encoders == ("clip_l.safetensors", "clip_g.safetensors", "t5/t5xxl_fp16.safetensors")
    assert sd3.vae == "ae.safetensors"
    without_t5 = {k: v for k, v in TE.items() if not k.startswith("t5")}
    sd3 = plan.make_plan(families["sd3"], "m.safetensors", "diffusion_models", MMDIT, without_t5, VAES)
    assert sd3.encoders == ("clip_l.safetensors", "clip_g.safetensors")
    assert "T5-XXL not installed" in sd3.notes[0]
    two_vaes = {**VAES, "other16.safetensors": Detection("vae", vae="flux")}
    z = plan.make_plan(families["z_image"], "z.safetensors", "diffusion_models", MMDIT, TE, two_vaes)
    assert (z.encoders, z.vae) == (("qwen_3_4b.safetensors",), "ae.safetensors")  # the templates' name


def test_what_cannot_run_says_what_to_install_and_where() -> None:
    families = offered().families
    with pytest.raises(
        plan.FamilyRefused, match=r"Qwen2.5-VL-7B text encoder: install qwen_2.5_vl_7b_fp8_scaled"
    ):
        plan.make_plan(families["qwen_image"], "q.safetensors", "diffusion_models", MMDIT, TE, VAES)
    with pytest.raises(plan.FamilyRefused, match=r"install qwen_image_vae.safetensors in models/vae"):
        plan.make_plan(
            families["qwen_image"],
            "q",
            "diffusion_models",
            MMDIT,
            {"q.st": Detection("text_encoder", encoder="qwen25_7b")},
            VAES,
        )
    with pytest.raises(plan.FamilyRefused, match=r"clip_g.safetensors is CLIP-G; Flux.1 dev"):
        plan.make_plan(
            families["flux1_dev"], "f", "diffusion_models", MMDIT, TE, VAES, ["clip_g.safetensors"]
        )
    with pytest.raises(plan.FamilyRefused, match=r"sd.safetensors is a 4-channel"):
        plan.make_plan(families["sd3"], "m", "diffusion_models", MMDIT, TE, VAES, wanted_vae="sd.safetensors")
    two = {
        **VAES,
        "x.safetensors": Detection("vae", vae="flux"),
        "ae.safetensors": Detection("vae", vae="sd"),
    }
    with pytest.raises(plan.FamilyRefused, match=r"several 16-channel .* name one with vae"):
        plan.make_plan(
            families["sd3"],
            "m",
            "diffusion_models",
            MMDIT,
            TE,
            {**two, "y.safetensors": VAES["ae.safetensors"]},
        )


def test_an_all_in_one_checkpoint_uses_what_it_carries() -> None:
    carried = Detection("checkpoint", "sd3", bundled=("clip_l", "clip_g", "vae"))
    sd3 = plan.make_plan(offered().families["sd3"], "sd3.5.safetensors", "checkpoints", carried, {}, {})
    assert (sd3.encoders, sd3.vae) == ((), None)


def txt2img(**values: Any) -> dict[str, Any]:
    spec = parse_spec("txt2img", shipped("txt2img"))
    base = {"model": "m.safetensors", "prompt": "a fox", "negative_prompt": "blur", "seed": 1, "steps": 4}
    lora = params.LoraParam(name="l.safetensors", strength_model=0.5, strength_clip=0.7)
    return build_prompt(spec.template, {**base, **values}, [lora], filename_prefix="mcp/x")


def classes(prompt: dict[str, Any]) -> dict[str, str]:
    return {n["class_type"]: i for i, n in prompt.items()}


def test_an_sd3_diffusion_model_graph() -> None:
    sd3 = plan.make_plan(offered().families["sd3"], "mmdit.safetensors", "diffusion_models", MMDIT, TE, VAES)
    prompt = apply_family(txt2img(), sd3)
    by = classes(prompt)
    assert "CheckpointLoaderSimple" not in by and "LoraLoader" not in by
    assert prompt[by["UNETLoader"]]["inputs"] == {"unet_name": "mmdit.safetensors", "weight_dtype": "default"}
    assert prompt[by["TripleCLIPLoader"]]["inputs"] == {
        "clip_name1": "clip_l.safetensors",
        "clip_name2": "clip_g.safetensors",
        "clip_name3": "t5/t5xxl_fp16.safetensors",
    }
    lora = prompt[by["LoraLoaderModelOnly"]]["inputs"]
    assert lora == {"model": [by["ModelSamplingSD3"], 0], "lora_name": "l.safetensors", "strength_model": 0.5}
    sampler = prompt[by["KSampler"]]["inputs"]
    assert sampler["model"] == [by["LoraLoaderModelOnly"], 0]
    assert prompt[sampler["latent_image"][0]]["class_type"] == "EmptySD3LatentImage"
    for side in ("positive", "negative"):  # the text encoders read the CLIP loader's CLIP directly
        assert prompt[sampler[side][0]]["inputs"]["clip"] == [by["TripleCLIPLoader"], 0]
    assert prompt[by["VAEDecode"]]["inputs"]["vae"] == [by["VAELoader"], 0]


def test_a_flux_dev_graph_zeroes_the_negative_and_guides_with_cfg_scale() -> None:
    flux_te = {
        "clip_l.safetensors": TE["clip_l.safetensors"],
        "t5xxl_fp16.safetensors": TE["t5/t5xxl_fp16.safetensors"],
    }
    flux = plan.make_plan(
        offered().families["flux1_dev"], "f.safetensors", "diffusion_models", MMDIT, flux_te, VAES
    )
    prompt = apply_family(txt2img(), flux, Sampling(guidance=2.5))
    by = classes(prompt)
    sampler = prompt[by["KSampler"]]["inputs"]
    assert sampler["cfg"] == 1.0
    guidance = prompt[sampler["positive"][0]]
    assert guidance["class_type"] == "FluxGuidance" and guidance["inputs"]["guidance"] == 2.5
    negative = prompt[sampler["negative"][0]]
    assert negative == {
        "class_type": "ConditioningZeroOut",
        "inputs": {"conditioning": guidance["inputs"]["conditioning"]},
        "_meta": {"title": "Negative (zeroed)"},
    }
    assert prompt[by["DualCLIPLoader"]]["inputs"]["type"] == "flux"


def test_a_flux2_graph_samples_with_its_scheduler() -> None:
    te = {"m.safetensors": Detection("text_encoder", encoder="mistral3_24b_flux2")}
    vae = {"flux2-vae.safetensors": Detection("vae", vae="flux2")}
    flux2 = plan.make_plan(offered().families["flux2"], "f2.safetensors", "diffusion_models", MMDIT, te, vae)
    prompt = apply_family(txt2img(width=768, height=512), flux2)
    by = classes(prompt)
    sampler = prompt[by["SamplerCustomAdvanced"]]["inputs"]
    assert prompt[sampler["sigmas"][0]]["inputs"] == {"steps": 4, "width": 768, "height": 512}
    assert prompt[sampler["latent_image"][0]]["class_type"] == "EmptyFlux2LatentImage"
    assert prompt[sampler["guider"][0]]["inputs"]["cfg"] == 1.0
    assert prompt[by["CLIPLoader"]]["inputs"] == {"clip_name": "m.safetensors", "type": "flux2"}


def test_a_checkpoint_family_keeps_the_graph_and_an_sd3_checkpoint_keeps_its_loader() -> None:
    families = offered().families
    sd = plan.Plan(families["sd"], "m.safetensors", "checkpoints")
    assert apply_family(txt2img(), sd) == txt2img()
    carried = Detection("checkpoint", "sd3", bundled=("clip_l", "clip_g", "vae"))
    sd3 = plan.make_plan(families["sd3"], "m.safetensors", "checkpoints", carried, {}, {})
    prompt = apply_family(txt2img(), sd3)
    by = classes(prompt)
    assert {"UNETLoader", "VAELoader", "TripleCLIPLoader"}.isdisjoint(by)
    assert prompt[by["ModelSamplingSD3"]]["inputs"]["model"] == [by["CheckpointLoaderSimple"], 0]
    assert prompt[by["VAEDecode"]]["inputs"]["vae"] == [by["CheckpointLoaderSimple"], 2]
