"""Artifacts: ComfyUI's history entries parsed into typed files; MIME types from extensions."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from mcp_bridge.comfyui.adapter import artifacts_from_history
from mcp_bridge.comfyui.artifacts import Artifact, ArtifactInfo, ArtifactKind, mime_for
from mcp_bridge.media import artifacts, images
from mcp_bridge.media.artifacts import (
    ConversionRefused,
    Preview,
    describe,
    encode_for,
    preview,
    suffixes_for,
)


def _rec(filename: str, subfolder: str = "", folder_type: str = "output", **extra: Any) -> dict[str, Any]:
    return {"filename": filename, "subfolder": subfolder, "type": folder_type, **extra}


# One history entry's outputs per node kind, as ComfyUI (and VideoHelperSuite) write them.
OUTPUTS: dict[str, Any] = {
    "9": {"images": [_rec("ComfyUI_00001_.png", "mcp"), _rec("ComfyUI_00002_.png", "mcp")]},  # SaveImage
    "10": {"images": [_rec("ComfyUI_temp_abcde_00001_.png", folder_type="temp")]},  # PreviewImage
    "11": {"images": [_rec("anim_00001_.webp")], "animated": (True,)},  # SaveAnimatedWEBP
    "12": {"images": [_rec("one_00001_.webp")], "animated": (False,)},  # SaveAnimatedWEBP, 1 frame
    "13": {"images": [_rec("anim_00001_.png")], "animated": (True,)},  # SaveAnimatedPNG
    "14": {"images": [_rec("clip_00001_.webm", "video")], "animated": (True,)},  # SaveWEBM
    "15": {"images": [_rec("clip_00001_.mp4", "video")], "animated": (True,)},  # SaveVideo
    "16": {  # VideoHelperSuite VideoCombine, mp4
        "gifs": [_rec("AnimateDiff_00001.mp4", format="video/h264-mp4", frame_rate=8.0, workflow="x.png")]
    },
    "17": {"gifs": [_rec("AnimateDiff_00002.gif", folder_type="temp", format="image/gif", frame_rate=12)]},
    "18": {"audio": [_rec("sound_00001_.flac", "audio")]},  # SaveAudio: not an image artifact
}


def test_every_node_kind_becomes_a_typed_artifact_in_node_order() -> None:
    found = artifacts_from_history({"status": {"status_str": "success"}, "outputs": OUTPUTS})
    summary = [(a.node_id, a.kind, a.mime_type, a.folder_type) for a in found]
    assert summary == [
        ("9", "image", "image/png", "output"),
        ("9", "image", "image/png", "output"),
        ("10", "image", "image/png", "temp"),
        ("11", "animation", "image/webp", "output"),
        ("12", "image", "image/webp", "output"),
        ("13", "animation", "image/png", "output"),
        ("14", "video", "video/webm", "output"),
        ("15", "video", "video/mp4", "output"),
        ("16", "video", "video/mp4", "output"),
        ("17", "animation", "image/gif", "temp"),
    ]
    assert found[0] == Artifact("9", "image", "ComfyUI_00001_.png", "mcp", "output", "image/png")
    assert found[0].relative_path == "mcp/ComfyUI_00001_.png"
    assert found[6].relative_path == "video/clip_00001_.webm"
    vhs = found[8]
    assert (vhs.format, vhs.frame_rate) == ("video/h264-mp4", 8.0)
    assert (found[9].format, found[9].frame_rate) == ("image/gif", 12.0)
    assert found[3].format is None and found[3].frame_rate is None


def test_a_history_entry_that_went_through_json_parses_the_same() -> None:
    entry = {"outputs": OUTPUTS}
    assert artifacts_from_history(json.loads(json.dumps(entry))) == artifacts_from_history(entry)


@pytest.mark.parametrize(
    "outputs",
    [
        None,
        [],
        {"1": None},
        {"1": {"images": None}},
        {"1": {"images": "a.png"}},
        {"1": {"images": [None, 3, {"subfolder": "x"}, {"filename": ""}, {"filename": 7}]}},
    ],
)
def test_malformed_outputs_are_skipped(outputs: Any) -> None:
    assert artifacts_from_history({"outputs": outputs}) == []


def test_no_entry_means_no_artifacts() -> None:
    assert artifacts_from_history(None) == []
    assert artifacts_from_history({}) == []


def test_missing_fields_default_and_bad_frame_rates_are_dropped() -> None:
    outputs = {
        "1": {"images": [{"filename": "a.jpg"}]},
        "2": {"gifs": [_rec("b.webm", frame_rate=float("nan")), _rec("c.webm", frame_rate=True)]},
        "3": {"gifs": [_rec("d.webm", frame_rate=0), _rec("e.webm", frame_rate="8")]},
    }
    found = artifacts_from_history({"outputs": outputs})
    assert found[0] == Artifact("1", "image", "a.jpg", "", "output", "image/jpeg")
    assert [a.frame_rate for a in found[1:]] == [None, None, None, None]


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("a.png", "image/png"),
        ("a.PNG", "image/png"),
        ("a.webp", "image/webp"),
        ("a.gif", "image/gif"),
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.mp4", "video/mp4"),
        ("a.webm", "video/webm"),
        ("a.mov", "video/quicktime"),
        ("a.flac", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ],
)
def test_mime_type_comes_from_the_extension(name: str, mime: str) -> None:
    assert mime_for(name) == mime


def test_no_non_png_is_called_png() -> None:
    found = artifacts_from_history({"outputs": OUTPUTS})
    assert all(a.filename.lower().endswith(".png") for a in found if a.mime_type == "image/png")


# --- files: describe, preview, encode_for ----------------------------------------------------------

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


def _frames(count: int, size: tuple[int, int] = (40, 30)) -> list[Image.Image]:
    return [Image.new("RGB", size, COLOURS[i % len(COLOURS)]) for i in range(count)]


def _animated(path: Path, fmt: str, count: int, duration_ms: int) -> Path:
    first, *rest = _frames(count)
    first.save(path, fmt, save_all=True, append_images=rest, duration=duration_ms, loop=0)
    return path


def _video(path: Path, codec: str, count: int, fps: int, size: tuple[int, int] = (64, 48)) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for image in _frames(count, size):
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _art(path: Path, kind: ArtifactKind) -> Artifact:
    return Artifact("1", kind, path.name, "", "output", mime_for(path.name))


def _pillow_frames(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        return int(getattr(im, "n_frames", 1))


def _video_frames(data: bytes) -> tuple[int, str]:
    with av.open(io.BytesIO(data)) as container:
        codec = container.streams.video[0].codec_context.name
        return sum(1 for _ in container.decode(video=0)), codec


def _dominant(preview: Preview | None) -> tuple[int, ...]:
    assert preview is not None and preview.mime_type == "image/webp"
    with Image.open(io.BytesIO(preview.data)) as im:
        assert im.format == "WEBP" and max(im.size) <= 512
        return tuple(im.convert("RGB").getpixel((im.width // 2, im.height // 2)))  # type: ignore[arg-type]


def _near(colour: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(colour, expected, strict=True))


@pytest.mark.parametrize(
    ("name", "fmt", "count", "duration_ms"),
    [("a.webp", "WEBP", 4, 100), ("a.gif", "GIF", 3, 100), ("a.png", "PNG", 5, 50)],
    ids=["animated-webp", "gif", "apng"],
)
def test_animations_are_described_with_frames_fps_duration_and_a_poster(
    tmp_path: Path, name: str, fmt: str, count: int, duration_ms: int
) -> None:
    path = _animated(tmp_path / name, fmt, count, duration_ms)
    artifact = _art(path, "animation")
    info = describe(artifact, path)
    assert info == ArtifactInfo(
        size_bytes=path.stat().st_size,
        width=40,
        height=30,
        frames=count,
        fps=round(1000 / duration_ms, 3),
        duration_s=count * duration_ms / 1000,
    )
    assert _near(_dominant(preview(artifact, path)), COLOURS[0])  # the poster is the first frame


def test_a_still_has_its_size_and_no_frame_facts(tmp_path: Path) -> None:
    path = tmp_path / "still.png"
    Image.new("RGB", (900, 300), (10, 20, 30)).save(path)
    artifact = _art(path, "image")
    assert describe(artifact, path) == ArtifactInfo(path.stat().st_size, 900, 300)
    found = preview(artifact, path)
    assert found is not None
    with Image.open(io.BytesIO(found.data)) as im:
        assert im.size == (512, 171)


@pytest.mark.parametrize(("name", "codec"), [("v.mp4", "libx264"), ("v.webm", "libvpx-vp9")])
def test_videos_are_described_by_pyav_and_previewed_by_their_first_frame(
    tmp_path: Path, name: str, codec: str
) -> None:
    path = _video(tmp_path / name, codec, count=6, fps=24)
    artifact = _art(path, "video")
    info = describe(artifact, path)
    assert (info.width, info.height, info.frames, info.fps) == (64, 48, 6, 24.0)
    assert info.size_bytes == path.stat().st_size
    assert info.duration_s == pytest.approx(0.25, abs=0.05)
    assert _near(_dominant(preview(artifact, path)), COLOURS[0])


def test_an_undecodable_file_keeps_its_size_and_has_no_preview(tmp_path: Path) -> None:
    for name, kind in (("x.mp4", "video"), ("x.webp", "animation"), ("x.png", "image")):
        path = tmp_path / name
        path.write_bytes(b"not really " + name.encode() * 50)
        artifact = _art(path, kind)  # type: ignore[arg-type]
        assert describe(artifact, path) == ArtifactInfo(size_bytes=path.stat().st_size)
        assert preview(artifact, path) is None


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        describe(_art(tmp_path / "gone.webp", "animation"), tmp_path / "gone.webp")


def test_a_matching_extension_returns_the_file_as_produced(tmp_path: Path) -> None:
    webp = _animated(tmp_path / "a.webp", "WEBP", 4, 100)
    mp4 = _video(tmp_path / "v.mp4", "libx264", 6, 24)
    webm = _video(tmp_path / "v.webm", "libvpx-vp9", 3, 12)
    gif = _animated(tmp_path / "a.gif", "GIF", 3, 100)
    apng = _animated(tmp_path / "a.png", "PNG", 5, 50)
    for path, kind, suffix in [
        (webp, "animation", ".webp"),
        (webp, "animation", ".WEBP"),
        (gif, "animation", ".gif"),
        (apng, "animation", ".png"),
        (apng, "animation", ".apng"),
        (mp4, "video", ".mp4"),
        (webm, "video", ".webm"),
    ]:
        assert encode_for(_art(path, kind), path, suffix) == path.read_bytes(), (path.name, suffix)  # type: ignore[arg-type]


def test_animations_convert_with_every_frame(tmp_path: Path) -> None:
    webp = _art(_animated(tmp_path / "a.webp", "WEBP", 4, 100), "animation")
    path = tmp_path / "a.webp"
    gif = encode_for(webp, path, ".gif")
    assert gif.startswith(b"GIF8") and _pillow_frames(gif) == 4
    apng = encode_for(webp, path, ".png")
    assert apng.startswith(b"\x89PNG") and _pillow_frames(apng) == 4
    with Image.open(io.BytesIO(gif)) as im:
        assert im.info["duration"] == 100
    assert _video_frames(encode_for(webp, path, ".mp4")) == (4, "h264")
    assert _video_frames(encode_for(webp, path, ".webm")) == (4, "vp9")
    gif_path = tmp_path / "a.gif"
    gif_path.write_bytes(gif)
    back = encode_for(_art(gif_path, "animation"), gif_path, ".webp")
    assert back[8:12] == b"WEBP" and _pillow_frames(back) == 4


def test_videos_convert_to_the_other_container_and_to_animations(tmp_path: Path) -> None:
    path = _video(tmp_path / "v.mp4", "libx264", 6, 24)
    mp4 = _art(path, "video")
    assert _video_frames(encode_for(mp4, path, ".webm")) == (6, "vp9")
    gif = encode_for(mp4, path, ".gif")
    assert _pillow_frames(gif) == 6
    with Image.open(io.BytesIO(gif)) as im:
        assert im.size == (64, 48) and abs(im.info["duration"] - 1000 / 24) <= 5  # GIF: 10 ms units
    assert _pillow_frames(encode_for(mp4, path, ".webp")) == 6
    webm = _video(tmp_path / "v.webm", "libvpx-vp9", 3, 12)
    assert _video_frames(encode_for(_art(webm, "video"), webm, ".mp4")) == (3, "h264")


def test_odd_sized_frames_become_an_mp4_padded_to_even_sides(tmp_path: Path) -> None:
    path = tmp_path / "odd.webp"
    first, *rest = _frames(3, size=(41, 31))
    first.save(path, "WEBP", save_all=True, append_images=rest, duration=100, loop=0)
    data = encode_for(_art(path, "animation"), path, ".mp4")
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (42, 32)
        assert float(stream.average_rate) == 10.0
    assert _video_frames(data) == (3, "h264")


@pytest.mark.parametrize(
    ("kind", "name", "suffix", "listed"),
    [
        ("image", "s.png", ".gif", ".png, .jpg, .jpeg, .webp"),
        ("image", "s.png", ".mp4", ".png, .jpg, .jpeg, .webp"),
        ("video", "v.mp4", ".jpg", ".mp4, .webm, .webp, .gif, .png, .apng"),
        ("animation", "a.webp", ".mov", ".webp, .gif, .png, .apng, .mp4, .webm"),
    ],
)
def test_a_conversion_that_does_not_exist_is_refused_naming_those_that_do(
    tmp_path: Path, kind: ArtifactKind, name: str, suffix: str, listed: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"unused")
    with pytest.raises(ConversionRefused, match=re.escape(f"can end in {listed}")):
        encode_for(_art(path, kind), path, suffix)
    assert suffixes_for(kind) == tuple(listed.split(", "))


def test_a_still_is_reencoded_as_before(tmp_path: Path) -> None:
    path = tmp_path / "s.png"
    Image.new("RGB", (20, 10), (1, 2, 3)).save(path)
    data = encode_for(_art(path, "image"), path, ".jpg")
    assert images.sniff_format(data) == "jpeg"
    assert encode_for(_art(path, "image"), path, ".png") == images.encode_for_suffix(
        path.read_bytes(), ".png"
    )


def test_a_video_with_sound_is_not_converted_silently(tmp_path: Path) -> None:
    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = container.add_stream("aac", rate=16000, layout="mono")
        for image in _frames(3, (32, 32)):
            for packet in video.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        silence = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
        )
        silence.sample_rate, silence.pts = 16000, 0
        for packet in [*audio.encode(silence), *audio.encode()]:
            container.mux(packet)
    artifact = _art(path, "video")
    with pytest.raises(ConversionRefused, match="audio track"):
        encode_for(artifact, path, ".webm")
    assert encode_for(artifact, path, ".mp4") == path.read_bytes()


def test_converting_more_frames_than_the_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _animated(tmp_path / "a.webp", "WEBP", 4, 100)
    monkeypatch.setattr(artifacts, "MAX_CONVERT_PIXELS", 40 * 30 * 3)
    with pytest.raises(ConversionRefused, match="too long to convert.*use .webp"):
        encode_for(_art(path, "animation"), path, ".gif")
