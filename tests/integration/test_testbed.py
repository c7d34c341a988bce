"""The test bed itself: a real ComfyUI loads the extension and runs the tiny models.

These workflows go through ComfyUI's own ``/prompt`` route: they prove the test bed, not the bridge.
"""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path
from typing import Any

from PIL import Image

from testbed import comfy_api
from testbed.sample_workflows import txt2img, upscale, with_controlnet
from testbed.server import EXTENSION_DIR_NAME, MODELS, VENV_PYTHON, ComfyServer, comfyui_dir
from testbed.tiny_models import (
    CHECKPOINT_NAME,
    CONTROLNET_A_NAME,
    CONTROLNET_B_NAME,
    INPAINT_CHECKPOINT_NAME,
    LORA_A_NAME,
    LORA_B_NAME,
)

# Loads model files with ComfyUI's own loader, logging at DEBUG (unexpected keys are DEBUG lines):
# ControlNets print their class, checkpoints the detected model and whether it is an inpainting one.
_LOAD_MODELS = """
import logging, sys
kind, paths, sys.argv = sys.argv[1], sys.argv[2:], [sys.argv[0], "--cpu"]
sys.path.insert(0, ".")
logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(message)s")
import comfy.options
comfy.options.enable_args_parsing()
import comfy.controlnet, comfy.sd, comfy.utils
for path in paths:
    if kind == "controlnet":
        print("loaded", type(comfy.controlnet.load_controlnet(path).control_model).__name__)
    else:
        model = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True)[0].model
        print("loaded", type(model.model_config).__name__, model.model_config.inpaint_model())
"""


def load_models(comfy: ComfyServer, kind: str, files: list[str]) -> subprocess.CompletedProcess[str]:
    """Load ``files`` (``kind``: controlnet or checkpoint) in a fresh process of ``comfy``'s version."""
    run = subprocess.run(
        [str(VENV_PYTHON), "-c", _LOAD_MODELS, kind, *files],
        cwd=comfyui_dir(comfy.version),
        env=comfy.environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def run(server: ComfyServer, prompt: dict[str, Any]) -> list[Path]:
    entry = comfy_api.wait(server.url, comfy_api.submit(server.url, prompt))
    assert entry["status"]["status_str"] == "success", entry["status"]
    files = [server.output_dir / img["subfolder"] / img["filename"] for img in comfy_api.output_images(entry)]
    assert files, "the workflow produced no image"
    return files


def test_comfyui_loads_the_extension_without_import_failure(comfy: ComfyServer) -> None:
    log = comfy.log_text()
    lines = [line for line in log.splitlines() if line.rstrip().endswith(EXTENSION_DIR_NAME)]
    assert lines, f"ComfyUI did not list {EXTENSION_DIR_NAME} among its custom nodes"
    assert not any("IMPORT FAILED" in line for line in lines), lines


def test_health_route_answers_on_both_paths_with_versions(comfy: ComfyServer) -> None:
    for path in ("/mcp-bridge/health", "/api/mcp-bridge/health"):
        body = comfy.get_json(path)
        assert isinstance(body, dict)
        assert body["comfyui_version"] == comfy.version
        assert re.fullmatch(r"\d+\.\d+\.\d+", body["bridge_version"])


def test_txt2img_with_the_tiny_checkpoint_writes_a_64px_png(comfy: ComfyServer) -> None:
    (png,) = run(comfy, txt2img(seed=random.randrange(2**32)))
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == (64, 64)
        lo, hi = img.convert("L").getextrema()
        assert hi - lo > 0, "the image is a flat colour: the tiny model's signal died"


def test_two_stacked_loras_apply_and_change_the_image(comfy: ComfyServer) -> None:
    seed = random.randrange(2**32)
    (plain,) = run(comfy, txt2img(seed))
    (with_loras,) = run(comfy, txt2img(seed, loras=[(LORA_A_NAME, 1.0), (LORA_B_NAME, 0.8)]))
    with Image.open(plain) as a, Image.open(with_loras) as b:
        assert b.size == (64, 64)
        assert a.tobytes() != b.tobytes(), "the LoRAs had no effect"
    assert "lora key not loaded" not in comfy.log_text()


def test_upscale_model_makes_a_4x_png(comfy: ComfyServer) -> None:
    src = Image.linear_gradient("L").convert("RGB").resize((32, 24))
    name = f"tb-{random.randrange(10**9)}.png"
    src.save(comfy.input_dir / name)
    (png,) = run(comfy, upscale(name))
    with Image.open(png) as img:
        assert img.size == (128, 96)


def test_the_tiny_controlnets_load_with_no_missing_or_unexpected_keys(comfy: ComfyServer) -> None:
    files = [str(MODELS / "controlnet" / name) for name in (CONTROLNET_A_NAME, CONTROLNET_B_NAME)]
    run = load_models(comfy, "controlnet", files)
    assert run.stdout.count("loaded ControlNet") == 2
    assert "controlnet keys" not in run.stderr, run.stderr[-2000:]  # "missing/unexpected controlnet keys"


def test_a_controlnet_changes_the_image_and_strength_0_does_not(comfy: ComfyServer) -> None:
    seed = random.randrange(2**32)
    name = f"tb-cn-{random.randrange(10**9)}.png"
    Image.linear_gradient("L").convert("RGB").resize((64, 64)).save(comfy.input_dir / name)
    (plain,) = run(comfy, txt2img(seed))
    steered, zero = txt2img(seed), txt2img(seed)
    with_controlnet(steered, CONTROLNET_A_NAME, name)
    with_controlnet(zero, CONTROLNET_A_NAME, name, strength=0.0)
    (with_cn,) = run(comfy, steered)
    (with_zero,) = run(comfy, zero)
    with Image.open(plain) as a, Image.open(with_cn) as b, Image.open(with_zero) as c:
        assert a.tobytes() != b.tobytes(), "the ControlNet had no effect"
        assert a.tobytes() == c.tobytes(), "strength 0 changed the image"
    assert "controlnet keys" not in comfy.log_text()


def test_the_tiny_inpainting_checkpoint_loads_cleanly_as_an_inpainting_sd15(comfy: ComfyServer) -> None:
    inpaint = MODELS / "inpaint" / "checkpoints" / INPAINT_CHECKPOINT_NAME
    run = load_models(comfy, "checkpoint", [str(inpaint), str(MODELS / "checkpoints" / CHECKPOINT_NAME)])
    assert run.stdout.splitlines() == ["loaded SD15 True", "loaded SD15 False"], run.stdout
    problems = [
        line
        for line in run.stderr.splitlines()
        if re.search(r"unet (missing|unexpected)|left over keys|clip unexpected|WARNING clip missing", line)
    ]
    assert problems == [], problems
    # The only DEBUG note, for both files alike: CLIP-L's logit_scale/text_projection, which SD1.5 lacks.
    notes = [line for line in run.stderr.splitlines() if "missing" in line and "torchaudio" not in line]
    assert len(notes) == 2 and notes[0] == notes[1], notes
