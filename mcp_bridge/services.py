"""What the MCP tools work with, bundled once per ComfyUI process."""

from __future__ import annotations

from dataclasses import dataclass

from .comfyui.adapter import Comfy
from .config import Settings
from .engine.jobs import JobRegistry
from .engine.runner import JobRunner
from .tools.params import ParamModels
from .tools.workflows import TemplateLibrary


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
