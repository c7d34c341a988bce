"""Leftovers on disk: our own temporary files from killed writes, and old staged input copies.

A write that is killed (power loss, ``kill -9``) can leave a ``.mcp-bridge-<16 hex>.tmp`` next to its
target; a crash between staging an input image and its job's end can leave ``input/mcp/<uuid>.<ext>``.
Both are swept at start-up and then periodically, off the event loop. Only names this bridge creates
are touched, and only when old enough that no write of a running peer can still own them.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("comfyui_mcp_bridge")

TEMP_NAME = re.compile(r"\.mcp-bridge-[0-9a-f]{16}\.tmp")
STAGED_NAME = re.compile(r"[0-9a-f]{32}\.(png|jpe?g|webp)")
TEMP_MIN_AGE_S = 600.0  # a write in flight finishes in far less; a peer sharing the folder is spared
MAX_ENTRIES = 200_000  # entries visited per sweep: a huge output folder costs bounded time


def sweep_temp_files(roots: Iterable[str | Path], *, min_age_s: float = TEMP_MIN_AGE_S) -> int:
    """Remove our temporary files older than ``min_age_s`` under ``roots``; return how many (blocking)."""
    cutoff = time.time() - min_age_s
    removed = visited = 0
    pending = [Path(r) for r in roots]
    seen: set[tuple[int, int]] = set()
    while pending and visited < MAX_ENTRIES:
        folder = pending.pop()
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            visited += 1
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif TEMP_NAME.fullmatch(entry.name) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
    return removed


def age_out_staged(input_dir: str | Path, *, max_age_s: float) -> int:
    """Remove staged input copies in ``input_dir/mcp`` older than ``max_age_s``; return how many."""
    folder = Path(input_dir) / "mcp"
    cutoff = time.time() - max_age_s
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        try:
            if (
                STAGED_NAME.fullmatch(entry.name)
                and entry.is_file(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_mtime < cutoff
            ):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def tidy(output_roots: Iterable[str | Path], input_dir: str | Path, staged_max_age_s: float) -> None:
    """One round of both sweeps, logged when it removed anything (blocking; never raises)."""
    try:
        temps = sweep_temp_files(output_roots)
        staged = age_out_staged(input_dir, max_age_s=staged_max_age_s)
    except Exception:  # noqa: BLE001 - housekeeping must never take anything down
        log.exception("mcp-bridge: housekeeping failed")
        return
    if temps or staged:
        log.info(
            "mcp-bridge: removed %d leftover temporary file(s) and %d old staged input(s)", temps, staged
        )
