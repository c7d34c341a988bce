"""Staging a caller's input image into ComfyUI's input folder."""

from __future__ import annotations

import base64
import io
import site
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest
from PIL import Image

from mcp_bridge.comfyui.backend import ComfyBackend
from mcp_bridge.delivery.inputs import InputRejected, protected_folders, stage_input_image
from mcp_bridge.delivery.paths import PathPolicy, PathRejected, protected_trees

LIMITS = {"max_bytes": 8 * 1024 * 1024, "max_pixels": 4096 * 4096}


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "input").mkdir()
    (tmp_path / "output").mkdir()
    return tmp_path / "input", tmp_path / "output"


def stage(
    value: str, dirs: tuple[Path, Path], roots: list[Path] | None = None, protected: Sequence[str] = ()
) -> object:
    input_dir, output_dir = dirs
    return stage_input_image(
        value,
        input_dir=input_dir,
        output_dir=output_dir,
        read_roots=roots or [input_dir, output_dir],
        protected=protected,
        **LIMITS,
    )


def test_an_earlier_output_found_by_file_name_before_the_bridge_made_any(dirs: tuple[Path, Path]) -> None:
    # output/mcp/ does not exist yet: the output folder itself is still searched.
    (dirs[1] / "render_00001_.png").write_bytes(png())
    staged = stage("render_00001_.png", dirs)
    assert staged.source == "output" and (staged.width, staged.height) == (40, 30)  # type: ignore[attr-defined]
    assert staged.path.parent == dirs[0] / "mcp"  # type: ignore[attr-defined]


def test_every_source_is_copied_under_a_generated_name(dirs: tuple[Path, Path]) -> None:
    (dirs[0] / "mine.png").write_bytes(png())
    (dirs[1] / "mcp").mkdir()
    (dirs[1] / "mcp" / "job_00001_.png").write_bytes(png((8, 8)))
    sources = {
        "input": "mine.png",
        "inline": base64.b64encode(png()).decode(),
        "resource": "comfy://output/mcp/job_00001_.png",
        "path": str(dirs[0] / "mine.png"),
    }
    names = set()
    for expected, value in sources.items():
        staged = stage(value, dirs)
        assert staged.source == expected  # type: ignore[attr-defined]
        assert staged.name.startswith("mcp/") and staged.name not in names  # type: ignore[attr-defined]
        names.add(staged.name)  # type: ignore[attr-defined]


def test_a_missing_name_says_what_is_accepted_and_writes_nothing(dirs: tuple[Path, Path]) -> None:
    with pytest.raises(InputRejected, match="input_image accepts"):
        stage("nothing-here.png", dirs)
    assert not (dirs[0] / "mcp").exists()


def test_a_resource_uri_cannot_climb_out_of_the_output_folder(dirs: tuple[Path, Path]) -> None:
    (dirs[0] / "secret.png").write_bytes(png())
    with pytest.raises(InputRejected, match="not an output"):
        stage("comfy://output/../input/secret.png", dirs)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/cat.png",
        "https://example.com/a/b.png?x=1",
        "ftp://host/cat.png",
        "file:///etc/passwd",
        "FILE://C:/x.png",
        "s3://bucket/cat.png",
    ],
)
def test_a_url_is_refused_saying_urls_are_not_fetched_and_what_is_accepted(
    dirs: tuple[Path, Path], url: str
) -> None:
    with pytest.raises(InputRejected) as caught:
        stage(url, dirs)
    message = str(caught.value)
    assert "URLs are not fetched" in message
    for accepted in ("file name", "comfy://output/", "allowed folder", "base64", "data: URI"):
        assert accepted in message
    assert "':' is not allowed" not in message
    assert not (dirs[0] / "mcp").exists()


class FakeComfy:
    """The folders a ComfyUI under ``base`` reports."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def protected_directories(self) -> list[str]:
        return [str(self.base / name) for name in ("user", "models", "custom_nodes")]

    def input_directory(self) -> str:
        return str(self.base / "input")

    def output_directory(self) -> str:
        return str(self.base / "output")


@pytest.mark.parametrize("inside", ["user/default/secret.png", "models/checkpoints/x.png"])
def test_comfyuis_user_and_model_folders_are_never_read_even_inside_an_output_root(
    dirs: tuple[Path, Path], inside: str
) -> None:
    base = dirs[0].parent  # an output root that contains ComfyUI's whole tree
    (base / inside).parent.mkdir(parents=True)
    (base / inside).write_bytes(png())
    (base / "ok.png").write_bytes(png())
    (dirs[0] / "link.png").symlink_to(base / inside)
    protected = protected_folders(cast(ComfyBackend, FakeComfy(base)))
    roots = [*dirs, base]
    with pytest.raises(InputRejected, match="protected"):
        stage(str(base / inside), dirs, roots, protected)
    with pytest.raises(InputRejected, match="protected"):
        stage("link.png", dirs, roots, protected)  # a link in the input folder leads there too
    assert stage(str(base / "ok.png"), dirs, roots, protected) is not None  # the root itself works


def test_writes_into_the_interpreters_prefix_or_site_packages_are_refused() -> None:
    prefix = Path(sys.prefix).resolve()
    policy = PathPolicy([prefix.parent], deny=protected_trees([], []))
    if not policy.roots:
        pytest.skip(f"{prefix.parent} is too broad to be an allowed folder here")
    for folder in (prefix / "bin", Path(site.getsitepackages()[0])):
        with pytest.raises(PathRejected, match="protected"):
            policy.resolve_output(str(folder / "evil.png"), create_dirs=False)


def test_a_prefix_holding_comfyuis_own_folders_is_narrowed_to_its_code_folders() -> None:
    output = Path(sys.prefix) / "ComfyUI" / "output"
    trees = protected_trees([], [output])
    assert sys.prefix not in trees and str(Path(sys.prefix) / "lib") in trees
