"""Stage a caller's ``input_image`` in ComfyUI's input folder under a name the bridge generated.

Accepted: base64 or a ``data:`` URI; a resource URI the bridge returned (``comfy://output/...``); a
file name in ComfyUI's input folder or an earlier output's file name; a path inside the allowed input
folders; an ``https://`` URL of a host the ``fetch_url_hosts`` setting lists (fetched by :mod:`.fetch`,
then stored with :func:`store_image_bytes`). Whatever the source, the bytes are checked as an image
and copied to ``<input>/mcp/<uuid>.<ext>``; ComfyUI's ``LoadImage`` only ever sees that generated
name (never caller text, see CVE-2026-56673). Synchronous: run it off the event loop.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..comfyui.backend import ComfyBackend
from ..engine.ids import parse_output_link
from ..media import images
from ..specs.sizes import SizeCheck
from .paths import PathPolicy, PathRejected, protected_trees, safe_write

log = logging.getLogger("comfyui_mcp_bridge")
STAGING_SUBFOLDER = "mcp"
_EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
_URL = re.compile(r"^[a-z][a-z0-9+.-]+://", re.IGNORECASE)  # http://, ftp://, file://, … (not C:\)


def remove_staged(paths: Sequence[Path]) -> None:
    """Remove staged copies; a file that cannot be removed is logged, never raised (clean-up must not
    replace the error or result it follows). Synchronous: run it off the event loop."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("mcp-bridge: cannot remove staged input %s: %s", path.name, exc.strerror or exc)


class InputRejected(ValueError):
    """The ``input_image`` cannot be used; the message says why and what is accepted."""


@dataclass(frozen=True)
class StagedImage:
    """An input image copied into ComfyUI's input folder."""

    name: str  # what LoadImage receives, e.g. "mcp/3f2a….png"
    path: Path
    width: int
    height: int
    source: str  # "inline", "resource", "input", "output", "path"


ACCEPTED = (
    "input_image accepts: base64 or a data:image/...;base64 URI; a comfy://output/... URI from an earlier "
    "result; a file name in ComfyUI's input or output folder; or a full path inside the allowed folders"
)
NOT_FETCHED = (
    "URLs are not fetched, except https:// URLs of hosts the fetch_url_hosts setting lists; give a file "
    "name in ComfyUI's input/output folder, a comfy://output/… URI, a path inside an allowed folder, or "
    "base64 / a data: URI"
)


def protected_folders(comfy: ComfyBackend) -> list[str]:
    """Folders never read from nor written into (:func:`~.paths.protected_trees` of this ComfyUI)."""
    listed = comfy.protected_directories()
    return protected_trees(listed, [comfy.input_directory(), comfy.output_directory()])


def _locate(
    value: str, input_dir: Path, output_dir: Path, read_roots: list[Path], protected: Sequence[str | Path]
) -> tuple[Path, str]:
    text = value.strip()
    link = parse_output_link(text)  # comfy://output/... or comfy://<instance>/output/... (read here)
    if link is not None:
        rel = link[1]
        policy = PathPolicy([output_dir], deny=protected)
        try:
            return policy.resolve_input(rel, output_dir), "resource"
        except PathRejected as exc:
            raise InputRejected(f"{text[:120]!r} is not an output of this ComfyUI: {exc.reason}") from None
    if _URL.match(text):
        raise InputRejected(f"input_image {text[:120]!r} is a URL. {NOT_FETCHED}")
    if "/" not in text and "\\" not in text:
        # A bare file name: ComfyUI's input folder first, then outputs (the bridge saves under mcp/).
        for folder, source in (
            (input_dir, "input"),
            (output_dir / STAGING_SUBFOLDER, "output"),
            (output_dir, "output"),
        ):
            if not folder.is_dir():  # e.g. no output of the bridge yet
                continue
            try:
                return PathPolicy([folder], deny=protected).resolve_input(text, folder), source
            except PathRejected as exc:
                if exc.reason != "no such file":
                    raise InputRejected(f"input_image was refused: {exc.reason}") from None
        raise InputRejected(f"no file named {text[:120]!r} in ComfyUI's input or output folder. {ACCEPTED}")
    hint = "Add a folder to the bridge's output_roots setting to allow it"
    policy = PathPolicy(read_roots, deny=protected, hint=hint)
    try:
        return policy.resolve_input(text, None), "path"
    except PathRejected as exc:
        raise InputRejected(str(exc).replace("input path", "input_image", 1)) from None


def stage_input_image(
    value: str,
    *,
    input_dir: Path,
    output_dir: Path,
    read_roots: list[Path],
    protected: Sequence[str | Path],
    max_bytes: int,
    max_pixels: int,
    check: SizeCheck | None = None,
) -> StagedImage:
    """Check ``value`` (see module doc) and copy its image into ``input_dir/mcp/``; nothing is read
    from the ``protected`` folders (see :func:`protected_folders`), whatever the roots. ``check`` gets
    the image's width and height before anything is written (it raises to refuse)."""
    if not isinstance(value, str) or not value.strip():
        raise InputRejected(f"input_image is empty. {ACCEPTED}")
    try:
        if images.is_inline_image(value):
            data, _ = images.decode_input_image(value, max_bytes=max_bytes, max_pixels=max_pixels)
            source = "inline"
        else:
            path, source = _locate(value, input_dir, output_dir, read_roots, protected)
            data, _ = images.read_input_file(path, max_bytes=max_bytes, max_pixels=max_pixels)
    except images.ImageRejected as exc:
        raise InputRejected(f"input_image is not usable: {exc}") from None
    return store_image_bytes(
        data, source, input_dir=input_dir, max_bytes=max_bytes, max_pixels=max_pixels, check=check
    )


def store_image_bytes(
    data: bytes,
    source: str,
    *,
    input_dir: Path,
    max_bytes: int,
    max_pixels: int,
    check: SizeCheck | None = None,
) -> StagedImage:
    """Check ``data`` as an input image (and its size with ``check``), then write it to
    ``input_dir/mcp/<uuid>.<ext>``."""
    try:
        facts = images.check_image_bytes(data, max_bytes=max_bytes, max_pixels=max_pixels)
    except images.ImageRejected as exc:
        raise InputRejected(f"input_image is not usable: {exc}") from None
    if check is not None:
        check(facts.width, facts.height)
    fmt = facts.format
    folder = input_dir / STAGING_SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.{_EXTENSIONS[fmt]}"
    target = safe_write(folder / name, data, overwrite=False)
    return StagedImage(f"{STAGING_SUBFOLDER}/{name}", target, facts.width, facts.height, source)
