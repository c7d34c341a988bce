"""What the MCP tools work with, bundled once per ComfyUI process."""

from __future__ import annotations

from dataclasses import dataclass

from .adapter import Comfy
from .config import Settings
from .jobs import JobRegistry
from .params import ParamModels
from .runner import JobRunner
from .workflows import TemplateLibrary


@dataclass
class Services:
    """The running bridge: ComfyUI access, the jobs, the settings."""

    comfy: Comfy
    registry: JobRegistry
    runner: JobRunner
    settings: Settings
    templates: TemplateLibrary
    param_models: ParamModels
    settings_error: str | None = None  # why the settings file was refused (defaults then apply)
