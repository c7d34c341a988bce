"""A test-only ComfyUI node that saves frames as an MP4 and reports it under ``gifs``, the way video
custom nodes (VideoHelperSuite's VideoCombine) do. Linked into ``custom_nodes`` only by tests."""

from __future__ import annotations

import os
import uuid
from typing import Any

import av
import folder_paths
import numpy as np


class FakeVideoCombine:
    """IMAGE batch -> ``<output>/<prefix>_<id>.mp4``; the UI record lists it under ``gifs``."""

    CATEGORY = "testing"
    FUNCTION = "combine"
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI's name
        return {
            "required": {
                "images": ("IMAGE",),
                "frame_rate": ("FLOAT", {"default": 8.0, "min": 1.0, "max": 60.0}),
                "filename_prefix": ("STRING", {"default": "fake_combine"}),
            }
        }

    def combine(self, images: Any, frame_rate: float, filename_prefix: str) -> dict[str, Any]:
        name = f"{filename_prefix}_{uuid.uuid4().hex[:8]}.mp4"
        path = os.path.join(folder_paths.get_output_directory(), name)
        pixels = (images.cpu().numpy() * 255).clip(0, 255).astype(np.uint8)
        with av.open(path, "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(frame_rate))
            stream.height, stream.width = pixels.shape[1], pixels.shape[2]
            stream.pix_fmt = "yuv420p"
            for frame in pixels:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode(None))
        record = {
            "filename": name,
            "subfolder": "",
            "type": "output",
            "format": "video/h264-mp4",
            "frame_rate": frame_rate,
        }
        return {"ui": {"gifs": [record]}}


NODE_CLASS_MAPPINGS = {"FakeVideoCombine": FakeVideoCombine}
