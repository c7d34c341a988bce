"""Figures of the test bed: ComfyUI start-up and the tiny-model workflows, per ComfyUI version.

Each workflow runs once cold, then three times warm with a new seed/input; prints cold and median warm
seconds from POST /prompt to a finished history entry.

    python bench/startup.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed import comfy_api  # noqa: E402
from testbed.sample_workflows import txt2img, upscale  # noqa: E402
from testbed.server import VERSIONS, ComfyServer  # noqa: E402
from testbed.tiny_models import LORA_A_NAME, LORA_B_NAME  # noqa: E402


def timed(server: ComfyServer, prompt: dict[str, Any]) -> float:
    t0 = time.perf_counter()
    entry = comfy_api.wait(server.url, comfy_api.submit(server.url, prompt))
    assert entry["status"]["status_str"] == "success", entry["status"]
    return time.perf_counter() - t0


def main() -> None:
    for version in VERSIONS:
        server = ComfyServer(version)
        t0 = time.perf_counter()
        server.start()
        started = time.perf_counter() - t0

        def source(folder: Path = server.input_dir) -> str:
            name = f"bench-{random.randrange(10**9)}.png"
            Image.linear_gradient("L").convert("RGB").resize((128, 128)).save(folder / name)
            return name

        cases: dict[str, Callable[[], dict[str, Any]]] = {
            "txt2img 64x64, 2 steps": lambda: txt2img(random.randrange(2**32)),
            "txt2img + 2 LoRAs": lambda: txt2img(
                random.randrange(2**32), loras=[(LORA_A_NAME, 1.0), (LORA_B_NAME, 0.8)]
            ),
            "upscale 128 -> 512": lambda: upscale(source()),
        }
        try:
            print(f"ComfyUI {version}: ready in {started:.1f} s")
            for name, make in cases.items():
                cold = timed(server, make())
                warm = statistics.median(timed(server, make()) for _ in range(3))
                print(f"  {name:24s} cold {cold:6.3f} s   warm {warm:6.3f} s")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
