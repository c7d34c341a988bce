"""Previews made from the image tensor inside the prompt, not by decoding the saved PNG afterwards
(issue 25 item 1).

Decoding ComfyUI's full-size PNG is most of what a big result cost the bridge (a 2048² PNG: ~175 ms
of zlib before the ≤ 512 px WebP could be made, 4096²: ~600 ms; bench/overhead.py). The adapter adds
one :class:`ResultPreview` node beside every ``SaveImage`` of the bridge's own prompts, first in the
prompt so ComfyUI runs it before the save (its executor takes the first ready output node). The node
averages the tensor down to at most twice the preview side (a few ms), hands the small frames to a
worker thread that encodes the WebP while ``SaveImage`` is still compressing its PNG, and returns.
:class:`EarlyPreviews` picks the previews up at ``SaveImage``'s ``executed`` event by the node's key;
a missing or failed one falls back to decoding the file. The node imports nothing of ComfyUI or torch:
it uses the tensor's own methods. Bounded: the previews of at most :data:`KEEP` keys are kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

from ..media import artifacts, images

KEEP = 64  # keys (one per SaveImage of a prompt) whose previews wait to be taken
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mcpb-preview")


class Store:
    """Preview futures by key (``<prompt id>/<SaveImage node id>``), oldest dropped beyond ``keep``."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._found: OrderedDict[str, list[Future[artifacts.Preview]]] = OrderedDict()

    def put(self, key: str, frames: list[np.ndarray[Any, Any]]) -> None:
        """Start encoding ``frames`` (uint8 HxWxC arrays) as previews under ``key``."""
        futures = [_pool.submit(_encode, frame) for frame in frames]
        with self._lock:
            self._found[key] = futures
            while len(self._found) > self.keep:
                self._found.popitem(last=False)

    def take(self, key: str) -> list[Future[artifacts.Preview]] | None:
        """The previews under ``key`` (handed over once), or None when the node did not run."""
        with self._lock:
            return self._found.pop(key, None)

    def __len__(self) -> int:
        return len(self._found)


STORE = Store()


def _encode(frame: np.ndarray[Any, Any]) -> artifacts.Preview:
    data, mime = images.make_preview(Image.fromarray(frame), images.PREVIEW_MAX_SIDE)
    return artifacts.Preview(data, mime)


def reduced(image: Any, side: int = images.PREVIEW_MAX_SIDE) -> np.ndarray[Any, Any]:
    """One HxWxC float image (a torch tensor or an array, 0..1) as uint8, box-averaged by a whole factor
    so its longest side stays at least ``2 * side`` (the WebP encoder's resize does the rest)."""
    height, width = int(image.shape[0]), int(image.shape[1])
    k = max(1, max(height, width) // (2 * side))
    if k > 1:
        h, w = height // k, width // k
        image = image[: h * k, : w * k].reshape(h, k, w, k, image.shape[2]).mean((1, 3))
    if hasattr(image, "cpu"):  # torch: only the small image leaves the device
        image = image.cpu().float().numpy()
    return np.asarray((np.clip(image, 0.0, 1.0) * 255.0).round(), dtype=np.uint8)


class ResultPreview:
    """ComfyUI node (added by the bridge to its own prompts): ≤ 512 px previews of the images beside it."""

    CATEGORY = "_for_testing"
    DESCRIPTION = "comfyui-mcp-bridge adds this node to its own prompts: result previews from the image."
    RETURN_TYPES = ()
    FUNCTION = "preview"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {"required": {"images": ("IMAGE",), "key": ("STRING", {"default": ""})}}

    def preview(self, images: Any, key: str) -> dict[str, Any]:
        frames = [reduced(image) for image in images]
        if key:
            STORE.put(key, frames)
        return {}
