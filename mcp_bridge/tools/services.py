"""What the MCP tools work with, bundled once per ComfyUI process."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..comfyui.backend import ComfyBackend
from ..config import Settings
from ..delivery.previews import EarlyPreviews
from ..engine.jobs import JobRegistry
from ..engine.peers import Peers
from ..engine.runner import JobRunner
from ..specs.families.catalog import FamilyCatalog
from ..specs.library import ParamModels, SpecLibrary


@dataclass
class Services:
    """The running bridge: ComfyUI (behind its interface), the jobs, the settings, the tool specs."""

    comfy: ComfyBackend
    registry: JobRegistry
    runner: JobRunner
    settings: Settings
    specs: SpecLibrary
    param_models: ParamModels
    settings_error: str | None = None  # why the settings file was refused (defaults then apply)
    peers: Peers = field(default_factory=lambda: Peers("local", {}))  # other instances (issue 16)
    previews: EarlyPreviews | None = None  # result files prepared from their executed events on
    families: FamilyCatalog | None = None  # the image model families this ComfyUI runs (read once, on use)
