"""resources/read opens the file it checked, never a link put in its place (issue 24 #9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp.server.mcpserver.exceptions import ResourceError

from mcp_bridge.config import Settings
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


def test_by_default_a_file_an_sdk_client_could_not_read_in_one_event_goes_by_its_view_link(
    tmp_path: Path,
) -> None:
    """An 800 KB PNG is over 1 MiB as base64: the SDK client would drop its session (issue 24 #8)."""
    (tmp_path / "big.png").write_bytes(b"\x89PNG" + b"\0" * 800_000)
    with pytest.raises(ResourceError, match="/view"):
        read_output("big.png", str(tmp_path), Settings().max_resource_read_bytes)
    assert 4 * -(-Settings().max_resource_read_bytes // 3) < 1024 * 1024  # its base64 fits in one event
