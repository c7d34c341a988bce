"""Artifacts: ComfyUI's history entries parsed into typed files; MIME types from extensions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_bridge.comfyui.adapter import artifacts_from_history
from mcp_bridge.media.artifacts import Artifact, mime_for


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
