"""A test-only ComfyUI node that reports sampler-like progress and when it did: the bench of progress
latency compares each step's stamp with the moment a client heard of it. Linked into ``custom_nodes``
only by benches and tests."""

from __future__ import annotations

import time
from typing import Any

import comfy.utils


class ProgressClock:
    """``steps`` progress updates ``interval_ms`` apart; the UI output lists when each was sent
    (``time.time()`` just before ComfyUI's progress hook was called)."""

    CATEGORY = "testing"
    FUNCTION = "tick"
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {
            "required": {
                "steps": ("INT", {"default": 20, "min": 1, "max": 1000}),
                "interval_ms": ("INT", {"default": 20, "min": 0, "max": 10000}),
                "spin": ("BOOLEAN", {"default": False}),  # hold the GIL between steps, as sampling does
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**63 - 1}),  # a new one: no cache hit
            }
        }

    def tick(self, steps: int, interval_ms: int, spin: bool, seed: int) -> dict[str, Any]:
        bar = comfy.utils.ProgressBar(steps)
        stamps: list[float] = []
        for step in range(1, steps + 1):
            until = time.perf_counter() + interval_ms / 1000
            if spin:
                while time.perf_counter() < until:
                    pass
            else:
                time.sleep(interval_ms / 1000)
            stamps.append(time.time())
            bar.update_absolute(step, steps)
        return {"ui": {"stamps": stamps}}


NODE_CLASS_MAPPINGS = {"ProgressClock": ProgressClock}
