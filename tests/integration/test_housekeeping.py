"""Leftovers on disk are swept when ComfyUI starts: our own old temporary files and old staged inputs,
nothing else (issue 13, defect 9)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from testbed.server import ComfyServer

DAY = 86400.0


def plant(path: Path, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"leftover")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_start_up_removes_old_temp_files_and_staged_inputs_and_nothing_else(
    comfy_factory: Callable[..., ComfyServer], tmp_path: Path
) -> None:
    base, root = tmp_path / "comfy", tmp_path / "root"
    old_tmp = plant(base / "output" / "renders" / ".mcp-bridge-0123456789abcdef.tmp", DAY)
    old_tmp_in_root = plant(root / "deep" / ".mcp-bridge-fedcba9876543210.tmp", DAY)
    young_tmp = plant(base / "output" / ".mcp-bridge-00000000000000aa.tmp", 5)  # a write in flight
    other_tmp = plant(base / "output" / ".someone-else.tmp", DAY)
    old_staged = plant(base / "input" / "mcp" / f"{'a' * 32}.png", 2 * DAY)
    young_staged = plant(base / "input" / "mcp" / f"{'b' * 32}.png", 60)
    users_file = plant(base / "input" / "mcp" / "mine.png", 2 * DAY)  # not a name the bridge makes
    comfy = comfy_factory(base_dir=base, env={"COMFYUI_MCP_OUTPUT_ROOTS": str(root)})
    deadline = time.monotonic() + 20
    while (
        old_tmp.exists() or old_staged.exists() or old_tmp_in_root.exists()
    ) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not old_tmp.exists() and not old_tmp_in_root.exists() and not old_staged.exists()
    assert young_tmp.exists() and other_tmp.exists() and young_staged.exists() and users_file.exists()
    assert "removed 2 leftover temporary file(s) and 1 old staged input(s)" in comfy.log_text()
