"""Unit tests for the tiny random-weight model generator (torch + safetensors only, no ComfyUI)."""

from __future__ import annotations

import filecmp
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from testbed import tiny_models as tm

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.tiny_models  # slow: run once by make test (CI), skipped by make unit


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tm.generate_all(tmp_path_factory.mktemp("models"))


def _keys(path: Path) -> set[str]:
    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())


def _tensor(path: Path, key: str) -> torch.Tensor:
    with safe_open(str(path), framework="pt") as f:
        tensor: torch.Tensor = f.get_tensor(key)
    return tensor


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(path), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def _shape(path: Path, key: str) -> tuple[int, ...]:
    return _shapes(path)[key]


def test_generate_all_writes_the_seven_files_into_comfyui_model_folders(models: dict[str, Path]) -> None:
    dest = models["checkpoint"].parents[1]
    assert (
        set(models)
        == set(tm.MODEL_FILES)
        == {
            "checkpoint",
            "checkpoint_inpaint",
            "lora_a",
            "lora_b",
            "upscaler",
            "controlnet_a",
            "controlnet_b",
        }
    )
    for role, (folder, name) in tm.MODEL_FILES.items():
        assert models[role] == dest / folder / name
        assert models[role].stat().st_mode & 0o777 == 0o644
    assert models["checkpoint"].name == tm.CHECKPOINT_NAME == "tiny-sd15.safetensors"
    assert models["checkpoint_inpaint"] == dest / "inpaint" / "checkpoints" / "tiny-sd15-inpaint.safetensors"
    assert not list(dest.rglob("*.tmp"))


def test_output_is_byte_identical_in_another_process(models: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "again"
    run = subprocess.run(
        [sys.executable, "-m", "testbed.tiny_models", str(other)], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("wrote ") == 7
    for role, (folder, name) in tm.MODEL_FILES.items():
        assert filecmp.cmp(models[role], other / folder / name, shallow=False), role


def test_each_file_carries_a_single_metadata_key_with_its_stamp(models: dict[str, Path]) -> None:
    for role, path in models.items():
        with safe_open(str(path), framework="pt") as f:
            assert f.metadata() == {tm.METADATA_KEY: tm.stamp(role)}
        assert tm.read_stamp(path) == tm.stamp(role)
    assert len({tm.stamp(role) for role in models}) == 7


def test_a_second_call_leaves_up_to_date_files_untouched(models: dict[str, Path]) -> None:
    before = {role: (p.stat().st_ino, p.stat().st_mtime_ns) for role, p in models.items()}
    again = tm.generate_all(models["checkpoint"].parents[1])
    assert again == models
    assert {role: (p.stat().st_ino, p.stat().st_mtime_ns) for role, p in again.items()} == before


def test_a_truncated_or_foreign_file_is_regenerated(tmp_path: Path) -> None:
    path, written = tm.generate("lora_a", tmp_path)
    assert written
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    assert tm.read_stamp(path) is None
    assert tm.generate("lora_a", tmp_path) == (path, True)
    assert path.read_bytes() == good
    path.write_bytes(b"not a safetensors file")
    assert tm.generate("lora_a", tmp_path)[1]
    assert tm.generate("lora_a", tmp_path)[1] is False
    assert path.read_bytes() == good


def test_the_cli_reports_cached_files_for_an_up_to_date_folder(
    models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert tm.main([str(models["checkpoint"].parents[1])]) == 0
    out = capsys.readouterr().out
    assert out.count("cached ") == 7
    assert "ready in" in out


def test_the_checkpoint_has_sd15_prefixes_and_the_shapes_comfyui_detects(models: dict[str, Path]) -> None:
    ckpt = models["checkpoint"]
    keys = _keys(ckpt)
    assert keys == set(tm.checkpoint_spec())
    prefixes = {k.split(".")[0] for k in keys}
    assert prefixes == {"model", "cond_stage_model", "first_stage_model"}
    unet = "model.diffusion_model."
    assert _shape(ckpt, unet + "input_blocks.0.0.weight") == (320, 4, 3, 3)  # model_channels, in_channels
    assert _shape(ckpt, unet + "input_blocks.1.1.proj_in.weight") == (320, 320, 1, 1)  # not linear
    assert _shape(ckpt, unet + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight") == (320, 768)
    assert not any(k.startswith(unet + "label_emb") for k in keys)
    assert sum(p.numel() for p in tm.materialize(tm.unet_spec(), 0).values()) == 13_640_644
    clip = "cond_stage_model.transformer.text_model."
    assert _shape(ckpt, clip + "embeddings.token_embedding.weight") == (49408, 768)
    assert _shape(ckpt, clip + "embeddings.position_embedding.weight") == (77, 768)
    layers = {k.split(".")[5] for k in keys if k.startswith(clip + "encoder.layers.")}
    assert layers == {str(i) for i in range(12)}
    assert _shape(ckpt, "first_stage_model.taesd_decoder.1.weight") == (64, 4, 3, 3)
    assert _tensor(ckpt, "first_stage_model.vae_scale").item() == pytest.approx(0.18215)
    assert _tensor(ckpt, "first_stage_model.vae_shift").item() == 0.0
    weight = _tensor(ckpt, unet + "input_blocks.1.0.in_layers.2.weight")
    assert weight.dtype == torch.float16


def test_the_inpainting_checkpoint_is_the_checkpoint_with_a_9_channel_first_conv(
    models: dict[str, Path],
) -> None:
    plain, inpaint = _shapes(models["checkpoint"]), _shapes(models["checkpoint_inpaint"])
    first = "model.diffusion_model.input_blocks.0.0.weight"
    assert inpaint[first] == (320, 9, 3, 3) and plain[first] == (320, 4, 3, 3)
    assert {k: v for k, v in inpaint.items() if k != first} == {k: v for k, v in plain.items() if k != first}


def test_weights_are_fan_in_scaled_and_image_heads_sit_around_mid_grey(models: dict[str, Path]) -> None:
    ckpt = models["checkpoint"]
    conv = _tensor(ckpt, "model.diffusion_model.input_blocks.1.0.in_layers.2.weight").float()
    assert conv.std().item() == pytest.approx(1 / math.sqrt(320 * 9), rel=0.02)
    assert abs(conv.mean().item()) < 1e-3
    norm = "model.diffusion_model.input_blocks.1.0.in_layers.0"
    assert torch.all(_tensor(ckpt, f"{norm}.weight") == 1) and torch.all(_tensor(ckpt, f"{norm}.bias") == 0)
    head = "first_stage_model.taesd_decoder.19"
    assert torch.all(_tensor(ckpt, f"{head}.bias") == 0.5)
    assert _tensor(ckpt, f"{head}.weight").float().std().item() < 0.5 / math.sqrt(64 * 9)
    assert torch.all(_tensor(models["upscaler"], "conv_last.bias") == 0.5)


def test_every_lora_key_patches_a_checkpoint_weight_of_the_same_shape(models: dict[str, Path]) -> None:
    targets = tm.lora_targets()
    assert sum(n.startswith("lora_unet_down_blocks_0_attentions_0_") for n in targets) == 12
    assert sum(n.startswith("lora_te_text_model_encoder_layers_") for n in targets) == 72
    ckpt_shapes = _shapes(models["checkpoint"])
    for role in ("lora_a", "lora_b"):
        lora = load_file(models[role])
        assert len(lora) == 3 * len(targets) == 252
        for name, target in targets.items():
            down, up = lora[f"{name}.lora_down.weight"].float(), lora[f"{name}.lora_up.weight"].float()
            assert down.shape[0] == up.shape[1] == tm.LORA_RANK
            delta = up.flatten(1) @ down.flatten(1)
            assert (*delta.shape, *down.shape[2:]) == (*delta.shape, *up.shape[2:]) == ckpt_shapes[target]
            assert lora[f"{name}.alpha"].item() == tm.LORA_RANK


def test_the_two_loras_have_different_weights(models: dict[str, Path]) -> None:
    key = next(iter(tm.lora_targets())) + ".lora_up.weight"
    assert not torch.equal(_tensor(models["lora_a"], key), _tensor(models["lora_b"], key))


def test_the_upscaler_is_an_x4_rrdbnet_in_the_real_esrgan_layout(models: dict[str, Path]) -> None:
    path = models["upscaler"]
    keys = _keys(path)
    assert {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_last.weight"} <= keys
    assert {k.split(".")[0] for k in keys if k.startswith("conv_up")} == {"conv_up1", "conv_up2"}  # 2 x2 = x4
    assert not any(k.startswith("body.1.") for k in keys)
    assert _shape(path, "conv_first.weight") == (8, 3, 3, 3)
    assert _shape(path, "body.0.rdb3.conv5.weight") == (8, 8 + 4 * 32, 3, 3)
    assert sum(p.numel() for p in tm.materialize(tm.upscaler_spec(), 0).values()) == 226_099


def test_the_controlnets_mirror_the_unet_input_side_with_hint_encoder_and_zero_convs(
    models: dict[str, Path],
) -> None:
    unet = {k.removeprefix("model.diffusion_model."): v for k, v in _shapes(models["checkpoint"]).items()}
    for role in ("controlnet_a", "controlnet_b"):
        shapes = _shapes(models[role])
        assert "zero_convs.0.0.weight" in shapes  # what ComfyUI recognises an LDM ControlNet by
        mirrored = {k for k in shapes if k.startswith(("time_embed.", "input_blocks."))}
        assert mirrored == {k for k in unet if k.startswith(("time_embed.", "input_blocks."))}
        assert all(shapes[k] == unet[k] for k in mirrored)
        assert shapes["input_hint_block.0.weight"] == (16, 3, 3, 3)  # hint_channels 3: an RGB map
        assert shapes["input_hint_block.14.weight"] == (320, 256, 3, 3)
        assert {k.split(".")[1] for k in shapes if k.startswith("zero_convs.")} == {"0", "1"}
        assert shapes["middle_block_out.0.weight"] == (320, 320, 1, 1)
    key = "zero_convs.0.0.weight"
    assert not torch.equal(_tensor(models["controlnet_a"], key), _tensor(models["controlnet_b"], key))
