"""What delivering and presenting a job needs of the running bridge: a narrow, read-only view.

:class:`mcp_bridge.tools.services.Services` satisfies it; tests may pass anything with these fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..comfyui.backend import ComfyBackend
from ..config import Settings
from ..engine.runner import JobRunner

if TYPE_CHECKING:
    from .previews import EarlyPreviews


class DeliveryHost(Protocol):
    """ComfyUI behind its port, the settings, the job runner and the early previews, if any."""

    @property
    def comfy(self) -> ComfyBackend: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def runner(self) -> JobRunner: ...

    @property
    def previews(self) -> EarlyPreviews | None: ...
