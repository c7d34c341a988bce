"""What a job produced, as plain values that cross the ComfyUI port: artifacts and their MIME types.

The adapter turns ComfyUI's history entries into :class:`Artifact` values; :mod:`mcp_bridge.media`
knows what to do with the files. No ComfyUI import, no file access.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

ArtifactKind = Literal["image", "animation", "video"]

# File extension -> MIME type of every output kind the bridge knows; anything else is octet-stream.
MIME_BY_EXTENSION = {
    ".png": "image/png",
    ".apng": "image/apng",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
}
OCTET_STREAM = "application/octet-stream"
VIDEO_EXTENSIONS = frozenset(ext for ext, mime in MIME_BY_EXTENSION.items() if mime.startswith("video/"))
# Image containers that can hold more than one frame.
ANIMATABLE_EXTENSIONS = frozenset({".webp", ".png", ".apng", ".gif"})


def mime_for(filename: str) -> str:
    """The MIME type of a file from its extension (``application/octet-stream`` when unknown)."""
    return MIME_BY_EXTENSION.get(PurePosixPath(filename).suffix.lower(), OCTET_STREAM)


def kind_for(filename: str, animated: bool = False) -> ArtifactKind:
    """Kind of an output file: a video container is a video, a multi-frame image an animation."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if animated and suffix in ANIMATABLE_EXTENSIONS:
        return "animation"
    return "image"


@dataclass(frozen=True)
class Artifact:
    """One file a job produced, as ComfyUI reported it."""

    node_id: str
    kind: ArtifactKind
    filename: str
    subfolder: str
    folder_type: str  # "output" | "temp" (| "input")
    mime_type: str
    format: str | None = None  # as a video node reported it, e.g. "video/h264-mp4" (VideoHelperSuite)
    frame_rate: float | None = None  # as the node reported it

    @property
    def relative_path(self) -> str:
        """``subfolder/filename`` inside its ComfyUI folder, ``/``-separated."""
        sub = self.subfolder.strip("/")
        return f"{sub}/{self.filename}" if sub else self.filename

    def record(self) -> dict[str, str]:
        """The ``{filename, subfolder, type}`` record ComfyUI's ``/view`` and the panel use."""
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.folder_type}


@dataclass(frozen=True)
class ArtifactInfo:
    """What is known of an artifact's file (None where the file does not say)."""

    size_bytes: int
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: float | None = None
    duration_s: float | None = None
