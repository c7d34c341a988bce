"""resources/read opens the file it checked, never a link put in its place (issue 24 #9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp.server.mcpserver.exceptions import ResourceError

from mcp_bridge.delivery.paths import PathPolicy
from mcp_bridge.tools.catalog import read_output


def test_a_file_swapped_for_a_link_after_the_check_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "output"
    out.mkdir()
    (out / "x.png").write_bytes(b"\x89PNG a result")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG outside every allowed folder")
    checked = PathPolicy.resolve_input

    def swapped_after_the_check(self: PathPolicy, *args: Any, **kwargs: Any) -> Path:
        path = checked(self, *args, **kwargs)
        path.unlink()
        path.symlink_to(secret)  # what a racing writer in the output folder can do
        return path

    monkeypatch.setattr(PathPolicy, "resolve_input", swapped_after_the_check)
    with pytest.raises(ResourceError, match="replaced by a link"):
        read_output("x.png", str(out), 1024)


def test_an_unchanged_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"\x89PNG a result")
    assert read_output("x.png", str(tmp_path), 1024) == (b"\x89PNG a result", "image/png")
