"""What a job produced: artifacts (still images, animations, videos), described, previewed, converted.

Plain Python, no ComfyUI import: the adapter turns ComfyUI's history entries into :class:`Artifact`
values; this module knows what to do with the files. Every function that reads a file is blocking
(disk, decoding): callers run it off the event loop with ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

from ..comfyui.artifacts import (
    Artifact,
    ArtifactInfo,
    ArtifactKind,
)
from . import images

log = logging.getLogger("comfyui_mcp_bridge")


class ConversionRefused(images.ImageRejected):
    """An artifact cannot be written in the format an ``output_path`` suffix asks for; says which exist."""


@dataclass(frozen=True)
class Preview:
    """A small still standing for an artifact (WebP; JPEG where Pillow has no WebP)."""

    data: bytes
    mime_type: str


# What each kind can be written as (the suffix of ``output_path``); the produced format is always one.
STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
ANIMATION_SUFFIXES = (".webp", ".gif", ".png", ".apng", ".mp4", ".webm")
VIDEO_SUFFIXES = (".mp4", ".webm", ".webp", ".gif", ".png", ".apng")
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "image": STILL_SUFFIXES,
    "animation": ANIMATION_SUFFIXES,
    "video": VIDEO_SUFFIXES,
}
_PIL_ANIMATED = {".webp": "WEBP", ".gif": "GIF", ".png": "PNG", ".apng": "PNG"}
_VIDEO_CODECS = {".mp4": ("mp4", "libx264"), ".webm": ("webm", "libvpx-vp9")}
# Converting decodes every frame: at most this many pixels over all frames (1000 frames of 512x512).
MAX_CONVERT_PIXELS = 1000 * 512 * 512
# Frame durations are summed one by one up to this count, beyond it extrapolated from the first.
_DURATION_SCAN_FRAMES = 500


def suffixes_for(kind: ArtifactKind) -> tuple[str, ...]:
    """The ``output_path`` suffixes an artifact of ``kind`` can be written as."""
    return _SUFFIXES[kind]


# --- describe ---------------------------------------------------------------------------------------


def describe(artifact: Artifact, path: Path) -> ArtifactInfo:
    """Size, dimensions and, for animations and videos, frames, fps and duration (blocking).

    Raises ``OSError`` only when the file cannot be found; an undecodable file gives its size alone.
    """
    size = path.stat().st_size
    try:
        if artifact.kind == "video":
            return _describe_video(path, size, artifact.frame_rate)
        return _describe_image(path, size, artifact.kind == "animation", artifact.frame_rate)
    except Exception as exc:  # noqa: BLE001 - decoders raise many types; the link still works
        log.info("mcp-bridge: cannot read %s (%s)", artifact.filename, type(exc).__name__)
        return ArtifactInfo(size_bytes=size)


def _describe_image(path: Path, size: int, animated: bool, node_rate: float | None) -> ArtifactInfo:
    with Image.open(path) as im:
        width, height = im.size
        if not animated:
            return ArtifactInfo(size, width, height)
        frames = int(getattr(im, "n_frames", 1))
        total_ms = 0.0
        for index in range(min(frames, _DURATION_SCAN_FRAMES)):
            total_ms += _frame_ms(im, index)
        if frames > _DURATION_SCAN_FRAMES:
            total_ms *= frames / _DURATION_SCAN_FRAMES
    duration = total_ms / 1000 if total_ms > 0 else (frames / node_rate if node_rate else None)
    fps = frames / duration if duration else node_rate
    return ArtifactInfo(size, width, height, frames, _round(fps), _round(duration))


def _frame_ms(im: Image.Image, index: int) -> float:
    # Pillow's WebP reader sets a frame's duration only once the frame is loaded.
    im.seek(index)
    im.load()
    return float(im.info.get("duration") or 0)


def _describe_video(path: Path, size: int, node_rate: float | None) -> ArtifactInfo:
    av = _av()
    if av is None:
        return ArtifactInfo(size)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else node_rate
        frames = int(stream.frames or 0)
        if stream.duration is not None and stream.time_base is not None:
            duration: float | None = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = None
        if frames == 0:  # WebM headers do not count frames: count packets (no decoding)
            frames = sum(1 for packet in container.demux(stream) if packet.size)
    if not duration and fps:
        duration = frames / fps
    return ArtifactInfo(size, width, height, frames or None, _round(fps), _round(duration))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- preview ----------------------------------------------------------------------------------------


def preview(
    artifact: Artifact,
    path: Path,
    max_side: int = images.PREVIEW_MAX_SIDE,
    max_bytes: int = images.PREVIEW_MAX_BYTES,
) -> Preview | None:
    """A still preview: the image itself, or the first frame of an animation or video (blocking).

    None when the file cannot be previewed (no decoder, damaged file): the result still links it.
    """
    try:
        frame = _first_frame(artifact, path)
        if frame is None:
            return None
        data, mime = images.make_preview(frame, max_side, max_bytes=max_bytes)
    except Exception as exc:  # noqa: BLE001 - decoders raise many types; the link still works
        log.info("mcp-bridge: no preview of %s (%s)", artifact.filename, type(exc).__name__)
        return None
    return Preview(data, mime)


def _first_frame(artifact: Artifact, path: Path) -> Image.Image | None:
    if artifact.kind == "video":
        av = _av()
        if av is None:
            return None
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                image: Image.Image = frame.to_image()
                return image
        return None
    with Image.open(path) as im:
        im.seek(0)
        first: Image.Image = im.convert("RGBA" if im.mode in ("RGBA", "LA", "PA", "P") else "RGB")
    return first


# --- encode for output_path -------------------------------------------------------------------------


def encode_for(artifact: Artifact, path: Path, suffix: str) -> bytes:
    """The bytes to write for ``output_path`` ending in ``suffix`` (blocking).

    A still is re-encoded as today (its embedded workflow dropped). An animation or video whose
    format the suffix names is returned exactly as ComfyUI wrote it; otherwise it is converted
    (Pillow for animated images, PyAV for video). Raises :class:`ConversionRefused` naming the
    suffixes that work when there is no such conversion.
    """
    suffix = suffix.lower()
    allowed = suffixes_for(artifact.kind)
    if suffix not in allowed:
        raise ConversionRefused(
            f"{artifact.filename} is {_a(artifact.kind)} ({artifact.mime_type}); output_path can end in "
            + ", ".join(allowed)
        )
    if artifact.kind == "image":
        return images.encode_for_suffix(path.read_bytes(), suffix)
    data = path.read_bytes()
    if _same_format(data, suffix):
        return data
    if _has_audio(artifact, path):
        raise ConversionRefused(
            f"{artifact.filename} has an audio track that converting to {suffix} would lose; use "
            f"{PurePosixPath(artifact.filename).suffix.lower()} to get the file as produced"
        )
    frames, fps = _frames(artifact, path)
    if suffix in _VIDEO_CODECS:
        return _encode_video(frames, fps, suffix)
    return _encode_animation(frames, fps, suffix)


def _a(kind: str) -> str:
    return {"image": "a still image", "animation": "an animation", "video": "a video"}[kind]


def _same_format(data: bytes, suffix: str) -> bool:
    # The produced file's real format (magic bytes), not its name, decides whether it is kept as is.
    if suffix in (".png", ".apng"):
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if suffix == ".gif":
        return data[:6] in (b"GIF87a", b"GIF89a")
    if suffix == ".webp":
        return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if suffix == ".webm":
        return data.startswith(b"\x1a\x45\xdf\xa3")  # Matroska/WebM EBML header
    if suffix == ".mp4":
        return data[4:8] == b"ftyp"
    return False


def _has_audio(artifact: Artifact, path: Path) -> bool:
    if artifact.kind != "video":
        return False
    av = _require_av(artifact)
    with av.open(str(path)) as container:
        return bool(container.streams.audio)


def _frames(artifact: Artifact, path: Path) -> tuple[list[Image.Image], float]:
    """Every frame (RGBA) and the frame rate, within :data:`MAX_CONVERT_PIXELS`."""
    frames: list[Image.Image] = []
    pixels = 0

    def add(image: Image.Image) -> None:
        nonlocal pixels
        pixels += image.width * image.height
        if pixels > MAX_CONVERT_PIXELS:
            raise ConversionRefused(
                f"{artifact.filename} is too long to convert (more than {MAX_CONVERT_PIXELS} pixels over "
                f"all frames); use {PurePosixPath(artifact.filename).suffix.lower()} to get it as produced"
            )
        frames.append(image.convert("RGBA"))

    if artifact.kind == "video":
        av = _require_av(artifact)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            for frame in container.decode(stream):
                add(frame.to_image())
        fps = float(rate) if rate else artifact.frame_rate or 24.0
        return frames, fps
    total_ms = 0.0
    with Image.open(path) as im:
        for index in range(int(getattr(im, "n_frames", 1))):
            total_ms += _frame_ms(im, index)
            add(im)
    fps = len(frames) * 1000 / total_ms if total_ms > 0 else artifact.frame_rate or 10.0
    return frames, fps


def _encode_animation(frames: list[Image.Image], fps: float, suffix: str) -> bytes:
    out = io.BytesIO()
    duration = max(1, round(1000 / fps))
    first, rest = frames[0], frames[1:]
    options: dict[str, object] = {"save_all": True, "append_images": rest, "duration": duration, "loop": 0}
    if suffix == ".webp":
        options.update(quality=90, method=4)
    elif suffix == ".gif":
        options.update(disposal=2, optimize=False)
    first.save(out, _PIL_ANIMATED[suffix], **options)
    return out.getvalue()


def _encode_video(frames: list[Image.Image], fps: float, suffix: str) -> bytes:
    av = _av()
    if av is None:
        raise ConversionRefused(f"writing {suffix} needs PyAV (the av package), which is not installed")
    container_format, codec = _VIDEO_CODECS[suffix]
    # 4:2:0 video needs even sides: pad the frames by one pixel where needed.
    width, height = frames[0].width + frames[0].width % 2, frames[0].height + frames[0].height % 2
    out = io.BytesIO()
    with av.open(out, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "medium"}
        else:
            stream.options = {"crf": "30", "b": "0", "row-mt": "1"}
        for image in frames:
            canvas = Image.new("RGB", (width, height), (0, 0, 0))
            canvas.paste(image.convert("RGB"), (0, 0))
            for packet in stream.encode(av.VideoFrame.from_image(canvas)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def _av() -> Any | None:
    """PyAV (installed with ComfyUI), or None where it is missing."""
    try:
        import av
    except ImportError:
        return None
    return av


def _require_av(artifact: Artifact) -> Any:
    av = _av()
    if av is None:
        raise ConversionRefused(
            f"converting {artifact.filename} needs PyAV (the av package), which is not installed; use "
            f"{PurePosixPath(artifact.filename).suffix.lower()} to get it as produced"
        )
    return av
