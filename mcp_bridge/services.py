"""What the MCP tools work with, bundled once per ComfyUI process."""

from __future__ import annotations

from dataclasses import dataclass

from .adapter import Comfy
from .config import Settings
from .jobs import JobRegistry
from .runner import JobRunner


@dataclass
class Services:
    """The running bridge: ComfyUI access, the jobs, the settings."""

    comfy: Comfy
    registry: JobRegistry
    runner: JobRunner
    settings: Settings
