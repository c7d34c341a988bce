"""What a checkpoint file is, read from its safetensors header alone (never its tensors).

Also the tensor names and shapes of any model file (:func:`read_tensor_header`), which
:mod:`mcp_bridge.specs.families` classifies, and a GGUF file's ``general.architecture``.

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
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

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


# -- every model file: tensor names and shapes (safetensors), architecture (GGUF) --

GGUF_MAGIC = b"GGUF"
MAX_GGUF_KEYS = 4096  # metadata entries read before giving up on finding general.architecture
_GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # type -> bytes
_GGUF_STRING, _GGUF_ARRAY = 8, 9


class HeaderShapes(Mapping[str, tuple[int, ...]]):
    """The tensor shapes of a safetensors header, looked up in its raw JSON text without parsing all
    of it: a lookup is a substring search (a real checkpoint's header is 100-300 KB of JSON, which
    takes milliseconds to parse; a search, microseconds). Iterating parses the whole header once."""

    _SHAPE = re.compile(rb'\s*\{[^{}]*?"shape"\s*:\s*\[([0-9,\s]*)\]')

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._parsed: dict[str, tuple[int, ...]] | None = None

    @classmethod
    def of(cls, shapes: Mapping[str, Sequence[int]]) -> HeaderShapes:
        """From names and shapes (tests and tools that build headers)."""
        body = {
            name: {"dtype": "F16", "shape": list(shape), "data_offsets": [0, 0]}
            for name, shape in shapes.items()
        }
        return cls(json.dumps(body).encode())

    def has_prefix(self, prefix: str) -> bool:
        """Whether some tensor name starts with ``prefix``."""
        return b'"' + prefix.encode() in self._raw

    def mentions(self, fragment: str) -> bool:
        """Whether ``fragment`` occurs in some tensor name (or anywhere in the header)."""
        return fragment.encode() in self._raw

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (b'"' + name.encode() + b'":') in self._raw

    def __getitem__(self, name: str) -> tuple[int, ...]:
        at = self._raw.find(b'"' + name.encode() + b'":')
        if at < 0:
            raise KeyError(name)
        found = self._SHAPE.match(self._raw, at + len(name.encode()) + 3)
        if found is None:
            raise KeyError(name)
        return tuple(int(n) for n in found.group(1).split(b",") if n.strip())

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def _all(self) -> dict[str, tuple[int, ...]]:
        if self._parsed is None:
            try:
                header = json.loads(self._raw)
            except (ValueError, RecursionError):
                header = {}
            self._parsed = {
                name: tuple(entry["shape"])
                for name, entry in (header.items() if isinstance(header, dict) else ())
                if name != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("shape"), list)
            }
        return self._parsed


@dataclass(frozen=True)
class TensorHeader:
    """What a model file says about itself without its tensors: ``shapes`` (safetensors; empty for
    GGUF) and ``architecture`` (a GGUF file's ``general.architecture``)."""

    format: str  # "safetensors" or "gguf"
    shapes: HeaderShapes = field(default_factory=lambda: HeaderShapes(b"{}"))
    architecture: str | None = None


def read_tensor_header(path: Path) -> TensorHeader | None:
    """The header of a safetensors or GGUF file, or None when it is neither (or cannot be read).

    Reads at most :data:`MAX_HEADER_BYTES` of header, never a tensor. Blocking: call off the loop.
    Not cached here: cache what you derive from it by path, size and mtime.
    """
    try:
        size = os.stat(path).st_size
        with path.open("rb") as fh:
            start = fh.read(8)
            if start[:4] == GGUF_MAGIC:
                fh.seek(4)
                arch = _gguf_architecture(fh)
                return TensorHeader("gguf", architecture=arch) if arch is not None else None
            if len(start) != 8:
                return None
            (length,) = struct.unpack("<Q", start)
            if length > MAX_HEADER_BYTES or 8 + length > size:
                return None
            raw = fh.read(length).rstrip(b" ")  # safetensors pads the header with spaces
    except OSError:
        return None
    if len(raw) < 2 or raw[:1] != b"{" or raw[-1:] != b"}":
        return None
    return TensorHeader("safetensors", HeaderShapes(raw))


def _gguf_architecture(fh: BinaryIO) -> str | None:
    """``general.architecture`` from a GGUF header (after the magic); None when absent or broken."""
    try:
        _version, _tensors, count = struct.unpack("<IQQ", fh.read(20))
        read = 24
        for _ in range(min(count, MAX_GGUF_KEYS)):
            key, read = _gguf_string(fh, read)
            (kind,) = struct.unpack("<I", fh.read(4))
            read += 4
            if key == "general.architecture" and kind == _GGUF_STRING:
                return _gguf_string(fh, read)[0]
            read = _gguf_skip(fh, kind, read)
            if read > MAX_HEADER_BYTES:
                return None
    except (struct.error, ValueError, UnicodeDecodeError, OSError):
        return None
    return None


def _gguf_string(fh: BinaryIO, read: int) -> tuple[str, int]:
    (length,) = struct.unpack("<Q", fh.read(8))
    if length > MAX_HEADER_BYTES:
        raise ValueError("GGUF string too long")
    data = fh.read(length)
    if len(data) != length:
        raise ValueError("truncated GGUF header")
    return data.decode("utf-8"), read + 8 + length


def _gguf_skip(fh: BinaryIO, kind: int, read: int) -> int:
    if kind in _GGUF_SCALARS:
        fh.seek(_GGUF_SCALARS[kind], os.SEEK_CUR)
        return read + _GGUF_SCALARS[kind]
    if kind == _GGUF_STRING:
        return _gguf_string(fh, read)[1]
    if kind == _GGUF_ARRAY:
        item, count = (int(n) for n in struct.unpack("<IQ", fh.read(12)))
        read += 12
        if item in _GGUF_SCALARS:
            fh.seek(_GGUF_SCALARS[item] * count, os.SEEK_CUR)
            return read + _GGUF_SCALARS[item] * count
        for _ in range(count):
            read = _gguf_skip(fh, item, read)
            if read > MAX_HEADER_BYTES:
                raise ValueError("GGUF header too large")
        return read
    raise ValueError(f"unknown GGUF value type {kind}")
