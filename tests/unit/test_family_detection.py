"""A model file's family (or encoder / VAE kind) from its header alone, as ComfyUI's detection tells them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_bridge.specs.families import detect
from tests.unit import model_headers as mh

# file name -> (shapes, role, family / encoder / vae kind)
MIXED: dict[str, tuple[mh.Shapes, str, str]] = {
    "checkpoints/v1-5-pruned-emaonly.safetensors": (mh.sd15_checkpoint(), "checkpoint", "sd1"),
    "checkpoints/v2-1_768-ema-pruned.safetensors": (mh.sd2_checkpoint(), "checkpoint", "sd2"),
    "checkpoints/sd_xl_base_1.0.safetensors": (mh.sdxl_checkpoint(), "checkpoint", "sdxl"),
    "checkpoints/sd3.5_large_fp8_scaled.safetensors": (mh.sd35_checkpoint(), "checkpoint", "sd3"),
    "diffusion_models/sd3.5_medium.safetensors": (mh.mmdit(depth=24, hidden=1536), "diffusion_model", "sd3"),
    "diffusion_models/flux1-dev.safetensors": (mh.flux1(), "diffusion_model", "flux1_dev"),
    "diffusion_models/flux1-schnell.safetensors": (
        mh.flux1(guidance=False),
        "diffusion_model",
        "flux1_schnell",
    ),
    "diffusion_models/Chroma1-HD.safetensors": (mh.chroma(), "diffusion_model", "chroma"),
    "diffusion_models/flux2_dev_fp8mixed.safetensors": (mh.flux2(), "diffusion_model", "flux2"),
    "diffusion_models/qwen_image_fp8_e4m3fn.safetensors": (mh.qwen_image(), "diffusion_model", "qwen_image"),
    "diffusion_models/z_image_turbo_bf16.safetensors": (mh.z_image(), "diffusion_model", "z_image"),
    "diffusion_models/lumina_2_model_bf16.safetensors": (mh.lumina(), "diffusion_model", "lumina2"),
    "diffusion_models/hidream_i1_dev_bf16.safetensors": (mh.hidream(), "diffusion_model", "hidream"),
    "diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors": (mh.wan21(), "diffusion_model", "wan"),
    "text_encoders/clip_l.safetensors": (mh.ENCODERS["clip_l"], "text_encoder", "clip_l"),
    "text_encoders/clip_g.safetensors": (mh.ENCODERS["clip_g"], "text_encoder", "clip_g"),
    "text_encoders/t5xxl_fp16.safetensors": (mh.ENCODERS["t5_xxl"], "text_encoder", "t5_xxl"),
    "text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors": (
        mh.ENCODERS["qwen25_7b"],
        "text_encoder",
        "qwen25_7b",
    ),
    "text_encoders/qwen_3_4b.safetensors": (mh.ENCODERS["qwen3_4b"], "text_encoder", "qwen3_4b"),
    "vae/ae.safetensors": (mh.vae(16), "vae", "flux"),
}


def kind_of(found: detect.Detection) -> str | None:
    return found.family or found.encoder or found.vae


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    detect.clear_cache()


def test_a_mixed_folder_of_twenty_files_is_classified_by_header(tmp_path: Path) -> None:
    assert len(MIXED) == 20
    for name, (shapes, _, _) in MIXED.items():
        mh.write_header_only(tmp_path / name, shapes)
    found = {name: detect.detect_file(tmp_path / name) for name in MIXED}
    assert {n: (d.role, kind_of(d)) for n, d in found.items()} == {
        n: (role, kind) for n, (_, role, kind) in MIXED.items()
    }
    # a sparse data section of the real length: flux1-dev's header says ~23.8 GB of bf16 tensors
    assert (tmp_path / "diffusion_models/flux1-dev.safetensors").stat().st_size > 5_000_000_000


def test_more_encoders_vaes_and_what_checkpoints_carry(tmp_path: Path) -> None:
    for kind in ("llama31_8b", "gemma2_2b", "mistral3_24b_flux2"):
        assert (
            detect.detect_file(mh.write_header_only(tmp_path / f"{kind}.st", mh.ENCODERS[kind])).encoder
            == kind
        )
    assert detect.detect_file(mh.write_header_only(tmp_path / "sd.st", mh.vae(4))).vae == "sd"
    assert detect.detect_file(mh.write_header_only(tmp_path / "f2.st", mh.vae(32))).vae == "flux2"
    assert detect.detect_file(mh.write_header_only(tmp_path / "q.st", mh.wan_vae())).vae == "wan21"
    sd35 = detect.detect_file(mh.write_header_only(tmp_path / "sd35.st", mh.sd35_checkpoint()))
    assert sd35.bundled == ("clip_l", "clip_g", "vae")
    inpaint = detect.detect_file(mh.write_header_only(tmp_path / "inp.st", mh.sd15_checkpoint(channels=9)))
    assert (inpaint.family, inpaint.in_channels) == ("sd1", 9)


def test_a_mislabelled_file_is_classified_by_its_header(tmp_path: Path) -> None:
    path = mh.write_header_only(tmp_path / "diffusion_models/flux1-dev-fp8.safetensors", mh.qwen_image())
    found = detect.detect_file(path)
    assert (found.role, found.family, found.marker) == ("diffusion_model", "qwen_image", "txt_norm.weight")


def test_an_unknown_architecture_is_reported_as_such(tmp_path: Path) -> None:
    odd = detect.detect_file(mh.write_header_only(tmp_path / "odd.safetensors", {"blocks.0.w": [8, 8]}))
    assert (odd.role, odd.family, odd.marker) == ("unknown", None, "no known marker in the header")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 64)
    assert detect.detect_file(junk).role == "unknown"
    assert detect.detect_file(tmp_path / "missing.safetensors").role == "unknown"


def test_gguf_files_by_their_architecture(tmp_path: Path) -> None:
    flux = detect.detect_file(mh.write_gguf(tmp_path / "flux1-dev-Q4_K_S.gguf", "flux"))
    assert (flux.role, flux.family, flux.format) == ("diffusion_model", "flux1_dev", "gguf")
    t5 = detect.detect_file(mh.write_gguf(tmp_path / "t5-v1_1-xxl-encoder-Q5_K_M.gguf", "t5encoder"))
    assert (t5.role, t5.encoder) == ("text_encoder", "t5_xxl")
    assert detect.detect_file(mh.write_gguf(tmp_path / "x.gguf", "mamba")).role == "unknown"


def test_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    path = mh.write_header_only(tmp_path / "m.safetensors", mh.flux1())
    assert detect.detect_file(path).family == "flux1_dev"
    mh.write_header_only(path, mh.mmdit(depth=2, hidden=128))
    os.utime(path, ns=(1, 1))  # a new mtime even on a coarse clock
    assert detect.detect_file(path).family == "sd3"
