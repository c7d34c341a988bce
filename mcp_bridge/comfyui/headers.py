"""What a checkpoint file is, read from its safetensors header alone (never its tensors).

A safetensors file starts with an 8-byte little-endian header length and that many bytes of JSON
(``{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}``). An SD-style inpainting
checkpoint's UNet takes 9 input channels (4 latent + 4 masked-image latent + 1 mask) where an ordinary
one takes 4: ``model.diffusion_model.input_blocks.0.0.weight`` has shape ``[C, 9, 3, 3]``.

Blocking file I/O: call from a worker thread. Pure Python (no ComfyUI import).
"""

from __future__ import annotations

import functools
import json
import os
import struct
from pathlib import Path

MAX_HEADER_BYTES = 100_000_000  # what safetensors itself accepts; a larger "header" is not one
FIRST_CONV = "model.diffusion_model.input_blocks.0.0.weight"
INPAINT_CHANNELS = 9


def is_inpainting_checkpoint(path: Path) -> bool:
    """True when ``path`` is a safetensors checkpoint whose UNet takes 9 input channels; any error
    (missing, unreadable, not safetensors, oversized or broken header) means False. Cached by path,
    modification time and size."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return _first_conv_inputs(str(path), info.st_mtime_ns, info.st_size) == INPAINT_CHANNELS


@functools.lru_cache(maxsize=256)
def _first_conv_inputs(path: str, mtime_ns: int, size: int) -> int | None:
    # mtime_ns and size only key the cache: a rewritten file is read again.
    header = read_header(Path(path), size)
    entry = header.get(FIRST_CONV) if header else None
    shape = entry.get("shape") if isinstance(entry, dict) else None
    if isinstance(shape, list) and len(shape) == 4 and isinstance(shape[1], int):
        return shape[1]
    return None


def read_header(path: Path, size: int | None = None) -> dict[str, object] | None:
    """The JSON header of a safetensors file, or None when it is not one (or cannot be read)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                return None
            (length,) = struct.unpack("<Q", raw)
            if length > MAX_HEADER_BYTES or (size is not None and 8 + length > size):
                return None
            text = fh.read(length)
        if len(text) != length:
            return None
        header = json.loads(text)
    except (OSError, ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) else None
