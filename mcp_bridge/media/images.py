"""Image checks and encodings: inline inputs, previews, files for ``output_path``.

Every function here is synchronous, CPU- or disk-bound and touches no shared state: the tool layer
runs them off the event loop with ``asyncio.to_thread``. No ComfyUI import.

Inputs are checked before anything trusts them: a length cap before base64 decoding, a byte cap, a
format allow-list by magic bytes (PNG, JPEG, WebP) that Pillow is then restricted to, a pixel cap read
from the header before decoding, ``verify()``, then a full decode that catches truncation; animated
images are refused (ComfyUI's LoadImage would turn every frame into a batch item).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, features

from ..comfyui.artifacts import MIME_BY_EXTENSION

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_PIXELS = 4096 * 4096
PREVIEW_MAX_SIDE = 512
PREVIEW_MAX_BYTES = 150_000  # per preview: far below the 1 MiB message limits of MCP clients
# libwebp effort 0-6: 0 encodes a 512² preview ~4x faster than 4 (the default) for ~8 % more bytes
PREVIEW_WEBP_METHOD = 0

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_SUFFIX_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}
_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[\w.+-]+)*)(;base64)?,", re.ASCII | re.I)
_B64_CHARS = re.compile(r"[A-Za-z0-9+/=_-]+", re.ASCII)
_ORIENTATION = 0x0112


class ImageRejected(ValueError):
    """An image the bridge will not use; the message says why and what is accepted."""


@dataclass(frozen=True)
class ImageFacts:
    """What a checked image is: its size as ComfyUI will see it (EXIF rotation applied) and format."""

    width: int
    height: int
    format: str  # "png", "jpeg" or "webp"

    @property
    def mime(self) -> str:
        return MIME_BY_EXTENSION[f".{self.format}"]


def sniff_format(data: bytes) -> str | None:
    """``png``, ``jpeg`` or ``webp`` from the magic bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def is_inline_image(text: str) -> bool:
    """True when ``text`` looks like a data URI or bare base64 rather than a file name or URI."""
    if text[:5].lower() == "data:":
        return True
    compact = "".join(text[:4096].split())
    return len(compact) >= 64 and _B64_CHARS.fullmatch(compact) is not None


def check_image_bytes(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageFacts:
    """Validate encoded image bytes fully (format, size, integrity); raise :class:`ImageRejected`."""
    if len(data) > max_bytes:
        raise ImageRejected(f"the image is {len(data)} bytes; at most {max_bytes} are accepted")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected("not a PNG, JPEG or WebP image")
    pil_format = _PIL_FORMATS[fmt]
    try:
        with Image.open(io.BytesIO(data), formats=[pil_format]) as im:
            width, height = im.size
            if width < 1 or height < 1:
                raise ImageRejected("the image has no pixels")
            if width * height > max_pixels:
                raise ImageRejected(
                    f"the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted"
                )
            if fmt != "jpeg" and getattr(im, "is_animated", False):
                raise ImageRejected("animated images are not accepted; send a single frame")
            im.verify()
        with Image.open(io.BytesIO(data), formats=[pil_format]) as im:
            im.load()
            orientation = im.getexif().get(_ORIENTATION, 1)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"the image has too many pixels (at most {max_pixels} are accepted)") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's parsers raise many types on hostile input
        raise ImageRejected(
            f"the {fmt.upper()} data is damaged or truncated ({type(exc).__name__})"
        ) from None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return ImageFacts(width, height, fmt)


def decode_input_image(
    data: str, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[bytes, str]:
    """Decode base64 or a ``data:image/...;base64,`` URI into checked image bytes and their format.

    The text length is capped before decoding. Returns ``(bytes, "png" | "jpeg" | "webp")``.
    """
    if not isinstance(data, str):
        raise ImageRejected("an inline image must be a base64 string or a data: URI")
    b64_cap = 4 * math.ceil(max_bytes / 3)
    max_chars = b64_cap + b64_cap // 38 + 256
    if len(data) > max_chars:
        raise ImageRejected(f"the inline image is too large: at most {max_bytes} bytes of image are accepted")
    text = data.strip()
    claimed: str | None = None
    if text[:5].lower() == "data:":
        match = _DATA_URI.match(text)
        if match is None:
            raise ImageRejected("malformed data: URI; expected data:image/png;base64,<data>")
        mime = (match.group(1) or "").lower()
        if mime not in ("image/png", "image/jpeg", "image/jpg", "image/webp"):
            raise ImageRejected(f"data: URI type {mime or 'none'!r} is not accepted; use png, jpeg or webp")
        if not match.group(3):
            raise ImageRejected("the data: URI must be base64-encoded (;base64,)")
        claimed = {"image/jpg": "jpeg"}.get(mime, mime.split("/")[1])
        text = text[match.end() :]
    compact = "".join(text.split()).translate(str.maketrans("-_", "+/"))
    compact += "=" * (-len(compact) % 4)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRejected("the inline image is not valid base64") from None
    if not raw:
        raise ImageRejected("the inline image is empty")
    facts = check_image_bytes(raw, max_bytes=max_bytes, max_pixels=max_pixels)
    if claimed is not None and claimed != facts.format:
        raise ImageRejected(f"the data: URI says {claimed} but the data is {facts.format}")
    return raw, facts.format


def read_input_file(
    path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[bytes, str]:
    """Read a checked image file (from ``PathPolicy.resolve_input``); return ``(bytes, format)``."""
    flags = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO must not hang the call
    except OSError as exc:
        raise ImageRejected(
            f"the image file cannot be opened ({exc.strerror or type(exc).__name__})"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ImageRejected("the image path is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRejected(f"the image file is larger than {max_bytes} bytes")
    facts = check_image_bytes(data, max_bytes=max_bytes, max_pixels=max_pixels)
    return data, facts.format


def image_info(path: Path | str | BinaryIO) -> tuple[int, int, str]:
    """``(width, height, format)`` of an image, a path or an open binary file; format lower case."""
    try:
        with Image.open(path) as im:
            return im.size[0], im.size[1], str(im.format or "unknown").lower()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"not a readable image ({type(exc).__name__})") from None


def _open(image: bytes | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    try:
        im = Image.open(io.BytesIO(image))
        im.load()
    except Exception as exc:  # noqa: BLE001 - Pillow's parsers raise many types
        raise ImageRejected(f"not a readable image ({type(exc).__name__})") from None
    return im


def _normalized(im: Image.Image, alpha: bool) -> Image.Image:
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if alpha and has_alpha:
        return im.convert("RGBA")
    if has_alpha:
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return im.convert("RGB")


def make_preview(
    image: bytes | Image.Image, max_side: int = PREVIEW_MAX_SIDE, *, max_bytes: int = PREVIEW_MAX_BYTES
) -> tuple[bytes, str]:
    """A small preview: longest side at most ``max_side``, WebP (JPEG without WebP support), no metadata.

    Quality drops, then the size shrinks, until the encoding is at most ``max_bytes``.
    Returns ``(bytes, mime type)``.
    """
    webp = bool(features.check("webp"))
    im = _normalized(_open(image), alpha=webp)
    side = max(1, min(max_side, max(im.size)))
    while True:
        small = im.copy()
        small.thumbnail((side, side), Image.Resampling.LANCZOS)
        for quality in (80, 65, 50, 35, 20):
            out = io.BytesIO()
            if webp:
                small.save(out, "WEBP", quality=quality, method=PREVIEW_WEBP_METHOD)
            else:
                small.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= max_bytes:
                return out.getvalue(), "image/webp" if webp else "image/jpeg"
        if side <= 32:
            return out.getvalue(), "image/webp" if webp else "image/jpeg"
        side = max(32, int(side * 0.7))


def format_for_suffix(suffix: str) -> str:
    """The format an ``output_path`` suffix calls for (``.jpg`` → ``jpeg``); ImageRejected if none."""
    fmt = _SUFFIX_FORMATS.get(suffix.lower())
    if fmt is None:
        raise ImageRejected(f"no image format for {suffix!r}; use .png, .jpg, .jpeg or .webp")
    return fmt


def encode_for_suffix(image: bytes | Image.Image, suffix: str, *, keep_metadata: bool = False) -> bytes:
    """Encode an image in the format ``suffix`` names, for writing to ``output_path``.

    Metadata (ComfyUI's embedded prompt and workflow, EXIF) is dropped unless ``keep_metadata`` is set
    and the bytes are already in the right format, in which case they are returned unchanged.
    """
    fmt = format_for_suffix(suffix)
    if keep_metadata and isinstance(image, bytes) and sniff_format(image) == fmt:
        return image
    im = _open(image)
    out = io.BytesIO()
    if fmt == "png":
        _normalized(im, alpha=True).save(out, "PNG", compress_level=6)
    elif fmt == "jpeg":
        _normalized(im, alpha=False).save(out, "JPEG", quality=95, subsampling=0)
    else:
        _normalized(im, alpha=True).save(out, "WEBP", quality=95, method=4)
    return out.getvalue()
